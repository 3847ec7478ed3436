import { CODE, COMMIT, type HistoryEntry, type Manifest, NOW, STEP, renderRecord } from './manifest.js';
import { dataPath, manifestPath, releasePath, sharedPath } from './paths.js';
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
  build: string;
  commandTimeout: number;
  env: readonly { name: string; value: string }[];
  actor: string;
  runUrl: string;
}

function render(assignments: Assignment[], body: string): RenderedScript {
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

function commonAssignments(context: ScriptContext): Assignment[] {
  return [
    { name: 'tf_tag', value: context.tag },
    { name: 'tf_deploy_path', value: context.deployPath },
    { name: 'tf_release', value: context.release },
    { name: 'tf_release_path', value: releasePath(context.deployPath, context.release) },
    { name: 'tf_manifest_path', value: manifestPath(context.deployPath, context.release) },
    { name: 'tf_history_path', value: `${context.deployPath}/.tagflip/history.jsonl` },
  ];
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
    exported('TAGFLIP_DATA_PATH', `${dataPath(context.deployPath)}/current`),
    exported('TAGFLIP_HOST', context.host),
    ...context.env.map(({ name, value }) => ({ name, value, exported: true, secret: true })),
  ];
}

/** Shared helpers at the top of every script. `tf_say` prints a control line. */
const PRELUDE = `set -u
umask 022
tf_current_step=start
tf_commit=''
tf_code=0
tf_say() { printf '%s %s\\n' "$tf_tag" "$*"; }
tf_step() { tf_current_step=$1; tf_say step "$1"; }
tf_fail() { tf_say error "$tf_current_step" "$1" "$2"; exit 1; }
tf_now() { date -u +%Y-%m-%dT%H:%M:%SZ; }
tf_fill() {
  printf '%s\\n' "$1" | sed -e "s|${NOW}|$(tf_now)|g" -e "s|${COMMIT}|$tf_commit|g" \\
    -e "s|${CODE}|$tf_code|g" -e "s|${STEP}|$tf_current_step|g"
}
tf_write() { tf_fill "$2" > "$1.tmp.$$" && mv -f -- "$1.tmp.$$" "$1"; }
tf_append_history() {
  { if [ -f "$tf_history_path" ]; then cat -- "$tf_history_path"; fi; tf_fill "$1"; } > "$tf_history_path.tmp.$$" &&
    mv -f -- "$tf_history_path.tmp.$$" "$tf_history_path"
}`;

const FACTS_BODY = `tf_step preflight
tf_problem() { tf_say problem "$@"; }
tf_probe=$(mktemp -d 2>/dev/null) || tf_probe=''
if [ -z "$tf_probe" ]; then
  tf_problem mktemp "mktemp -d failed: the host needs a writable temporary directory"
else
  if ! { : > "$tf_probe/a" && ln -s target "$tf_probe/b" && mv -T "$tf_probe/b" "$tf_probe/a"; } 2>/dev/null; then
    tf_problem mv-T "'mv -T' does not work: tagflip flips current with it; install GNU coreutils"
  fi
  rm -rf -- "$tf_probe"
fi
for tf_tool in timeout sed; do
  command -v "$tf_tool" >/dev/null 2>&1 || tf_problem "$tf_tool" "'$tf_tool' is not installed; install GNU coreutils and sed"
done
if [ -n "$tf_repository" ]; then
  for tf_tool in git tar; do
    command -v "$tf_tool" >/dev/null 2>&1 || tf_problem "$tf_tool" "'$tf_tool' is not installed, but repository is set; install it on the host"
  done
fi
if [ -d "$tf_deploy_path" ]; then
  tf_say fact deploy-path exists
  [ -w "$tf_deploy_path" ] || tf_problem writable "$tf_deploy_path is not writable by $(id -un); chown it to that user"
elif [ -e "$tf_deploy_path" ] || [ -L "$tf_deploy_path" ]; then
  tf_problem writable "$tf_deploy_path exists but is not a directory"
else
  tf_say fact deploy-path absent
  tf_dir=$tf_deploy_path
  while [ ! -e "$tf_dir" ]; do tf_dir=$(dirname -- "$tf_dir"); done
  if [ ! -d "$tf_dir" ] || [ ! -w "$tf_dir" ]; then
    tf_problem writable "cannot create $tf_deploy_path: $tf_dir is not writable by $(id -un); create $tf_deploy_path and chown it to that user"
  fi
fi
tf_step facts
if [ -L "$tf_deploy_path/current" ]; then
  tf_say fact current "$(readlink -- "$tf_deploy_path/current")"
elif [ -e "$tf_deploy_path/current" ]; then
  tf_problem current "$tf_deploy_path/current is not a symlink; move it aside so tagflip can manage it"
fi
if [ -e "$tf_release_path" ] || [ -L "$tf_release_path" ]; then tf_say fact release-dir present; fi
for tf_manifest in "$tf_deploy_path"/.tagflip/releases/*.json; do
  if [ -f "$tf_manifest" ]; then tf_say manifest "$(tr -d '\\n' < "$tf_manifest")"; fi
done`;

