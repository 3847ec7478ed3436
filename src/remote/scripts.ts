import { adoptedNow } from '../core/adopt.js';
import { CODE, COMMIT, FINISHED, type HistoryEntry, type LockHolder, type Manifest, NOW, REASON, STEP, renderRecord } from '../core/manifest.js';
import { dataLabel, manifestPath, releasePath, sharedPath } from '../core/paths.js';
import { HOST_FILES } from './host-files.js';
import { pieceReader } from './host-pieces.js';
import { type Assignment, renderAssignments } from './shell.js';

/**
 * Every remote script is rendered here: a header of quoted assignments (the only
 * place values enter), then constant text that refers to them as "$name".
 */
export interface RenderedScript {
  /** What is sent. */
  text: string;
  /** The same with secrets replaced by ***, for dry runs and debug logs. */
  display: string;
}

/** What every script of a run on one host knows. */
export interface ScriptContext {
  tag: string;
  host: string;
  deployPath: string;
  release: string;
  previousRelease: string;
  repository: string;
  ref: string;
  /** Files come from the runner (upload): the facts then include the current release's content list. */
  upload?: boolean;
  build: string;
  sharedDirs: readonly string[];
  sharedFiles: readonly string[];
  migrate: string;
  /** Run before the data copy; exit 0: the data is up to date, and the release uses the current data release as it is. */
  migrateCheck?: string;
  /** Record the release's content at the end of its build (tree-list.sh), for status with drift. */
  recordTree?: boolean;
  dataPath: string;
  commandTimeout: number;
  env: readonly { name: string; value: string; secret?: boolean }[];
  actor: string;
  runUrl: string;
}

/**
 * The host side: shell files in src/remote/host/, one phase or group of
 * functions each, read as they are sent (host-pieces.ts). docs/architecture.md
 * draws which runs in which phase and what each reads and writes on the host.
 */
const piece = pieceReader(HOST_FILES);
const PRELUDE = piece('prelude.sh');
const CURRENT_HELPERS = piece('current.sh');
const OPEN_BODY = piece('open.sh');
const BUILD_BODY = piece('build.sh');
const FLIP_BODY = piece('flip.sh');
const PRUNE_STEPS = piece('prune.sh');
const AFTER_FLIP_PRUNE = piece('after-flip-prune.sh');
const HOOK_BODY = piece('hook.sh');
const DISCARD_BODY = piece('discard.sh');
const HISTORY_BODY = piece('history.sh');
const DATA_COPY_BODY = piece('data-copy.sh');
const DATA_DISCARD_BODY = piece('data-discard.sh');

export function render(assignments: Assignment[], body: string): RenderedScript {
  const join = (header: string) => `${header}\n${PRELUDE}\n${body}`;
  return { text: join(renderAssignments(assignments)), display: join(renderAssignments(assignments, true)) };
}

/** A line of .tagflip/history.jsonl, timed by the host when it is written. */
function historyEntry(context: ScriptContext, event: HistoryEntry['event'], status: string): HistoryEntry {
  return {
    time: NOW,
    event,
    status,
    release: context.release,
    previousRelease: context.previousRelease,
    host: context.host,
    actor: context.actor,
    runUrl: context.runUrl,
  };
}

export function commonAssignments(context: ScriptContext): Assignment[] {
  return [
    // The run's tag authenticates control lines (session.ts): never shown.
    { name: 'tf_tag', value: context.tag, secret: true },
    { name: 'tf_deploy_path', value: context.deployPath },
    { name: 'tf_release', value: context.release },
    { name: 'tf_release_path', value: releasePath(context.deployPath, context.release) },
    { name: 'tf_manifest_path', value: manifestPath(context.deployPath, context.release) },
    { name: 'tf_history_path', value: `${context.deployPath}/.tagflip/history.jsonl` },
    { name: 'tf_data_path', value: context.dataPath },
    // How messages name data-path: data/current means nothing when it is elsewhere.
    { name: 'tf_data_label', value: dataLabel(context.deployPath, context.dataPath) },
  ];
}

/** Read by the prelude's tf_timed, so assigned in scripts that run no command too. */
function timeoutAssignment(context: ScriptContext): Assignment {
  return { name: 'tf_command_timeout', value: String(context.commandTimeout) };
}

