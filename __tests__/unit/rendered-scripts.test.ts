import { describe, expect, test } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTEXT as SHARED_CONTEXT, building as sharedBuilding } from './script-fixtures.js';
import { HOST_FILES } from '../../src/remote/host-files.js';
import { pieceReader } from '../../src/remote/host-pieces.js';
import { type LockHolder, type Manifest, NOW } from '../../src/core/manifest.js';
import {
  CLOSE_WORDS,
  type RenderedScript,
  type ScriptContext,
  renderBuildScript,
  renderDiscardScript,
  renderFlipScript,
  renderHistoryScript,
  renderHookScript,
  renderHousekeepingScript,
  renderOpenScript,
  renderPruneScript,
} from '../../src/remote/scripts.js';

/**
 * Every script tagflip sends, rendered for a set of inputs that takes each
 * branch of the renderers, compared byte for byte with a file taken before the
 * host scripts moved out of template strings (issue 23). A change to what a
 * host receives shows here as a diff of that file; refresh it with
 * TAGFLIP_RENDERED=write after reviewing the diff.
 */
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '__fixtures__', 'rendered-scripts.txt');

// The shared context, with a tag of its own and a secret that holds a quote.
const CONTEXT: ScriptContext = {
  ...SHARED_CONTEXT,
  tag: 'tf-0123456789abcdef',
  env: [
    { name: 'DATABASE_URL', value: "postgres://app:hun'ter2@db/app", secret: true },
    { name: 'EMPTY', value: '' },
  ],
};
const UPLOAD_CONTEXT: ScriptContext = { ...CONTEXT, upload: true, repository: '', ref: '', migrate: '', sharedDirs: [], sharedFiles: [], dataPath: '/data elsewhere/a' };

const building: Manifest = sharedBuilding(CONTEXT);
const ready: Manifest = { ...building, state: 'ready', commit: 'abcdef0123456789abcdef0123456789abcdef01', finished: '2024-06-01T10:04:00Z' };
const previous: Manifest = { ...building, release: 'v2.9', previousRelease: 'v2.8', state: 'inactive', commit: '1'.repeat(40), finished: '2024-05-01T10:05:00Z', activated: '2024-05-01T10:05:01Z' };
const adopted: Manifest = { ...previous, commit: '', adopted: NOW };
const holder: LockHolder = { command: 'deploy', release: 'v3.0', actor: 'octocat', runUrl: CONTEXT.runUrl, host: CONTEXT.host, since: '' };

const piece = pieceReader(HOST_FILES);

function all(): [string, RenderedScript | string][] {
  const upload = { unchanged: Buffer.from('a.txt\0dir/b c\0').toString('base64'), tar: 10240, list: 77, from: 'v2.9' };
  return [
    ['open lock', renderOpenScript(CONTEXT, { lock: 'yes', lockTimeout: 300, holder })],
    ['open report', renderOpenScript(CONTEXT, { lock: 'report', lockTimeout: 0, holder })],
    ['open none, upload', renderOpenScript(UPLOAD_CONTEXT, { lock: 'no', lockTimeout: 5, holder })],
    ['build git', renderBuildScript(CONTEXT, building)],
    ['build git, bare', renderBuildScript({ ...CONTEXT, sharedDirs: [], sharedFiles: [], migrate: '', build: '', env: [] }, building)],
    ['build upload', renderBuildScript(UPLOAD_CONTEXT, building, upload)],
    ['build upload, first', renderBuildScript(UPLOAD_CONTEXT, building, { ...upload, unchanged: '', from: '' })],
    ['flip data', renderFlipScript(CONTEXT, { active: { ...ready, dataRelease: 'v3.0' }, departed: previous, event: 'deploy', dataTarget: 'v3.0', dataBefore: 'v2.9' })],
    ['flip first', renderFlipScript({ ...CONTEXT, previousRelease: '' }, { active: ready, departed: null, event: 'deploy', dataTarget: '', dataBefore: '' })],
    ['flip adopting', renderFlipScript(CONTEXT, { active: ready, departed: adopted, event: 'deploy', dataTarget: '', dataBefore: '' })],
    [
      'flip rollback, prune',
      renderFlipScript(
        { ...CONTEXT, release: 'v2.9', previousRelease: 'v3.0' },
        { active: previous, departed: { ...ready, state: 'rolled-back' }, event: 'rollback', dataTarget: 'v2.9', dataBefore: 'v3.0', prune: { remove: ['v1.0'], removeData: ['v0.9'], unknown: ['odd'] } },
      ),
    ],
    ['prune', renderPruneScript(CONTEXT, ['v1.0', 'v2.0-rc.1'], ['v0.9'], ['stray'])],
    ['prune nothing', renderPruneScript(CONTEXT, [])],
    ['housekeeping', renderHousekeepingScript(CONTEXT, { remove: ['v1.0'], removeData: [] })],
    ['hook activate', renderHookScript(CONTEXT, 'activate', 'sudo systemctl reload app')],
    ['hook verify', renderHookScript(CONTEXT, 'verify', "curl -fsS 'http://localhost/'")],
    ['discard', renderDiscardScript(CONTEXT, building, 'v3.0', 'verify failed')],
    ['discard no data', renderDiscardScript(CONTEXT, building, '', 'build failed')],
    ['history', renderHistoryScript(CONTEXT, 'deploy', 'failed', { failedStep: 'build', exitCode: 2, reason: 'make: *** [all] Error 2' })],
    ['history signal', renderHistoryScript(CONTEXT, 'rollback', 'failed', { failedStep: 'flip', exitCode: null, reason: '' })],
    ['CLOSE_WORDS', CLOSE_WORDS],
    // The pieces the sh-level tests source on their own, as the bundle holds them.
    ['EXACT_BYTES', piece('exact-bytes.sh')],
    ['IDENTITY_FUNCTIONS', piece('identity.sh')],
    ['PAST_THE_STAMP', piece('past-the-stamp.sh')],
    ['PRECOPY_FUNCTIONS', piece('precopy.sh')],
  ];
}

function rendered(): string {
  return all()
    .map(([name, script]) =>
      typeof script === 'string' ? `#### ${name}\n${script}\n` : `#### ${name} (text)\n${script.text}\n#### ${name} (display)\n${script.display}\n`,
    )
    .join('');
}

describe('rendered scripts', () => {
  test('every script is byte for byte what the host received before the scripts moved into .sh files', () => {
    const now = rendered();
    if (process.env.TAGFLIP_RENDERED === 'write') writeFileSync(FIXTURE, now);
    const before = readFileSync(FIXTURE, 'utf8');
    expect(now.length).toBe(before.length);
    expect(now).toBe(before);
  });
});
