// npm run bench: what it prints. One row per measured variant, docs/bench.md's table of
// the peers, and a PASS/FAIL verdict per target; the parts add to them as they go and
// main prints them at the end.

export const fmtMs = (ms) => (ms === undefined ? '-' : ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
export const fmtRss = (kb) => (kb === undefined ? '-' : `${(kb / 1024).toFixed(1)}`);
export const fmtX = (x) => `${x.toFixed(2)}x`;

export const rows = [];
export const verdicts = [];

export function addRow(part, variant, stats, vs) {
  rows.push({ part, variant, stats, ratio: vs ? stats.median / vs.median : undefined });
}

export function printTable() {
  if (rows.length === 0) {
    process.stdout.write('\n(nothing was measured)\n');
    return;
  }
  const header = ['part', 'variant', 'median ms', 'min ms', 'vs ref', 'CPU ms (client+host)', 'peak RSS MiB'];
  const cpu = (c) => (c === undefined ? '-' : `${fmtMs(c.total)} (${fmtMs(c.client)}+${fmtMs(c.host)})`);
  const body = rows.map((r) => [r.part, r.variant, fmtMs(r.stats.median), fmtMs(r.stats.min), r.ratio === undefined ? '' : fmtX(r.ratio), cpu(r.stats.cpu), fmtRss(r.stats.rss)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  const out = [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  process.stdout.write(`\n${out.join('\n')}\n`);
}

/** docs/bench.md's table: median wall time per link, and CPU per deploy on loopback. */
export function printPeersTable(ctx) {
  const parts = ['loopback', 'wan'].filter((part) => ctx.peers[part]);
  if (parts.length === 0) return;
  const names = { floor: 'one OpenSSH session, minimal deploy script (the floor)', hand: 'one OpenSSH session, full hand-written script', mina: 'Mina 0.3 (`mina deploy`)', tagflip: '**tagflip** (CLI)' };
  const secs = (ms) => (ms === undefined ? 'not measured' : `${(ms / 1000).toFixed(2)} s`);
  const cpuPart = ctx.peers.loopback ? 'loopback' : parts[0];
  const header = `| | ${parts.map((part) => (part === 'loopback' ? 'loopback' : ctx.peers[part].label)).join(' | ')} | CPU per deploy (${cpuPart}: client + host) |`;
  const lines = [header, `|---|${parts.map(() => '---|').join('')}---|`];
  for (const key of Object.keys(names)) {
    if (!parts.some((part) => ctx.peers[part].stats[key])) {
      lines.push(`| ${names[key]} | ${parts.map(() => 'not installed').join(' | ')} | |`);
      continue;
    }
    const cpu = ctx.peers[cpuPart].stats[key]?.cpu;
    const cpuText = cpu ? `${secs(cpu.total)} (${secs(cpu.client)} + ${secs(cpu.host)})` : 'not measured';
    lines.push(`| ${names[key]} | ${parts.map((part) => secs(ctx.peers[part].stats[key]?.median)).join(' | ')} | ${cpuText} |`);
  }
  say(`\nAs in docs/bench.md (medians of ${ctx.runs}):\n\n${lines.join('\n')}`);
}

export function say(text) {
  process.stdout.write(`${text}\n`);
}

export function verdict(name, target, subject, subjectStats, reference, referenceStats, extra = '') {
  const ratio = subjectStats.median / referenceStats.median;
  const ok = ratio <= target;
  const line = `${ok ? 'PASS' : 'FAIL'} ${name}: ${subject} ${fmtMs(subjectStats.median)} ms = ${fmtX(ratio)} ${reference} ${fmtMs(referenceStats.median)} ms (target ≤ ${target}x; medians of ${subjectStats.n})${extra}`;
  verdicts.push(line);
}