/** The environment of every hook (SPEC: "Hooks see …"), user env last. */
function hookEnvironment(context: ScriptContext): Assignment[] {
  const exported = (name: string, value: string): Assignment => ({ name, value, exported: true });
  return [
    exported('TAGFLIP_RELEASE', context.release),
    exported('TAGFLIP_PREVIOUS_RELEASE', context.previousRelease),
    exported('TAGFLIP_RELEASE_PATH', releasePath(context.deployPath, context.release)),
    exported('TAGFLIP_DEPLOY_PATH', context.deployPath),
    exported('TAGFLIP_SHARED_PATH', sharedPath(context.deployPath)),
    exported('TAGFLIP_DATA_PATH', `${context.dataPath}/current`),
    exported('TAGFLIP_HOST', context.host),
    // The user's env reaches the hooks only (exported in tf_timed's subshell),
    // never tagflip's own shell: `PATH=…` must not change which mkdir the script runs.
    {
      name: 'tf_user_env',
      value: context.env.map(({ name, value }) => `${name}=${value}`).join('\n'),
      // Shown with secret-env's values as ***; env's values are not secrets.
      shown: context.env.map(({ name, value, secret }) => `${name}=${secret ? '***' : value}`).join('\n'),
    },
  ];
}

export interface OpenOptions {
  /** yes: take the lock (deploy, rollback, prune); report: only say who holds it (status); no: neither (dry run). */
  lock: 'yes' | 'report' | 'no';
  lockTimeout: number;
  holder: LockHolder;
}

/**
 * Phases 1–3 in one round trip: watchdog, preflight, lock, facts. Changes
 * nothing but the lock, and for an upload's re-deploy .tagflip/precopy.PID,
 * which the session removes unless the build takes it (host/precopy.sh).
 */
export function renderOpenScript(context: ScriptContext, options: OpenOptions): RenderedScript {
  const assignments = [
    ...commonAssignments(context),
    { name: 'tf_repository', value: context.repository },
    { name: 'tf_upload', value: context.upload ? 'yes' : '' },
    { name: 'tf_ref', value: context.ref },
    timeoutAssignment(context),
    // Preflight checks data-path when the deploy will copy data there, as when data is kept there already.
    { name: 'tf_migrating', value: context.migrate ? 'yes' : '' },
    { name: 'tf_lock', value: options.lock },
    { name: 'tf_lock_timeout', value: String(options.lockTimeout) },
    { name: 'tf_lock_holder', value: renderRecord({ ...options.holder, since: NOW }) },
  ];
  const text = (redact: boolean) => `${renderAssignments(assignments, redact)}\n${OPEN_BODY}`;
  return { text: text(false), display: text(true) };
}

/** Sent as the session ends: stop the watchdog at once instead of at its next ping. */
export const CLOSE_WORDS = 'tf_precopy_stop; kill "$tf_watchdog" 2>/dev/null; rm -rf -- "$tf_run_dir"; exit 0';

/** An upload, as the build script reads it: the unchanged files' list, the size of each section of the stream (transfer.ts), and where unchanged files are copied from. */
export interface UploadSections {
  /**
   * The files unchanged since the current release, which the host keeps from
   * the copy it made with the facts (and nothing else): their paths, each
   * ended by NUL, in base64 (it travels in the script).
   */
  unchanged: string;
  tar: number;
  list: number;
  /** The current release, holding the unchanged files ('' when none are). */
  from: string;
}

/**
 * Phase 5–8: create the release, export the source, run build; mark the
 * release ready, or remove it and mark it failed.
 */
export function renderBuildScript(context: ScriptContext, building: Manifest, upload: UploadSections | null = null, dataReused = ''): RenderedScript {
  const ready: Manifest = { ...building, state: 'ready', commit: COMMIT, finished: FINISHED };
  // When migrate-check says the data is up to date: the data release that is current, used as it is.
  const reused: Manifest = { ...ready, dataRelease: dataReused, dataReused: true };
  const failed = { ...building, state: 'failed', commit: COMMIT, finished: NOW, exitCode: CODE, failedStep: STEP, reason: REASON };
  const history = historyEntry(context, 'deploy', 'failed');
  return render(
    [
      ...commonAssignments(context),
      { name: 'tf_repository', value: context.repository },
      { name: 'tf_ref', value: context.ref },
      ...uploadAssignments(upload),
      { name: 'tf_build', value: context.build },
      timeoutAssignment(context),
      { name: 'tf_shared_dirs', value: context.sharedDirs.join(' ') },
      { name: 'tf_shared_files', value: context.sharedFiles.join(' ') },
      { name: 'tf_migrate', value: context.migrate },
      { name: 'tf_migrate_check', value: context.migrateCheck ?? '' },
      { name: 'tf_record_tree', value: context.recordTree === false ? '' : 'yes' },
      { name: 'tf_manifest_building', value: renderRecord(building) },
      { name: 'tf_manifest_ready', value: renderRecord(ready) },
      { name: 'tf_manifest_ready_reused', value: context.migrateCheck ? renderRecord(reused) : '' },
      { name: 'tf_manifest_failed', value: renderRecord(failed) },
      { name: 'tf_history_failed', value: renderRecord({ ...history, exitCode: CODE, failedStep: STEP, reason: REASON }) },
      ...hookEnvironment(context),
    ],
    BUILD_BODY,
  );
}