/** Phase 2: preflight and facts in one round trip. Changes nothing. */
export function renderFactsScript(context: ScriptContext): RenderedScript {
  return render([...commonAssignments(context), { name: 'tf_repository', value: context.repository }], FACTS_BODY);
}

const BUILD_BODY = `tf_abort() {
  tf_code=$1
  cd / || :
  rm -rf -- "$tf_release_path"
  tf_write "$tf_manifest_path" "$tf_manifest_failed" || :
  tf_append_history "$tf_history_failed" || :
  tf_fail "$1" "$2"
}
tf_step prepare
mkdir -p -- "$tf_deploy_path/releases" "$tf_deploy_path/.tagflip/releases" ||
  tf_fail 1 "cannot create $tf_deploy_path/releases"
if [ "$(readlink -- "$tf_deploy_path/current" 2>/dev/null)" = "releases/$tf_release" ]; then
  tf_fail 1 "releases/$tf_release is the current release; it is never rebuilt in place"
fi
if [ -e "$tf_release_path" ] || [ -L "$tf_release_path" ]; then
  tf_say log "removing releases/$tf_release left by an incomplete earlier attempt"
  rm -rf -- "$tf_release_path" || tf_fail 1 "cannot remove the incomplete $tf_release_path"
fi
mkdir -- "$tf_release_path" || tf_fail 1 "cannot create $tf_release_path"
tf_write "$tf_manifest_path" "$tf_manifest_building" || tf_abort 1 "cannot write $tf_manifest_path"
tf_step source
if [ -n "$tf_repository" ]; then
  tf_mirror=$tf_deploy_path/.tagflip/repo.git
  export GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND='ssh -o BatchMode=yes'
  if [ -d "$tf_mirror" ]; then
    git --git-dir="$tf_mirror" remote set-url origin "$tf_repository" &&
      timeout -k 10 "$tf_command_timeout" git --git-dir="$tf_mirror" fetch --prune --quiet origin ||
      tf_abort $? "git fetch from $tf_repository failed"
  else
    rm -rf -- "$tf_mirror.tmp" &&
      timeout -k 10 "$tf_command_timeout" git clone --mirror --quiet -- "$tf_repository" "$tf_mirror.tmp" &&
      mv -T -- "$tf_mirror.tmp" "$tf_mirror" ||
      tf_abort $? "git clone of $tf_repository failed"
  fi
  tf_commit=$(git --git-dir="$tf_mirror" rev-parse --verify --quiet "$tf_ref^{commit}") ||
    tf_abort 1 "'$tf_ref' is not a tag, branch or commit in $tf_repository"
  tf_archive=$tf_release_path/.tagflip-source.tar
  git --git-dir="$tf_mirror" archive --format=tar -o "$tf_archive" "$tf_commit" &&
    tar -x -f "$tf_archive" -C "$tf_release_path" && rm -f -- "$tf_archive" ||
    tf_abort 1 "exporting $tf_ref into $tf_release_path failed"
  tf_say commit "$tf_commit"
fi
tf_step build
if [ -n "$tf_build" ]; then
  cd "$tf_release_path" || tf_abort 1 "cannot enter $tf_release_path"
  tf_started=$(date +%s)
  timeout -k 10 "$tf_command_timeout" sh -c "$tf_build"
  tf_status=$?
  tf_elapsed=$(( $(date +%s) - tf_started ))
  cd / || :
  if [ "$tf_status" -eq 124 ] || { [ "$tf_status" -eq 137 ] && [ "$tf_elapsed" -ge "$tf_command_timeout" ]; }; then
    tf_abort "$tf_status" "build ran longer than command-timeout ($tf_command_timeout s) and was stopped"
  elif [ "$tf_status" -gt 128 ]; then
    tf_abort "$tf_status" "build was killed by signal $((tf_status - 128))"
  elif [ "$tf_status" -ne 0 ]; then
    if [ ! -w "$tf_release_path" ] || [ "$(df -P -- "$tf_release_path" 2>/dev/null | awk 'NR==2 {print $4}')" = 0 ]; then
      tf_abort "$tf_status" "build exited with status $tf_status; the host is out of disk space"
    fi
    tf_abort "$tf_status" "build exited with status $tf_status"
  fi
fi
tf_write "$tf_manifest_path" "$tf_manifest_ready" || tf_abort 1 "cannot write $tf_manifest_path"
tf_say ready "$(tf_now)" "$tf_commit"`;

