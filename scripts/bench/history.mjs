// Part `history` of npm run bench (SPEC targets, issue 12): a site with a long
// history (HISTORY_LINES lines) and LEFTOVERS failed records deploys within
// TARGET x an ordinary site's time. The leftovers are put back before every
// measured deploy (untimed): the deploy's retention removes them, and the
// worst case is the one where it has them all to read and remove.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const HISTORY_LINES = 20_000;
export const LEFTOVERS = 400;
export const TARGET = 1.3;

function record(fields) {
  return `${JSON.stringify({ time: '2024-01-01T00:00:00Z', host: 'deploy@web1.example.com', actor: 'octocat', runUrl: 'https://github.com/example/app/actions/runs/123456789', ...fields })}\n`;
}

/** Grow the site's history to HISTORY_LINES lines (once) and put back LEFTOVERS failed records. */
function seed(site, { uid, gid }) {
  const state = path.join(site, '.tagflip');
  const records = path.join(state, 'releases');
  fs.mkdirSync(records, { recursive: true, mode: 0o700 });
  for (const dir of [site, state]) fs.chownSync(dir, uid, gid);
  fs.chownSync(records, uid, gid);
  const history = path.join(state, 'history.jsonl');
  const have = fs.existsSync(history) ? fs.readFileSync(history, 'utf8').split('\n').length - 1 : 0;
  if (have < HISTORY_LINES) {
    const lines = [];
    for (let i = have; i < HISTORY_LINES; i++) lines.push(record({ event: 'deploy', status: i % 10 ? 'deployed' : 'failed', release: `old${i}`, previousRelease: `old${i - 1}` }));
    // Older than what the deploys add: put before it.
    const after = have ? fs.readFileSync(history, 'utf8') : '';
    fs.writeFileSync(history, lines.join('') + after, { mode: 0o600 });
    fs.chownSync(history, uid, gid);
  }
  for (let i = 0; i < LEFTOVERS; i++) {
    const file = path.join(records, `failed${i}.json`);
    const manifest = { release: `failed${i}`, state: 'failed', commit: '', dataRelease: '', previousRelease: '', started: '2024-01-01T00:00:00Z', finished: '2024-01-01T00:00:01Z', activated: '', exitCode: 2, failedStep: 'build', actor: 'octocat', runUrl: '', host: 'deploy@web1.example.com' };
    fs.writeFileSync(file, `${JSON.stringify(manifest)}\n`, { mode: 0o644 });
    fs.chownSync(file, uid, gid);
  }
}

/**
 * bench: the helpers of the other bench modules this part uses (they own the
 * sshd, the tables and the verdicts), handed over by main.mjs.
 */
export async function partHistory(ctx, bench) {
  const port = await bench.freePort();
  bench.writeKnownHosts(ctx, [port]);
  await bench.startSshd(ctx, 'history', { port });
  const ordinary = { ns: null, ports: [port], site: path.join(ctx.sites, 'history-ordinary') };
  const long = { ns: null, ports: [port], site: path.join(ctx.sites, 'history-long') };
  const [plain, heavy] = await bench.compare(ctx, [
    { deploy: (tag) => bench.tagflipDeploy(ctx, ordinary, tag) },
    {
      deploy: (tag) => {
        seed(long.site, ctx.ids);
        return bench.tagflipDeploy(ctx, long, tag);
      },
    },
  ]);
  bench.addRow('history', 'tagflip, ordinary site', plain);
  bench.addRow('history', `tagflip, ${HISTORY_LINES} history lines + ${LEFTOVERS} failed records`, heavy, plain);
  bench.verdict('long history', TARGET, 'long-history site', heavy, 'ordinary site', plain);
}