function uploadAssignments(upload: UploadSections | null): Assignment[] {
  // Every name the upload step reads is assigned, empty without an upload (the step then does not run).
  if (!upload) return ['tf_upload_bytes', 'tf_unchanged_list', 'tf_tar_bytes', 'tf_list_bytes', 'tf_upload_from'].map((name) => ({ name, value: '' }));
  // Long (a line per 50,000 files is 1.3 MB): shown as their sizes, never as text.
  const list = (name: string, value: string) => ({ name, value, shown: value ? `(${value.length} characters of base64)` : '' });
  return [
    { name: 'tf_upload_bytes', value: String(upload.tar + upload.list) },
    list('tf_unchanged_list', upload.unchanged),
    { name: 'tf_tar_bytes', value: String(upload.tar) },
    { name: 'tf_list_bytes', value: String(upload.list) },
    { name: 'tf_upload_from', value: upload.from },
  ];
}

export interface FlipRecords {
  /** The record of the release that becomes current. */
  active: Manifest;
  /** The record of the release current until now, with its new state (inactive or rolled-back). */
  departed: Manifest | null;
  event: 'deploy' | 'rollback';
  /** The data release to flip data/current to first ('' leaves it), and the one it points to now. */
  dataTarget: string;
  dataBefore: string;
  /**
   * Retention once current has moved: in the flip's script when no hook
   * follows, else after verify (fleet.ts). Either way the plan keeps the
   * release flipped away from, so a flip back stays possible.
   */
  prune?: { remove: readonly string[]; removeData: readonly string[]; unknown?: readonly string[] };
}

/**
 * Phase 9: flip `current` to context.release with one rename, then record it as
 * active and the release it replaced with its new state; retention rides along
 * when the records carry it (host/after-flip-prune.sh). Once the flip is done, nothing
 * in this script fails it: a record that cannot be written is a warning.
 */
export function renderFlipScript(context: ScriptContext, records: FlipRecords): RenderedScript {
  const status = records.event === 'deploy' ? 'deployed' : 'rolled-back';
  const prune = prunes(records.prune) ? records.prune : null;
  const adopted = adoptedNow(records.departed) ? records.departed!.release : '';
  const adoption: HistoryEntry = { ...historyEntry(context, 'adopt', 'adopted'), release: adopted, previousRelease: '' };
  return render(
    [
      ...commonAssignments(context),
      { name: 'tf_manifest_active', value: renderRecord({ ...records.active, state: 'active', activated: NOW }) },
      { name: 'tf_departed_manifest_path', value: records.departed ? manifestPath(context.deployPath, records.departed.release) : '' },
      { name: 'tf_departed_manifest', value: records.departed ? renderRecord(records.departed) : '' },
      { name: 'tf_adopted', value: adopted },
      // An adoption goes in the history just before the flip away from the adopted release.
      { name: 'tf_history_flip', value: [...(adopted ? [adoption] : []), historyEntry(context, records.event, status)].map(renderRecord).join('\n') },
      { name: 'tf_data_target', value: records.dataTarget },
      { name: 'tf_data_before', value: records.dataBefore },
      timeoutAssignment(context),
      ...(prune ? pruneAssignments(context, prune.remove, prune.removeData, prune.unknown) : []),
    ],
    prune ? `${FLIP_BODY}\n${AFTER_FLIP_PRUNE}` : FLIP_BODY,
  );
}

/** Whether a retention plan removes or reports anything. */
export function prunes(plan: FlipRecords['prune'] | undefined): boolean {
  return plan !== undefined && plan.remove.length + plan.removeData.length + (plan.unknown?.length ?? 0) > 0;
}

const PRUNE_BODY = `${CURRENT_HELPERS}\n${PRUNE_STEPS}`;

/**
 * Step 12: remove releases (directory and record); name the directories left
 * alone because tagflip has no record of them. Release names are validated
 * names (letters, digits, . _ + -), so a space-separated list is safe to split.
 */
