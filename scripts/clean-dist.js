// After ncc: drop what the bundle must not ship.
// - pagent.exe: ssh2's helper for Windows Pageant; tagflip never uses an agent on Windows.
// - *.node: native add-ons are built for one machine's Node ABI; ssh2 falls back to pure JS.
const fs = require('node:fs');
const path = require('node:path');

function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (entry.name === 'pagent.exe' || entry.name.endsWith('.node')) fs.rmSync(full);
  }
}
walk(path.join(__dirname, '..', 'dist'));