/**
 * Phase 5–8: create the release, export the source, run build; mark the
 * release ready, or remove it and mark it failed.
 */
export function renderBuildScript(context: ScriptContext, building: Manifest): RenderedScript {
  const ready: Manifest = { ...building, state: 'ready', commit: COMMIT, finished: NOW };
  const failed = { ...building, state: 'failed', commit: COMMIT, finished: NOW, exitCode: CODE, failedStep: STEP };
  const history = historyEntry(context, 'deploy', 'failed');
  return render(
    [
      ...commonAssignments(context),
      { name: 'tf_repository', value: context.repository },
      { name: 'tf_ref', value: context.ref },
      { name: 'tf_build', value: context.build },
      { name: 'tf_command_timeout', value: String(context.commandTimeout) },
      { name: 'tf_manifest_building', value: renderRecord(building) },
      { name: 'tf_manifest_ready', value: renderRecord(ready) },
      { name: 'tf_manifest_failed', value: renderRecord(failed) },
      { name: 'tf_history_failed', value: renderRecord({ ...history, exitCode: CODE, failedStep: STEP }) },
      ...hookEnvironment(context),
    ],
    BUILD_BODY,
  );
}

const FLIP_BODY = `tf_step flip
[ -d "$tf_release_path" ] || tf_fail 1 "$tf_release_path is missing; nothing was flipped"
tf_link=$tf_deploy_path/.current.tagflip-$$
rm -f -- "$tf_link"
ln -s -- "releases/$tf_release" "$tf_link" || tf_fail 1 "cannot create a symlink in $tf_deploy_path"
if ! mv -T -- "$tf_link" "$tf_deploy_path/current"; then
  rm -f -- "$tf_link"
  tf_fail 1 "'mv -T' could not replace $tf_deploy_path/current; it is unchanged"
fi
tf_say flipped
mkdir -p -- "$tf_deploy_path/.tagflip/releases" &&
  tf_write "$tf_manifest_path" "$tf_manifest_active" &&
  { [ -z "$tf_previous_manifest" ] || tf_write "$tf_previous_manifest_path" "$tf_previous_manifest"; } &&
  tf_append_history "$tf_history_deployed" ||
  tf_fail 1 "current now points to releases/$tf_release, but its record under .tagflip could not be written"`;

/**
 * Phase 9: flip `current` with one rename, then record the new release as active
 * and the one before it as inactive.
 */
export function renderFlipScript(context: ScriptContext, active: Manifest, previous: Manifest | null): RenderedScript {
  const history = historyEntry(context, 'deploy', 'deployed');
  return render(
    [
      ...commonAssignments(context),
      { name: 'tf_manifest_active', value: renderRecord({ ...active, state: 'active', activated: NOW }) },
      { name: 'tf_previous_manifest_path', value: previous ? manifestPath(context.deployPath, previous.release) : '' },
      { name: 'tf_previous_manifest', value: previous ? renderRecord({ ...previous, state: 'inactive' }) : '' },
      { name: 'tf_history_deployed', value: renderRecord(history) },
    ],
    FLIP_BODY,
  );
}