export function renderPruneScript(context: ScriptContext, remove: readonly string[], removeData: readonly string[] = [], unknown: readonly string[] = []): RenderedScript {
  return render([...commonAssignments(context), timeoutAssignment(context), ...pruneAssignments(context, remove, removeData, unknown)], PRUNE_BODY);
}

/** Retention at the end of a deploy or rollback whose hooks ran (after verify): a failure is a warning (host/after-flip-prune.sh). */
export function renderHousekeepingScript(context: ScriptContext, plan: NonNullable<FlipRecords['prune']>): RenderedScript {
  return render(
    [...commonAssignments(context), timeoutAssignment(context), ...pruneAssignments(context, plan.remove, plan.removeData, plan.unknown)],
    `${CURRENT_HELPERS}\n${AFTER_FLIP_PRUNE}`,
  );
}

function pruneAssignments(context: ScriptContext, remove: readonly string[], removeData: readonly string[], unknown: readonly string[] = []): Assignment[] {
  const entry: HistoryEntry = {
    ...historyEntry(context, 'prune', 'pruned'),
    release: '',
    previousRelease: '',
    removed: [...remove],
    ...(removeData.length > 0 ? { removedData: [...removeData] } : {}),
  };
  return [
    { name: 'tf_prune', value: remove.join(' ') },
    { name: 'tf_prune_data', value: removeData.join(' ') },
    { name: 'tf_prune_unknown', value: unknown.join(' ') },
    { name: 'tf_history_prune', value: renderRecord(entry) },
  ];
}

/** Steps 10–11: run `activate` or `verify` in the release that is now current. */
export function renderHookScript(context: ScriptContext, name: 'activate' | 'verify', command: string): RenderedScript {
  return render(
    [
      ...commonAssignments(context),
      { name: 'tf_hook_name', value: name },
      { name: 'tf_hook_command', value: command },
      timeoutAssignment(context),
      ...hookEnvironment(context),
    ],
    HOOK_BODY,
  );
}

/**
 * When another host of the step failed before the flip: remove the release
 * built here (and its data copy), so no host runs what not all hosts could.
 */
export function renderDiscardScript(context: ScriptContext, built: Manifest, dataCopy: string, reason: string): RenderedScript {
  const failed = { ...built, state: 'failed', finished: NOW, exitCode: null, failedStep: 'barrier' };
  const history = { ...historyEntry(context, 'deploy', 'failed'), failedStep: 'barrier', reason };
  return render(
    [
      ...commonAssignments(context),
      { name: 'tf_data_copy', value: dataCopy },
      { name: 'tf_manifest_failed', value: renderRecord(failed) },
      { name: 'tf_history_failed', value: renderRecord(history) },
      timeoutAssignment(context),
    ],
    DISCARD_BODY,
  );
}

/**
 * Append one line to the history, e.g. that a rollback's activate or verify
 * failed after its flip. Such a line (status failed) is not an activation:
 * the flip's own line already said where current went.
 */
export function renderHistoryScript(context: ScriptContext, event: HistoryEntry['event'], status: string, details: { failedStep: string; exitCode: number | null; reason: string }): RenderedScript {
  return render(
    [...commonAssignments(context), { name: 'tf_history_line', value: renderRecord({ ...historyEntry(context, event, status), ...details }) }, timeoutAssignment(context)],
    HISTORY_BODY,
  );
}

/**
 * The data step of a deploy of a prepared release (issue 24): a prepare copies
 * no data, so the switch copies data/current and migrates the copy, before the
 * barrier, as the build would have (or, when migrate-check says the data is
 * up to date, reuses data/current: says data-reused). A failure removes the
 * copy only: the release stays ready for the next attempt.
 */
export function renderDataCopyScript(context: ScriptContext): RenderedScript {
  const history = { ...historyEntry(context, 'deploy', 'failed'), exitCode: CODE, failedStep: STEP, reason: REASON };
  return render(
    [
      ...commonAssignments(context),
      { name: 'tf_migrate', value: context.migrate },
      { name: 'tf_migrate_check', value: context.migrateCheck ?? '' },
      { name: 'tf_history_failed', value: renderRecord(history) },
      timeoutAssignment(context),
      ...hookEnvironment(context),
    ],
    DATA_COPY_BODY,
  );
}

/** Another host failed before the flip of a prepared release: remove the data copy made here; the release stays ready. */
export function renderDataDiscardScript(context: ScriptContext, reason: string): RenderedScript {
  const history = { ...historyEntry(context, 'deploy', 'failed'), failedStep: 'barrier', reason };
  return render([...commonAssignments(context), { name: 'tf_history_failed', value: renderRecord(history) }, timeoutAssignment(context)], DATA_DISCARD_BODY);
}
