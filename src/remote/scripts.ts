import { adoptedNow } from '../core/adopt.js';
import { CODE, COMMIT, FINISHED, type HistoryEntry, type LockHolder, type Manifest, NOW, REASON, STEP, renderRecord } from '../core/manifest.js';
import { dataLabel, manifestPath, releasePath, sharedPath } from '../core/paths.js';
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
  dataPath: string;
  commandTimeout: number;
  env: readonly { name: string; value: string; secret?: boolean }[];
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

/**
 * Shared helpers at the top of every script. `tf_say` prints a control line,
 * newline first (session.ts): a hook's unterminated last line cannot hide it.
 */
const PRELUDE = `set -u
umask 022
tf_current_step=start
tf_commit=''
tf_finished=''
tf_code=0
tf_reason=''
# A client that has gone makes the next write fail with SIGPIPE: note it and go
# on, so that a failed build still removes itself and records why. (A handler,
# unlike an ignored signal, is reset for the hooks.)
tf_lost=no
trap 'tf_lost=yes' PIPE HUP
# Gone: a write here failed, or the session's watchdog found out (tf_run_dir/lost).
tf_connection_lost() { [ "$tf_lost" = yes ] || { [ -n "\${tf_run_dir:-}" ] && [ -e "$tf_run_dir/lost" ]; }; }
tf_say() { printf '\\n%s %s\\n' "$tf_tag" "$*"; }
tf_step() { tf_current_step=$1; tf_say step "$1"; }
tf_fail() { tf_say error "$tf_current_step" "$1" "$2"; exit 1; }
# The time records take, read once (one process) and kept until a command runs:
# every record a script writes between two commands says the same second anyway.
tf_now=''
tf_clock() { [ -n "$tf_now" ] || tf_now=$(date -u +%Y-%m-%dT%H:%M:%SZ); }
# Free text as the inside of a JSON string: one line, \\ and " escaped.
tf_json_text() { printf '%s' "$1" | tr '\\n\\r\\t' '   ' | tr -d '\\000-\\037' | sed -e 's/\\\\/\\\\\\\\/g' -e 's/"/\\\\"/g'; }
# Put $2 for every $1 in tf_text, with builtins only (no sed, no fork): the
# values are plain tokens (an ISO time, hex, digits, a step name), and a value
# put in is never scanned again.
tf_put() {
  tf_put_rest=$tf_text
  tf_text=''
  while :; do
    case $tf_put_rest in
      *"$1"*)
        tf_text=$tf_text\${tf_put_rest%%"$1"*}$2
        tf_put_rest=\${tf_put_rest#*"$1"}
        ;;
      *) break ;;
    esac
  done
  tf_text=$tf_text$tf_put_rest
}
# The reason goes in last, at the last placeholder (its key is the record's last),
# so that a value holding the placeholder text cannot change it.
tf_fill() {
  tf_text=$1
  case $tf_text in *"${NOW}"*) tf_clock && tf_put "${NOW}" "$tf_now" ;; esac
  tf_put "${COMMIT}" "$tf_commit"
  case $tf_text in *"${FINISHED}"*) tf_put "${FINISHED}" "$tf_finished" ;; esac
  tf_put "${CODE}" "$tf_code"
  tf_put "${STEP}" "$tf_current_step"
  case $tf_text in
    *"${REASON}"*) tf_text=\${tf_text%"${REASON}"*}$(tf_json_text "$tf_reason")\${tf_text##*"${REASON}"} ;;
  esac
  printf '%s\\n' "$tf_text"
}
# Replace a record: write a temporary file next to it, then rename it over.
# The temporary name is this shell's pid (the lock keeps other runs out), made
# with noclobber: created by this write (O_EXCL), so never a link planted there
# (.tagflip is the deploy user's alone anyway: mode 700, checked by preflight).
# Should anything be at that name already, mktemp makes a new one.
tf_write() {
  tf_temp=$1.tmp.$$
  if [ -e "$tf_temp" ] || [ -L "$tf_temp" ]; then
    tf_temp=$(mktemp "$1.tmp.XXXXXX") || return 1
    tf_fill "$2" > "$tf_temp"
  else
    set -C
    tf_fill "$2" > "$tf_temp"
  fi
  tf_wrote=$?
  set +C
  if [ "$tf_wrote" -eq 0 ] && mv -f -- "$tf_temp" "$1"; then return 0; fi
  rm -f -- "$tf_temp"
  return 1
}
# The history only grows: its records are added by one write at its end
# (O_APPEND), never by rewriting it, however long it is. A crash can at worst
# tear the last line, which the reader skips (and a record appended after a
# torn one is still read: manifest.ts). .tagflip is the deploy user's alone
# (mode 700, checked by preflight), so no other user can plant a link at this
# name; a new file is made private as mktemp would have made it.
tf_append_history() {
  umask 077
  tf_fill "$1" >> "$tf_history_path"
  tf_appended=$?
  umask 022
  return "$tf_appended"
}
# Run a hook under timeout, which gives it a process group of its own; the
# session's watchdog reads the group from tf_run_dir to stop it if we vanish.
# timeout exits as soon as its child does, so a failed hook's stragglers (say,
# children ignoring SIGTERM) are killed here; a hook that succeeds may leave a
# daemon running.
tf_hook() { tf_timed yes "$@"; }
# tagflip's own commands under the same limit, without the user's env.
tf_git() { tf_timed no git "$@"; }
tf_timed() {
  # Start nothing for a client that has gone: the watchdog only stops what runs.
  if tf_connection_lost; then return 1; fi
  tf_with_env=$1
  shift
  (
    # Find timeout and the program before the user's PATH (if any) applies.
    tf_timeout=$(command -v timeout) || tf_timeout=timeout
    tf_program=$(command -v "$1") || tf_program=$1
    shift
    # The user's env is exported in this subshell only, never passed as
    # arguments: every user of the host can read any process's arguments (ps),
    # and process accounting keeps them. One NAME=value per line in
    # tf_user_env; split on newlines only, no globbing. Through command, a name
    # a shell keeps read-only (bash's UID) is skipped rather than fatal: bash
    # ignores it in a hook's environment too.
    if [ "$tf_with_env" = yes ]; then
      IFS='
'
      set -f
      for tf_pair in \${tf_user_env:-}; do command export "$tf_pair"; done
    fi
    exec "$tf_timeout" -k 5 "$tf_command_timeout" "$tf_program" "$@"
  ) &
  tf_hook_pid=$!
  if [ -n "\${tf_run_dir:-}" ]; then printf '%s\\n' "$tf_hook_pid" > "$tf_run_dir/hook"; fi
  wait "$tf_hook_pid"
  tf_hook_status=$?
  if [ "$tf_hook_status" -ne 0 ]; then kill -KILL "-$tf_hook_pid" 2>/dev/null; fi
  # Emptied, not removed (no process): the watchdog stops no group for an empty file.
  # (true, not :, whose failed redirection would end the shell.)
  if [ -n "\${tf_run_dir:-}" ]; then true 2>/dev/null > "$tf_run_dir/hook"; fi
  tf_now=''
  return "$tf_hook_status"
}
# Fetch into the mirror $1. git's own housekeeping after a fetch (gc --auto: a
# process that only acts once thousands of loose objects have gathered) runs
# on about one fetch in 16, by this shell's pid, not on every deploy.
tf_fetch() {
  tf_git -c maintenance.auto=false -c gc.auto=0 --git-dir="$1" fetch --prune --quiet origin || return
  if [ $(($$ % 16)) -eq 0 ]; then git --git-dir="$1" gc --auto --quiet </dev/null >/dev/null 2>&1 || :; fi
}
# Point the mirror $1 at the repository $2, unless its config says so already:
# read by the shell (no git process for a URL that has not changed). git writes
# the line as "<tab>url = VALUE"; a value it had to quote just reads as different.
tf_set_origin() {
  tf_origin_line="\turl = $2"
  while IFS= read -r tf_line; do
    if [ "$tf_line" = "$tf_origin_line" ]; then return 0; fi
  done < "$1/config"
  git --git-dir="$1" remote set-url origin "$2"
}`;

/**
 * The parts of data-path that tagflip copies from and removes in are its own
 * directories, never a link someone planted: `releases` a directory,
 * `current` a link to `releases/<name>` (one name, no way out of
 * releases/), and that data release a directory, not a link to one elsewhere.
 * `tf_check_data_links REPORT` calls `REPORT data MESSAGE` for each part
 * that is not (preflight: tf_problem; the migrate step: its first refusal).
 */
const DATA_LINKS = `tf_check_data_links() {
  if [ -L "$tf_data_path/releases" ]; then
    "$1" data "$tf_data_path/releases is a symlink (to '$(readlink -- "$tf_data_path/releases")'): tagflip copies data into it and removes data releases from it, never through a link; make it a directory of its own (move the link aside, mkdir $tf_data_path/releases, and move into it the data releases you trust)"
  elif [ -e "$tf_data_path/releases" ] && [ ! -d "$tf_data_path/releases" ]; then
    "$1" data "$tf_data_path/releases is not a directory; move it aside"
  fi
  if [ -e "$tf_data_path/current" ] && [ ! -L "$tf_data_path/current" ]; then
    "$1" data "$tf_data_path/current is not a symlink; move the data to $tf_data_path/releases/<name> and link current to releases/<name>"
  elif [ -L "$tf_data_path/current" ]; then
    tf_data_link=$(readlink -- "$tf_data_path/current")
    tf_data_name=\${tf_data_link#releases/}
    tf_data_name=\${tf_data_name%/}
    case $tf_data_link in releases/*) ;; *) tf_data_name=/ ;; esac
    case $tf_data_name in
      '' | . | .. | */*)
        "$1" data "$tf_data_path/current must be a relative link to releases/<name>, not to '$tf_data_link': tagflip will not copy, migrate or flip data through a link out of $tf_data_path/releases; relink it: ln -sfn releases/<name> $tf_data_path/current"
        ;;
      *)
        if [ -L "$tf_data_path/releases/$tf_data_name" ]; then
          "$1" data "$tf_data_path/releases/$tf_data_name, where $tf_data_path/current points, is a symlink (to '$(readlink -- "$tf_data_path/releases/$tf_data_name")'): tagflip copies the live data from there, never through a link; put the data itself at $tf_data_path/releases/$tf_data_name"
        fi
        ;;
    esac
  fi
}`;

const PREFLIGHT_BODY = `${DATA_LINKS}
tf_step preflight
tf_problems=0
tf_problem() { tf_problems=$((tf_problems + 1)); tf_say problem "$@"; }
# The probe goes in the session's run directory (mktemp -d), removed with it;
# none where a flip by mv -T has worked before (the flip leaves .tagflip/mv-T).
if [ -z "\${tf_run_dir:-}" ]; then
  tf_problem mktemp "mktemp -d failed: the host needs a writable temporary directory"
elif [ -f "$tf_deploy_path/.tagflip/mv-T" ]; then
  :
elif ! { true > "$tf_run_dir/probe-a" && ln -s target "$tf_run_dir/probe-b" && mv -T "$tf_run_dir/probe-b" "$tf_run_dir/probe-a"; } 2>/dev/null; then
  tf_problem mv-T "'mv -T' does not work: tagflip flips current with it; install GNU coreutils"
fi
for tf_tool in timeout sed stat; do
  command -v "$tf_tool" >/dev/null 2>&1 || tf_problem "$tf_tool" "'$tf_tool' is not installed; install GNU coreutils and sed"
done
if [ "$tf_lock" = yes ] && ! command -v flock >/dev/null 2>&1; then
  tf_problem flock "'flock' is not installed; it keeps two runs off one deploy-path; install util-linux"
fi
if [ -n "$tf_repository" ]; then
  for tf_tool in git tar; do
    command -v "$tf_tool" >/dev/null 2>&1 || tf_problem "$tf_tool" "'$tf_tool' is not installed, but repository is set; install it on the host"
  done
fi
if [ -n "$tf_upload" ]; then
  for tf_tool in tar head xargs find base64 dirname sort; do
    command -v "$tf_tool" >/dev/null 2>&1 || tf_problem "$tf_tool" "'$tf_tool' is not installed, but upload is set; install GNU tar, coreutils and findutils on the host"
  done
fi
# Another user who can write in deploy-path or .tagflip could plant a file or a
# link where tagflip writes, or swap a release: refuse that. root may own
# deploy-path (it can do anything anyway), not .tagflip, which tagflip keeps
# private (mode 700) and tightens itself when it takes the lock. data-path and
# its releases (kinds data-path, data-releases) are held as deploy-path is:
# there tagflip copies, migrates and removes data.
# $3 is the directory's "owner mode" (stat -c '%u %a'); -O: owned by who deploys.
tf_check_others() {
  [ -n "$3" ] || return 0
  tf_owner=\${3% *}
  tf_mode=\${3#* }
  case $2 in
    data-path) tf_what="data-path $1" ;;
    *) tf_what=$1 ;;
  esac
  if [ ! -O "$1" ] && { [ "$tf_owner" != 0 ] || [ "$2" = .tagflip ]; }; then
    case $2 in
      data-*) tf_problem owner "$tf_what belongs to $(stat -L -c %U -- "$1"), not to $(id -un), who deploys: another user must not be able to choose the data tagflip copies, migrates and removes; chown $(id -un) $1, or set data-path to a directory of $(id -un)'s" ;;
      *) tf_problem owner "$1 belongs to $(stat -L -c %U -- "$1"), not to $(id -un), who deploys: another user must not be able to change what tagflip runs and records; chown $(id -un) $1" ;;
    esac
  fi
  if [ $((0$tf_mode & 02)) -ne 0 ]; then
    case $2 in
      data-*) tf_problem permissions "$tf_what is writable by every user of the host (mode $tf_mode): anyone could put a link there that tagflip would copy, migrate or remove through; check it for files you did not make, then chmod o-w $1" ;;
      *) tf_problem permissions "$1 is writable by every user of the host (mode $tf_mode): anyone could plant files or links where tagflip writes; check it for files you did not make, then chmod o-w $1" ;;
    esac
  elif [ $((0$tf_mode & 020)) -ne 0 ] && [ "$2" != .tagflip ]; then
    case $2 in
      data-*) tf_say warning "$tf_what is writable by group $(stat -L -c %G -- "$1") (mode $tf_mode): its members can change the data tagflip copies, migrates and removes; chmod g-w $1 unless every member may" ;;
      *) tf_say warning "$1 is writable by group $(stat -L -c %G -- "$1") (mode $tf_mode): its members can change what tagflip deploys; chmod g-w $1 unless every member may" ;;
    esac
  fi
}
tf_nl='
'
if [ -d "$tf_deploy_path" ]; then
  tf_say fact deploy-path exists
  if [ ! -w "$tf_deploy_path" ] || { [ -e "$tf_deploy_path/.tagflip" ] && [ ! -w "$tf_deploy_path/.tagflip" ]; }; then
    tf_problem writable "$tf_deploy_path is not writable by $(id -un); chown it (and .tagflip in it) to that user"
  fi
  # Both directories in one stat: a line each, deploy-path's first.
  if [ -d "$tf_deploy_path/.tagflip" ]; then
    tf_stats=$(stat -L -c '%u %a' -- "$tf_deploy_path" "$tf_deploy_path/.tagflip" 2>/dev/null) || tf_stats=''
  else
    tf_stats=$(stat -L -c '%u %a' -- "$tf_deploy_path" 2>/dev/null) || tf_stats=''
  fi
  tf_check_others "$tf_deploy_path" deploy-path "\${tf_stats%%"$tf_nl"*}"
  case $tf_stats in
    *"$tf_nl"*)
      tf_check_others "$tf_deploy_path/.tagflip" .tagflip "\${tf_stats#*"$tf_nl"}"
      # Private already: taking the lock need not make it so (tf_private_state).
      if [ -O "$tf_deploy_path/.tagflip" ] && [ "\${tf_stats##* }" = 700 ] && [ -n "\${tf_run_dir:-}" ]; then
        true 2>/dev/null > "$tf_run_dir/private"
      fi
      ;;
  esac
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
if [ -e "$tf_deploy_path/current" ] && [ ! -L "$tf_deploy_path/current" ]; then
  tf_problem current "$tf_deploy_path/current is not a symlink; move it aside so tagflip can manage it"
fi
# data-path gets deploy-path's checks once tagflip keeps data there (migrate
# is set, or current or releases is there): a directory of the app's own that
# happens to sit at data-path is none of tagflip's business.
if [ -n "$tf_migrating" ] || [ -e "$tf_data_path/current" ] || [ -L "$tf_data_path/current" ] ||
  [ -e "$tf_data_path/releases" ] || [ -L "$tf_data_path/releases" ]; then
  if [ -d "$tf_data_path" ]; then
    # Both directories in one stat, as for deploy-path; releases only if it is one (not a link).
    if [ -d "$tf_data_path/releases" ] && [ ! -L "$tf_data_path/releases" ]; then
      tf_stats=$(stat -L -c '%u %a' -- "$tf_data_path" "$tf_data_path/releases" 2>/dev/null) || tf_stats=''
    else
      tf_stats=$(stat -L -c '%u %a' -- "$tf_data_path" 2>/dev/null) || tf_stats=''
    fi
    tf_check_others "$tf_data_path" data-path "\${tf_stats%%"$tf_nl"*}"
    case $tf_stats in
      *"$tf_nl"*) tf_check_others "$tf_data_path/releases" data-releases "\${tf_stats#*"$tf_nl"}" ;;
    esac
  elif [ -e "$tf_data_path" ] || [ -L "$tf_data_path" ]; then
    tf_problem data "data-path $tf_data_path exists but is not a directory; move it aside, or set data-path to a directory"
  fi
  tf_check_data_links tf_problem
fi
[ "$tf_problems" -eq 0 ]`;

/**
 * Which release DIR/current is, decided by real path, never by how the link is
 * written: absolute, `./releases/x`, `releases/x/`, through a symlinked DIR.
 * `tf_release_of DIR [LINK]` (LINK: the link's text, when read already) prints the name when the link leads to DIR/releases/<name>
 * and fails otherwise (no link, or a target outside DIR/releases). Its last
 * component is not resolved, so a release directory that is itself a link
 * still counts; a chain of links is followed to its end.
 * `tf_is_live DIR PATH`: PATH is what DIR/current leads to.
 */
const CURRENT_HELPERS = `# The release DIR/current leads to, by real path, however the link is written.
tf_release_of() {
  if [ "$#" -ge 2 ]; then tf_of_link=$2; else tf_of_link=$(readlink -- "$1/current") || return 1; fi
  # As tagflip writes it, releases/NAME: inside DIR/releases by its very text.
  case $tf_of_link in
    releases/*/* | releases/ | releases/. | releases/..) ;;
    releases/*)
      if [ -d "$1/releases" ] && [ -x "$1/releases" ]; then printf '%s\n' "\${tf_of_link#releases/}"; return 0; fi
      return 1
      ;;
  esac
  case $tf_of_link in /*) ;; *) tf_of_link=$1/$tf_of_link ;; esac
  while :; do case $tf_of_link in */) tf_of_link=\${tf_of_link%/} ;; *) break ;; esac; done
  [ -n "$tf_of_link" ] || return 1
  tf_of_releases=$(cd -P -- "$1/releases" 2>/dev/null && pwd) || return 1
  tf_of_name=\${tf_of_link##*/}
  tf_of_parent=\${tf_of_link%/*}
  tf_of_parent=$(cd -P -- "\${tf_of_parent:-/}" 2>/dev/null && pwd) || tf_of_parent=''
  if [ "$tf_of_parent" != "$tf_of_releases" ] || [ "$tf_of_name" = . ] || [ "$tf_of_name" = .. ]; then
    tf_of_real=$(readlink -f -- "$1/current") || return 1
    tf_of_name=\${tf_of_real##*/}
    [ "\${tf_of_real%/*}" = "$tf_of_releases" ] || return 1
  fi
  printf '%s\\n' "$tf_of_name"
}
# Whether PATH is what DIR/current leads to (real paths compared).
tf_is_live() {
  tf_live=$(readlink -f -- "$1/current" 2>/dev/null) && [ -n "$tf_live" ] &&
    [ "$tf_live" = "$(readlink -f -- "$2" 2>/dev/null)" ]
}`;

const FACTS_BODY = `${CURRENT_HELPERS}
tf_step facts
tf_current_link=''
if [ -L "$tf_deploy_path/current" ] && tf_current_link=$(readlink -- "$tf_deploy_path/current"); then
  tf_say fact current "$tf_current_link"
  if tf_name=$(tf_release_of "$tf_deploy_path" "$tf_current_link"); then
    tf_say fact current-release "$tf_name"
    # A current release without a record (made by hand, by Capistrano) is adopted
    # by the next flip: say its commit, when its directory tells it cheaply.
    tf_dir=$tf_deploy_path/releases/$tf_name
    if [ -d "$tf_dir" ] && [ ! -f "$tf_deploy_path/.tagflip/releases/$tf_name.json" ]; then
      if [ -f "$tf_dir/REVISION" ]; then
        tf_say fact current-commit "$(head -c 64 -- "$tf_dir/REVISION" | tr -d '[:space:]')"
      elif [ -e "$tf_dir/.git" ] && command -v git >/dev/null 2>&1; then
        tf_say fact current-commit "$(git -C "$tf_dir" rev-parse --verify --quiet HEAD 2>/dev/null </dev/null)"
      fi
    fi
  fi
fi
if [ -n "$tf_release" ] && { [ -e "$tf_release_path" ] || [ -L "$tf_release_path" ]; }; then tf_say fact release-dir present; fi
for tf_dir in "$tf_deploy_path"/releases/*/; do
  if [ -d "$tf_dir" ]; then tf_dir=\${tf_dir%/}; tf_say fact dir "\${tf_dir##*/}"; fi
done
if [ -L "$tf_data_path/current" ]; then
  tf_say fact data-current "$(readlink -- "$tf_data_path/current")"
  if tf_name=$(tf_release_of "$tf_data_path"); then tf_say fact data-current-release "$tf_name"; fi
fi
for tf_dir in "$tf_data_path"/releases/*/; do
  if [ -d "$tf_dir" ]; then tf_dir=\${tf_dir%/}; tf_say fact data-dir "\${tf_dir##*/}"; fi
done
# Every record in one read (awk), not a process per file: a site may keep
# hundreds. awk gets the records' names on its input (names have no newline:
# settings.ts), reads each itself, then, after an empty line, the newest
# history lines, however long the history has grown (tail seeks from its end).
# The tag reaches awk in its environment, never in its arguments (ps shows
# those). Without awk, the shell's own read does it, slower but without forks.
if command -v awk >/dev/null 2>&1; then
  {
    for tf_manifest in "$tf_deploy_path"/.tagflip/releases/*.json; do
      if [ -f "$tf_manifest" ] && [ -r "$tf_manifest" ]; then printf '%s\\n' "$tf_manifest"; fi
    done
    printf '\\n'
    if [ -f "$tf_history_path" ]; then tail -n 200 -- "$tf_history_path"; fi
  } | tf_awk_tag=$tf_tag awk '
    history { printf "\\n%s history %s\\n", ENVIRON["tf_awk_tag"], $0; next }
    $0 == "" { history = 1; next }
    {
      file = $0; text = ""; lines = 0
      while ((getline line < file) > 0) { text = text line; lines++ }
      close(file)
      if (lines > 0) printf "\\n%s manifest %s\\n", ENVIRON["tf_awk_tag"], text
    }'
else
  for tf_manifest in "$tf_deploy_path"/.tagflip/releases/*.json; do
    if [ -f "$tf_manifest" ] && [ -r "$tf_manifest" ]; then
      tf_text=''
      while IFS= read -r tf_line || [ -n "$tf_line" ]; do tf_text=$tf_text$tf_line; done < "$tf_manifest"
      tf_say manifest "$tf_text"
    fi
  done
  if [ -f "$tf_history_path" ]; then
    tail -n 200 -- "$tf_history_path" | while IFS= read -r tf_line; do tf_say history "$tf_line"; done
  fi
fi
tf_lock_file=$tf_deploy_path/.tagflip/lock
# Held means flock's exit status 1; a flock that cannot run says nothing of a holder.
if [ "$tf_lock" = report ] && [ -f "$tf_lock_file" ] && command -v flock >/dev/null 2>&1; then
  flock -n "$tf_lock_file" true 2>/dev/null
  if [ "$?" -eq 1 ]; then tf_say fact lock-holder "$(tr -d '\\n' < "$tf_lock_file.json" 2>/dev/null)"; fi
fi
# One release name, one content: a complete release of this name is used again
# only if it was made from the commit the ref names now. Resolved only when a
# record and a directory of the release exist (a new name costs nothing here).
# Fetching writes the shared mirror, so only a run holding the lock fetches; a
# dry run reads the mirror as it is.
if [ -n "$tf_repository" ] && [ -n "$tf_release" ] && [ -f "$tf_manifest_path" ] && [ -d "$tf_release_path" ]; then
  tf_mirror=$tf_deploy_path/.tagflip/repo.git
  export GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND='ssh -o BatchMode=yes'
  tf_fetched=yes
  if [ "$tf_lock" = yes ] && [ -d "$tf_mirror" ]; then
    tf_set_origin "$tf_mirror" "$tf_repository" &&
      tf_fetch "$tf_mirror" || tf_fetched="git fetch from $tf_repository failed"
  elif [ "$tf_lock" = yes ]; then
    rm -rf -- "$tf_mirror.tmp" &&
      tf_git clone --mirror --quiet -- "$tf_repository" "$tf_mirror.tmp" &&
      mv -T -- "$tf_mirror.tmp" "$tf_mirror" || tf_fetched="git clone of $tf_repository failed"
  fi
  if [ "$tf_fetched" != yes ]; then
    tf_say fact source-error "$tf_fetched"
  elif tf_source=$(git --git-dir="$tf_mirror" rev-parse --verify --quiet "$tf_ref^{commit}" 2>/dev/null); then
    tf_say fact source-commit "$tf_source"
  elif [ "$tf_lock" = yes ]; then
    tf_say fact source-error "'$tf_ref' is not a tag, branch or commit in $tf_repository"
  fi
fi`;

/**
 * The identity of the regular files at and under the paths given, one
 * NUL-ended line each: device, inode, mode, size, mtime and ctime as the file
 * system keeps them (to the nanosecond where it does), path. Only of what no
 * other user can have written or swapped: files of the deploy user's ($tf_uid)
 * that others cannot write, in directories of the deploy user's that others
 * cannot write; find goes into no other directory (its entries could be
 * replaced at any moment, also between a check and a copy). Group write counts
 * as others' unless the group is the deploy user's own ($tf_gid:
 * tf_identity_owner). No single quote in it: it goes into sh -c texts.
 */
const IDENTITIES = `find "$@" \\( -type d \\( -perm -0002 -o ! -user "$tf_uid" -o \\( -perm -0020 ! -group "$tf_gid" \\) \\) -prune \\) -o \\( -type f -user "$tf_uid" ! -perm -0002 ! \\( -perm -0020 ! -group "$tf_gid" \\) -printf "%D %i %m %s %T@ %C@ %p\\\\0" \\)`;

/**
 * tf_uid and tf_gid for IDENTITIES: the deploy user, and the group whose write
 * permission is as good as the user's own, the user's primary group when it is
 * a user private group (named as the user), else one no file has (2^31 - 1).
 */
export const IDENTITY_FUNCTIONS = `tf_identity_owner() {
  # Once a session (OPEN_BODY, for an upload): the facts and the build inherit them.
  if [ -n "\${tf_uid:-}" ] && [ -n "\${tf_gid:-}" ]; then return 0; fi
  tf_uid=$(id -u) && tf_gid=$(id -g) && tf_uname=$(id -un) && tf_gname=$(id -gn) || return 1
  if [ "$tf_uname" != "$tf_gname" ]; then tf_gid=2147483647; fi
}
tf_identities() {
  ${IDENTITIES}
}`;

/**
 * With upload: the content list of the current release, if it was uploaded,
 * and which of its files are still as uploaded, so that the runner sends the
 * others again instead of letting the host copy them. The evidence is the
 * identity recorded when the upload step wrote them (.ids, IDENTITIES, sorted):
 * a file whose device, inode, mode, size, mtime and ctime are all still those
 * was not written, replaced, moved in or chmod-ed since, by a build or by
 * anyone else, whatever the file system's timestamps' granularity (the upload
 * step waited for its clock to move past the record before anything else ran).
 * comm compares the lines as bytes, names too. The answer is the paths of those
 * files (./path), from a start (s) to the status (e): without a whole answer
 * and a 0 there, nothing is reused and everything is sent. Sent base64 in
 * lines the client takes whole (under MAX_LINE). Under the deploy lock, the
 * copy of exactly those files starts now (PRECOPY_FUNCTIONS): no other file of
 * the current release can reach the new one.
 */
const CONTENT_FACTS_BODY = `tf_link=$tf_current_link
tf_name=\${tf_link#releases/}
tf_name=\${tf_name%/}
tf_list=$tf_deploy_path/.tagflip/releases/$tf_name.files
tf_ids=$tf_deploy_path/.tagflip/releases/$tf_name.ids
if [ -n "$tf_upload" ] && [ -n "$tf_run_dir" ] && [ "$tf_link" != "$tf_name" ] && [ -f "$tf_list" ] && [ -f "$tf_ids" ] && [ -d "$tf_deploy_path/releases/$tf_name" ]; then
  tf_verified=$tf_run_dir/verified
  if tf_seen=$(cd "$tf_deploy_path/releases/$tf_name" && {
    printf 's\\0'
    # Each step's status on its own (a pipeline's is its last command's).
    if tf_identity_owner && tf_identities . > "$tf_verified.now" &&
      LC_ALL=C sort -z -o "$tf_verified.now" -- "$tf_verified.now" &&
      LC_ALL=C comm -z -12 -- "$tf_verified.now" "$tf_ids" > "$tf_verified" &&
      cut -z -d ' ' -f 7- < "$tf_verified" > "$tf_verified.paths"; then
      cat -- "$tf_verified.paths"
      printf 'e0\\0'
      if [ "$tf_lock" = yes ] && [ ! -e "$tf_release_path" ] && [ ! -L "$tf_release_path" ] && [ -s "$tf_verified" ]; then
        # Files over 1 MiB first (COPY_FILES).
        LC_ALL=C sort -z -t ' ' -k 4,4nr -- "$tf_verified" | cut -z -d ' ' -f 7- > "$tf_run_dir/untouched" &&
          tf_precopy_start "$tf_run_dir/untouched" "$tf_verified" </dev/null >/dev/null 2>&1
      fi
    else
      printf 'e1\\0'
    fi
  } | base64 -w 60000); then
    # The tag never goes in an argument (every user can read those: ps): awk
    # reads it from its environment, as the facts' awk does (the list's path is
    # absolute, never taken for an assignment); sed, without awk, from a
    # script file in the run directory (mode 700). One process per list,
    # whatever its length (50,000 lines), none per line.
    if command -v awk >/dev/null 2>&1; then
      printf '%s\\n' "$tf_seen" | tf_awk_tag=$tf_tag awk '
        FNR == 1 { kind = (kind == "") ? " content-seen " : " content-list " }
        { print ENVIRON["tf_awk_tag"] kind $0 }' - "$tf_list"
    elif printf 's/^/%s content-seen /\\n' "$tf_tag" > "$tf_run_dir/seen.sed" &&
      printf 's/^/%s content-list /\\n' "$tf_tag" > "$tf_run_dir/list.sed"; then
      printf '%s\\n' "$tf_seen" | sed -f "$tf_run_dir/seen.sed"
      sed -f "$tf_run_dir/list.sed" -- "$tf_list"
    fi
    if [ -s "$tf_run_dir/precopy.job" ]; then tf_say fact precopy yes; fi
  fi
fi`;

/**
 * The copy of the files a new release reuses, as an sh -c text run in the
 * release they come from: $1 the file of their paths (./path, NUL-ended; files
 * over 1 MiB first, so that the copiers do not end with one of them copying a
 * large file alone), $2 where to (a directory only this user can enter), $3
 * their identities as the facts verified them (sorted). As many copiers at
 * once as the host has CPUs, at most 8, into directories made beforehand: two
 * cp --parents making one directory at the same time would fail. Copied
 * (reflinked where the file system can), never hard-linked: the release they
 * come from stays as it was whatever the new build does to its copy. Once
 * copied, the files are checked again: one written, replaced or moved while it
 * was being copied no longer has its identity, and the copy is not taken
 * ($2.failed says why). The copy is made under the name its record lists, the
 * identity check never follows a symlink (find -P), and find goes into no
 * directory another user could have swapped (IDENTITIES).
 */
const COPY_FILES = `copiers=$(nproc 2>/dev/null) || copiers=2
  if [ "$copiers" -gt 8 ]; then copiers=8; fi
  if ! { xargs -0 dirname -z -- < "$1" | LC_ALL=C sort -zu | (cd "$2" && xargs -0 mkdir -p --) &&
    xargs -0 -P "$copiers" -n 256 cp --parents --preserve=mode --reflink=auto -t "$2" -- < "$1"; }; then
    echo copy > "$2.failed"
    exit 1
  fi
  if ! { tf_identities() { ${IDENTITIES}; } && tf_identities . > "$2.after" && LC_ALL=C sort -z -o "$2.after" -- "$2.after" &&
    LC_ALL=C comm -z -13 -- "$2.after" "$3" > "$2.moved" && [ ! -s "$2.moved" ]; }; then
    echo changed > "$2.failed"
    exit 1
  fi
  rm -f -- "$2.after" "$2.moved"`;

/**
 * The copy of the files a new release reuses (CONTENT_FACTS_BODY), started with
 * the facts instead of after the client's plan (a round trip and the plan
 * later): tf_precopy_start copies them into .tagflip/precopy.PID, a directory
 * of this session's, in a process group of its own (timeout's) that holds an
 * exclusive lock on precopy.PID.lock while it runs and makes precopy.PID.ok
 * once done and checked (COPY_FILES). The build's upload step waits on that
 * lock, keeps in the copy just the files the plan says are unchanged, and
 * renames it into the release (UPLOAD_STEP). tf_precopy_stop ends a copy
 * nobody took: at the session's end (CLOSE_WORDS, the EXIT trap, the watchdog
 * once the session is gone), or when the plan has no use for it.
 */
export const PRECOPY_FUNCTIONS = `tf_precopy_dir=$tf_deploy_path/.tagflip/precopy.$tf_session_pid
${IDENTITY_FUNCTIONS}
tf_precopy_start() {
  # Under the deploy lock, another session's copy is one its end did not remove (the host went down).
  for tf_left in "$tf_deploy_path"/.tagflip/precopy.*; do
    if [ -e "$tf_left" ]; then rm -rf -- "$tf_left" 2>/dev/null; fi
  done
  mkdir -- "$tf_precopy_dir" || return 1
  if ! { command exec 7>"$tf_precopy_dir.lock" && flock 7; }; then
    exec 7>&-
    rm -rf -- "$tf_precopy_dir" "$tf_precopy_dir.lock"
    return 1
  fi
  # fd 7 (the lock) goes with it; fd 9 (the deploy lock) does not.
  tf_uid=$tf_uid tf_gid=$tf_gid timeout -k 5 "$tf_command_timeout" sh -c '${COPY_FILES} && : > "$2.ok"' sh "$1" "$tf_precopy_dir" "$2" 9>&- &
  # Only the copy holds the lock now.
  exec 7>&-
  printf '%s\\n' "$!" > "$tf_run_dir/precopy.job"
}
# What is left of it, once taken or stopped.
tf_precopy_remove() {
  rm -rf -- "$tf_precopy_dir" "$tf_precopy_dir.lock" "$tf_precopy_dir.ok" "$tf_precopy_dir.failed" "$tf_precopy_dir.after" "$tf_precopy_dir.moved" "$tf_run_dir/precopy.job"
}
tf_precopy_stop() {
  if [ -z "\${tf_run_dir:-}" ] || [ ! -s "$tf_run_dir/precopy.job" ]; then return 0; fi
  read -r tf_precopy_job < "$tf_run_dir/precopy.job" || tf_precopy_job=''
  # Still copying (its lock is held): stop its group, and wait until all of it is gone.
  if [ -n "$tf_precopy_job" ] && ! flock -n 7 7<"$tf_precopy_dir.lock" 2>/dev/null; then
    kill -TERM "-$tf_precopy_job" 2>/dev/null
    flock 7 7<"$tf_precopy_dir.lock" 2>/dev/null
  fi
  tf_precopy_remove
}`;

/**
 * The first round trip, run in the session shell itself (scope 'session'):
 * start the watchdog, check the host (preflight), take the deploy lock, read
 * the facts. Preflight and facts run in subshells; only the lock's file
 * descriptor (9) and the watchdog outlive this script, and both end with the
 * session.
 */
const OPEN_BODY = `tf_run_dir=$(mktemp -d 2>/dev/null) || tf_run_dir=''
tf_session_pid=$$
${PRECOPY_FUNCTIONS}
if [ -n "$tf_upload" ]; then tf_identity_owner; fi
# A lost connection must not kill this shell at its next write: it finishes the
# phase it runs (a build cleans up after itself) while it still holds the lock,
# then exits when it cannot report the phase's end (session.ts).
trap : PIPE HUP
# However the shell ends (but SIGKILL: the watchdog sees to that), the copy started for the build goes.
trap tf_precopy_stop EXIT
# The watchdog pings on stderr. When a ping cannot be written, the connection is
# gone: say so in tf_run_dir/lost, and stop the running hook's process group (and
# any that starts later), so no build outlives its deploy.
(
  trap '' PIPE HUP
  # Stopped (the session's closing words), it takes its sleep with it: nothing
  # of the session outlives it.
  tf_nap=''
  trap 'if [ -n "$tf_nap" ]; then kill "$tf_nap" 2>/dev/null; fi; exit 0' TERM
  tf_lost=no
  while kill -0 "$tf_session_pid" 2>/dev/null; do
    if [ "$tf_lost" = no ] && ! printf '\\n%s ping\\n' "$tf_tag" >&2; then
      tf_lost=yes
      if [ -n "$tf_run_dir" ]; then : > "$tf_run_dir/lost"; fi
    fi
    if [ "$tf_lost" = yes ]; then
      tf_group=$(cat "$tf_run_dir/hook" 2>/dev/null) || tf_group=''
      if [ -n "$tf_group" ]; then
        kill -TERM "-$tf_group" 2>/dev/null
        sleep 3
        kill -KILL "-$tf_group" 2>/dev/null
      fi
    fi
    sleep 1 2>/dev/null &  # (not holding stderr, so killing the watchdog frees it at once)
    tf_nap=$!
    wait "$tf_nap"
    tf_nap=''
  done
  tf_precopy_stop
  rm -rf -- "$tf_run_dir"
) </dev/null >/dev/null 9>&- &
tf_watchdog=$!
(
${PRELUDE}
${PREFLIGHT_BODY}
) 9>&- 2>&1
tf_ready=$?
tf_locked=no
# .tagflip holds the repository mirror (every branch's whole history, secrets
# deleted long ago included) and tagflip's records: only the deploy user may
# read it. One made before tagflip did so is made private by the next run that
# takes the lock (preflight refused it if another user owns it).
tf_private_state() {
  if [ -n "$tf_run_dir" ] && [ -e "$tf_run_dir/private" ]; then return 0; fi
  (umask 022 && mkdir -p -- "$tf_deploy_path") &&
    { mkdir -m 700 -- "$tf_deploy_path/.tagflip" 2>/dev/null || [ -d "$tf_deploy_path/.tagflip" ]; } &&
    chmod 700 -- "$tf_deploy_path/.tagflip"
}
if [ "$tf_ready" -eq 0 ] && [ "$tf_lock" = yes ]; then
  tf_lock_file=$tf_deploy_path/.tagflip/lock
  tf_lock_open=no
  if tf_private_state && command exec 9>>"$tf_lock_file"; then
    tf_lock_open=yes
    # flock exits 1 when another run holds the lock; any other failure (a
    # BusyBox without the applet: 127) is told as it is, at once, not as a wait.
    tf_flock_said=$(flock -n 9 2>&1)
    tf_flock_status=$?
    if [ "$tf_flock_status" -eq 1 ]; then
      printf '\\n%s waiting %s\\n' "$tf_tag" "$(tr -d '\\n' < "$tf_lock_file.json" 2>/dev/null)"
      tf_flock_said=$(flock -w "$tf_lock_timeout" 9 2>&1)
      tf_flock_status=$?
    fi
    if [ "$tf_flock_status" -eq 0 ]; then tf_locked=yes; fi
  fi
  if [ "$tf_locked" = yes ]; then
    # Through a temporary file renamed over it, named as tf_write names them.
    tf_temp=$tf_lock_file.json.tmp.$$
    if [ -e "$tf_temp" ] || [ -L "$tf_temp" ]; then tf_temp=$(mktemp "$tf_lock_file.json.tmp.XXXXXX"); else set -C; fi
    if ! { printf '%s\\n' "\${tf_lock_holder%"${NOW}"*}$(date -u +%Y-%m-%dT%H:%M:%SZ)\${tf_lock_holder##*"${NOW}"}" > "$tf_temp" &&
        mv -f -- "$tf_temp" "$tf_lock_file.json"; }; then
      rm -f -- "$tf_temp"
    fi
    set +C
    printf '\\n%s locked\\n' "$tf_tag"
  elif [ "$tf_lock_open" = no ]; then
    printf '\\n%s lock-error cannot open %s\\n' "$tf_tag" "$tf_lock_file"
  elif [ "$tf_flock_status" -ne 1 ]; then
    printf '\\n%s flock-failed %s %s\\n' "$tf_tag" "$tf_flock_status" "$(printf '%s' "$tf_flock_said" | tr '\\n' ' ')"
  else
    printf '\\n%s lock-timeout %s\\n' "$tf_tag" "$(tr -d '\\n' < "$tf_lock_file.json" 2>/dev/null)"
  fi
fi
if { [ "$tf_ready" -eq 0 ] && [ "$tf_lock" != yes ]; } || [ "$tf_locked" = yes ]; then
  (
${PRELUDE}
${FACTS_BODY}
${CONTENT_FACTS_BODY}
  ) 9>&- 2>&1
fi`;

export interface OpenOptions {
  /** yes: take the lock (deploy, rollback, prune); report: only say who holds it (status); no: neither (dry run). */
  lock: 'yes' | 'report' | 'no';
  lockTimeout: number;
  holder: LockHolder;
}

/**
 * Phases 1–3 in one round trip: watchdog, preflight, lock, facts. Changes
 * nothing but the lock, and for an upload's re-deploy .tagflip/precopy.PID,
 * which the session removes unless the build takes it (PRECOPY_FUNCTIONS).
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

/**
 * Wait until the file system's clock has moved past the mtime of $tf_stamp, so
 * that whatever is written from now on comes out newer than it: $tf_probe, a
 * file beside it, is rewritten until it is newer. Where the clock ticks finely
 * (a few ms), builtins only, no process; after 200 tries (a file system that
 * keeps whole seconds, or a shell whose test compares whole seconds, as
 * BusyBox's) with a nap between tries, for up to 3 s. Returns 1 if the clock
 * did not move by then. -nt is not POSIX, but dash, bash, ksh and BusyBox have
 * it; a shell without it waits the 3 s and returns 1. Leaves $tf_probe behind.
 */
export const PAST_THE_STAMP = `tf_past_the_stamp() {
  tf_tries=0
  tf_waited=0
  # shellcheck disable=SC3013
  until [ "$tf_probe" -nt "$tf_stamp" ] 2>/dev/null; do
    tf_tries=$((tf_tries + 1))
    if [ "$tf_tries" -gt 200 ]; then
      if [ "$tf_waited" -ge 300 ]; then return 1; fi
      if sleep 0.01 2>/dev/null; then tf_waited=$((tf_waited + 1)); else sleep 1; tf_waited=$((tf_waited + 100)); fi
    fi
    { true > "$tf_probe"; } 2>/dev/null || return 1
  done
}`;

/**
 * tf_exactly N: exactly N bytes of the input, never one more (what follows is
 * the shell's). dd in 256 KiB reads where it can count bytes (its last read
 * asks for just what is left); else head -c, which reads 8 KiB at a time:
 * 26,000 reads and as many writes for 211 MB, a tenth of a second or two of
 * the host's CPU more.
 */
export const EXACT_BYTES = `  if [ "$(printf abc | dd bs=4 iflag=count_bytes,fullblock count=2 status=none 2>/dev/null)" = ab ]; then
    tf_exactly() { dd bs=256K iflag=count_bytes,fullblock count="$1" status=none; }
  else
    tf_exactly() { head -c "$1"; }
  fi`;

/**
 * The upload step of the build phase (SPEC step 6, upload). The session's
 * stdin is fd 8 here (session.ts, sendData): the host asked for exactly
 * tf_upload_bytes when the build phase began (BUILD_BODY), sent as two
 * sections, each read with head -c: a tar of what changed, and the content
 * list. The files unchanged since the current release come from the copy the
 * session started with the facts (PRECOPY_FUNCTIONS), and only those the plan
 * names (their paths, NUL-ended, base64, in the script): that list is an
 * allow-list, compared with the copy as bytes, and whatever else the copy
 * holds goes. Every byte is read whatever fails, so that none is left for the
 * shell to run; a failure is reported once all are read. The content list is
 * written only when the last section arrived whole, and then the identity of
 * every file as uploaded (.ids, IDENTITIES), the next deploy's evidence that a
 * file is still as uploaded: kept only once the file system's clock has moved
 * past it (PAST_THE_STAMP), so that no build, hook or app that writes a file
 * later can leave it with the identity it had.
 */
const UPLOAD_STEP = `  tf_step upload
  tf_upload_error=''
  tf_incoming=$tf_content_list.incoming
${EXACT_BYTES}
  # Feed exactly $1 bytes of the input to the command that follows; drain what it leaves.
  tf_take() {
    tf_count=$1
    shift
    if [ -n "$tf_upload_error" ]; then set -- tf_discard; fi
    tf_exactly "$tf_count" <&8 | { "$@"; tf_took=$?; cat > /dev/null; exit "$tf_took"; }
  }
  tf_discard() { cat > /dev/null; }
  tf_save() { cat > "$1"; }
  tf_failed() { if [ -z "$tf_upload_error" ]; then tf_upload_error=$1; fi; }
  # The copy made with the facts, if the plan reuses files; else it is stopped at once.
  tf_precopied=''
  if [ -n "\${tf_run_dir:-}" ] && [ -s "$tf_run_dir/precopy.job" ]; then
    if [ -n "$tf_unchanged_list" ]; then tf_precopied=\${tf_precopy_dir:-}; else tf_precopy_stop; fi
  fi
  if [ -n "$tf_unchanged_list" ] && [ -z "$tf_precopied" ]; then
    tf_failed "the copy of the unchanged files of releases/$tf_upload_from is missing"
  elif [ -n "$tf_precopied" ]; then
    # Done once its lock is free.
    flock 7 7<"$tf_precopied.lock" 2>/dev/null
    tf_precopy_how="the copy of releases/$tf_upload_from made with the facts"
    if [ ! -e "$tf_precopied.ok" ] && [ "$(cat -- "$tf_precopied.failed" 2>/dev/null)" != changed ]; then
      # It failed otherwise (its timeout, the disk): the files the plan keeps
      # are copied now, from the same release, and checked the same way.
      tf_precopy_how="the unchanged files of releases/$tf_upload_from, copied after the copy made with the facts failed"
      rm -rf -- "$tf_precopied" "$tf_precopied.failed" && mkdir -- "$tf_precopied" && tf_identity_owner &&
        printf '%s' "$tf_unchanged_list" | base64 -d | sed -z 's,^,./,' > "$tf_incoming.keep" &&
        (cd "$tf_deploy_path/releases/$tf_upload_from" && tf_uid=$tf_uid tf_gid=$tf_gid sh -c '${COPY_FILES}' sh "$tf_incoming.keep" "$tf_precopied" "$tf_run_dir/verified") &&
        : > "$tf_precopied.ok"
    fi
    if [ ! -e "$tf_precopied.ok" ]; then
      if [ "$(cat -- "$tf_precopied.failed" 2>/dev/null)" = changed ]; then
        tf_failed "files of releases/$tf_upload_from changed while they were copied into releases/$tf_release: something writes into the live release (deploy again; the next deploy sends those files)"
      else
        tf_failed "copying the unchanged files from releases/$tf_upload_from failed"
      fi
    elif ! (
      # The copy keeps what the plan lists and nothing else (names compared as
      # bytes), and must have all of it; then the directories left empty go
      # (the tar brings every directory of the new tree).
      cd "$tf_precopied" &&
        printf '%s' "$tf_unchanged_list" | base64 -d | LC_ALL=C sort -z > "$tf_incoming.keep" &&
        find . -mindepth 1 ! -type d -printf '%P\\0' | LC_ALL=C sort -z > "$tf_incoming.have" &&
        LC_ALL=C comm -z -13 -- "$tf_incoming.have" "$tf_incoming.keep" > "$tf_incoming.lacking" &&
        [ ! -s "$tf_incoming.lacking" ] &&
        LC_ALL=C comm -z -23 -- "$tf_incoming.have" "$tf_incoming.keep" | xargs -0 -r rm -f -- &&
        find . -mindepth 1 -depth -type d -empty -delete
    ); then
      tf_failed "keeping the unchanged files of releases/$tf_upload_from failed"
    elif rmdir -- "$tf_release_path" && mv -- "$tf_precopied" "$tf_release_path"; then
      tf_say debug "releases/$tf_release starts from $tf_precopy_how"
    else
      tf_failed "cannot move the copy of the unchanged files into $tf_release_path"
    fi
    rm -f -- "$tf_incoming.keep" "$tf_incoming.have" "$tf_incoming.lacking"
    tf_precopy_remove
  fi
  # From here on, each section is read whole whatever happens (tf_take).
  tf_unread=''
  tf_take "$tf_tar_bytes" tar -x -f - -C "$tf_release_path" --no-same-owner -p
  tf_status=$?
  if [ "$tf_status" -eq 153 ]; then
    tf_failed "the upload exceeded the file size limit (SIGXFSZ, ulimit -f): the host is out of space for it"
  elif [ "$tf_status" -ne 0 ]; then
    tf_failed "unpacking the upload into $tf_release_path failed (tar exited with status $tf_status)"
  fi
  tf_take "$tf_list_bytes" tf_save "$tf_incoming" || tf_failed "cannot write $tf_incoming"
  exec 8<&-
  if [ -z "$tf_upload_error" ] && [ "$(wc -c < "$tf_incoming")" -ne "$tf_list_bytes" ]; then
    tf_failed "the upload ended early: the connection was lost"
  fi
  if [ -n "$tf_upload_error" ]; then
    rm -f -- "$tf_incoming"
    if [ ! -w "$tf_release_path" ] || [ "$(df -P -- "$tf_release_path" 2>/dev/null | awk 'NR==2 {print $4}')" = 0 ]; then
      tf_upload_error="$tf_upload_error; the host is out of disk space"
    fi
    tf_abort 1 "$tf_upload_error"
  fi
  mv -f -- "$tf_incoming" "$tf_content_list" || tf_abort 1 "cannot write $tf_content_list"
  # Without it the next deploy sends everything: nothing to fail for.
  tf_probe=$tf_content_ids.probe
  tf_stamp=$tf_content_ids.stamp
  if ! { tf_identity_owner && (cd "$tf_release_path" && tf_identities .) > "$tf_incoming" &&
    LC_ALL=C sort -z -o "$tf_incoming" -- "$tf_incoming" && : > "$tf_stamp" && tf_past_the_stamp &&
    mv -f -- "$tf_incoming" "$tf_content_ids"; }; then
    tf_say debug "no record of the identity of the files of releases/$tf_release: the next deploy sends them all"
  fi
  rm -f -- "$tf_incoming" "$tf_probe" "$tf_stamp"
  tf_say received`;

const BUILD_BODY = `${CURRENT_HELPERS}
${IDENTITY_FUNCTIONS}
${PAST_THE_STAMP}
${DATA_LINKS}
tf_data_copy=''
tf_content_list=$tf_deploy_path/.tagflip/releases/$tf_release.files
tf_content_ids=$tf_deploy_path/.tagflip/releases/$tf_release.ids
# Remove what this build made (never what is live) and record it as failed, with
# the step, the exit code and the reason. This also runs when the client has
# gone (the lock is still held), so the host's records tell what happened.
tf_abort() {
  tf_code=$1
  tf_reason=$2
  if tf_connection_lost; then tf_reason='interrupted: connection lost'; fi
  cd / || :
  if ! tf_is_live "$tf_deploy_path" "$tf_release_path"; then rm -rf -- "$tf_release_path" "$tf_content_list" "$tf_content_ids"; fi
  if [ -n "$tf_data_copy" ]; then
    tf_live_data=$(readlink -f -- "$tf_data_path/current" 2>/dev/null) || tf_live_data=''
    if [ -z "$tf_live_data" ] || [ "$tf_live_data" != "$(readlink -f -- "$tf_data_copy")" ]; then rm -rf -- "$tf_data_copy"; fi
  fi
  tf_write "$tf_manifest_path" "$tf_manifest_failed" || :
  tf_append_history "$tf_history_failed" || :
  tf_fail "$tf_code" "$tf_reason"
}
# An upload's bytes are asked for at once, so that they travel while the
# release is prepared and the copy made with the facts finishes: a round trip
# less. Until the upload step reads them, whatever ends this phase reads them
# all first (the EXIT trap): none is left for the shell to run.
tf_unread=''
if [ -n "$tf_upload_bytes" ]; then
  trap 'if [ -n "$tf_unread" ]; then head -c "$tf_unread" <&8 >/dev/null; fi' EXIT
  tf_unread=$tf_upload_bytes
  tf_say receive "$tf_upload_bytes"
fi
tf_step prepare
{ [ -d "$tf_deploy_path/releases" ] && [ -d "$tf_deploy_path/.tagflip/releases" ]; } ||
  mkdir -p -- "$tf_deploy_path/releases" "$tf_deploy_path/.tagflip/releases" ||
  tf_fail 1 "cannot create $tf_deploy_path/releases"
# (A release directory that does not exist can be current only through a
# dangling current: the real paths are compared only then, or when it exists.)
if { [ -e "$tf_release_path" ] || [ -L "$tf_release_path" ] || { [ -L "$tf_deploy_path/current" ] && [ ! -e "$tf_deploy_path/current" ]; }; } &&
  tf_is_live "$tf_deploy_path" "$tf_release_path"; then
  tf_fail 1 "releases/$tf_release is the current release; it is never rebuilt in place"
fi
if [ -e "$tf_release_path" ] || [ -L "$tf_release_path" ]; then
  tf_say log "removing releases/$tf_release before building it again"
  rm -rf -- "$tf_release_path" || tf_fail 1 "cannot remove the earlier $tf_release_path"
fi
mkdir -- "$tf_release_path" || tf_fail 1 "cannot create $tf_release_path"
# A content list left by an earlier build of this name must not describe this one.
if [ -e "$tf_content_list" ] || [ -e "$tf_content_ids" ] || [ -L "$tf_content_list" ] || [ -L "$tf_content_ids" ]; then
  rm -f -- "$tf_content_list" "$tf_content_ids" || tf_fail 1 "cannot remove $tf_content_list"
fi
tf_write "$tf_manifest_path" "$tf_manifest_building" || tf_abort 1 "cannot write $tf_manifest_path"
tf_step source
if [ -n "$tf_repository" ]; then
  tf_mirror=$tf_deploy_path/.tagflip/repo.git
  export GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND='ssh -o BatchMode=yes'
  if [ -d "$tf_mirror" ]; then
    tf_set_origin "$tf_mirror" "$tf_repository" &&
      tf_fetch "$tf_mirror" ||
      tf_abort $? "git fetch from $tf_repository failed"
  else
    rm -rf -- "$tf_mirror.tmp" &&
      tf_git clone --mirror --quiet -- "$tf_repository" "$tf_mirror.tmp" &&
      mv -T -- "$tf_mirror.tmp" "$tf_mirror" ||
      tf_abort $? "git clone of $tf_repository failed"
  fi
  tf_commit=$(git --git-dir="$tf_mirror" rev-parse --verify --quiet "$tf_ref^{commit}") ||
    tf_abort 1 "'$tf_ref' is not a tag, branch or commit in $tf_repository"
  # Streamed into tar, with no copy of the tree on disk. A pipeline's status is
  # its last command's, so git's own comes out on fd 3, into tf_archived.
  tf_archived=$( { { git --git-dir="$tf_mirror" archive --format=tar "$tf_commit"; echo "$?" >&3; } | tar -x -f - -C "$tf_release_path"; } 3>&1 ) &&
    [ "$tf_archived" = 0 ] ||
    tf_abort 1 "exporting $tf_ref into $tf_release_path failed"
  tf_say commit "$tf_commit"
elif [ -n "$tf_upload_bytes" ]; then
${UPLOAD_STEP}
fi
if [ -n "$tf_shared_dirs$tf_shared_files" ]; then
  tf_step shared
  tf_shared=$tf_deploy_path/shared
  # A symlink in the release on the way to a shared path could point anywhere: refuse it.
  tf_check_parents() {
    tf_rest=$1
    tf_prefix=''
    while case $tf_rest in */*) true ;; *) false ;; esac; do
      tf_prefix=$tf_prefix\${tf_rest%%/*}
      tf_rest=\${tf_rest#*/}
      if [ -L "$tf_release_path/$tf_prefix" ]; then tf_abort 1 "$tf_prefix in the release is a symlink; tagflip will not link $1 through it"; fi
      tf_prefix=$tf_prefix/
    done
  }
  tf_link_shared() {
    tf_check_parents "$1"
    mkdir -p -- "$(dirname -- "$tf_release_path/$1")" && rm -rf -- "\${tf_release_path:?}/$1" &&
      ln -s -- "$tf_shared/$1" "$tf_release_path/$1" || tf_abort 1 "cannot link $tf_shared/$1 into the release"
  }
  for tf_entry in $tf_shared_dirs; do
    mkdir -p -- "$tf_shared/$tf_entry" || tf_abort 1 "cannot create $tf_shared/$tf_entry"
    tf_link_shared "$tf_entry"
  done
  for tf_entry in $tf_shared_files; do
    if [ ! -e "$tf_shared/$tf_entry" ]; then
      tf_check_parents "$tf_entry"
      if [ -f "$tf_release_path/$tf_entry" ] && [ ! -L "$tf_release_path/$tf_entry" ]; then
        mkdir -p -- "$(dirname -- "$tf_shared/$tf_entry")" && cp -p -- "$tf_release_path/$tf_entry" "$tf_shared/$tf_entry" ||
          tf_abort 1 "cannot seed $tf_shared/$tf_entry"
        tf_say log "seeded shared/$tf_entry from the release"
      else
        tf_abort 1 "shared file $tf_entry does not exist: create $tf_shared/$tf_entry on the host (or ship $tf_entry in the release to seed it)"
      fi
    fi
    tf_link_shared "$tf_entry"
  done
fi
tf_step build
if [ -n "$tf_build" ]; then
  cd "$tf_release_path" || tf_abort 1 "cannot enter $tf_release_path"
  # When the build started, as the time of a file (no process): only a build
  # killed by SIGKILL needs it, to tell timeout's -k from another kill.
  tf_started=''
  if [ -z "\${tf_run_dir:-}" ] || ! true 2>/dev/null > "$tf_run_dir/build-started"; then tf_started=$(date +%s); fi
  tf_hook sh -c "$tf_build"
  tf_status=$?
  cd / || :
  tf_elapsed=0
  if [ "$tf_status" -eq 137 ]; then
    [ -n "$tf_started" ] || tf_started=$(stat -c %Y -- "$tf_run_dir/build-started")
    tf_elapsed=$(( $(date +%s) - tf_started ))
  fi
  if [ "$tf_status" -eq 124 ] || { [ "$tf_status" -eq 137 ] && [ "$tf_elapsed" -ge "$tf_command_timeout" ]; }; then
    tf_abort "$tf_status" "build ran longer than command-timeout ($tf_command_timeout s) and was stopped"
  elif [ "$tf_status" -eq 153 ]; then
    tf_abort "$tf_status" "build exceeded the file size limit (SIGXFSZ, ulimit -f): the host is out of space for it"
  elif [ "$tf_status" -gt 128 ]; then
    tf_abort "$tf_status" "build was killed by signal $((tf_status - 128))"
  elif [ "$tf_status" -ne 0 ]; then
    if [ ! -w "$tf_release_path" ] || [ "$(df -P -- "$tf_release_path" 2>/dev/null | awk 'NR==2 {print $4}')" = 0 ]; then
      tf_abort "$tf_status" "build exited with status $tf_status; the host is out of disk space"
    fi
    tf_abort "$tf_status" "build exited with status $tf_status"
  fi
fi
if [ -n "$tf_migrate" ]; then
  tf_step migrate
  # Preflight refused these already; checked again right before the copy and
  # the rm -rf, so that nothing under data-path is ever removed or copied
  # through a link, whoever put it there since.
  tf_data_refusal=''
  tf_data_refuse() { [ -n "$tf_data_refusal" ] || tf_data_refusal=$2; }
  tf_check_data_links tf_data_refuse
  if [ -n "$tf_data_refusal" ]; then tf_abort 1 "$tf_data_refusal; nothing under $tf_data_path was changed"; fi
  tf_live_data=$(readlink -f -- "$tf_data_path/current" 2>/dev/null) || tf_live_data=''
  if [ -n "$tf_live_data" ] && [ "$tf_live_data" = "$(readlink -f -- "$tf_data_path/releases/$tf_release")" ]; then
    tf_abort 1 "data release $tf_release is the live data ($tf_data_label/current); deploy under a new release name"
  fi
  if [ -L "$tf_data_path/current" ] && [ ! -e "$tf_data_path/current" ]; then
    tf_abort 1 "$tf_data_path/current points to $(readlink -- "$tf_data_path/current"), which is missing; restore it before migrating"
  fi
  tf_data_copy=$tf_data_path/releases/$tf_release
  mkdir -p -- "$tf_data_path/releases" && rm -rf -- "$tf_data_copy" || tf_abort 1 "cannot prepare $tf_data_copy"
  if [ -e "$tf_data_path/current" ]; then
    # A copy-on-write clone where the file system can, a full copy elsewhere.
    cp -a --reflink=auto -- "$tf_data_path/current/" "$tf_data_copy" || tf_abort 1 "copying $tf_data_path/current to $tf_data_copy failed"
  else
    mkdir -- "$tf_data_copy" || tf_abort 1 "cannot create $tf_data_copy"
    tf_say log "no $tf_data_path/current yet: migrating an empty data directory"
  fi
  cd "$tf_release_path" || tf_abort 1 "cannot enter $tf_release_path"
  export TAGFLIP_DATA_PATH="$tf_data_copy"
  tf_hook sh -c "$tf_migrate"
  tf_status=$?
  export TAGFLIP_DATA_PATH="$tf_data_path/current"
  cd / || :
  if [ "$tf_status" -eq 124 ]; then
    tf_abort "$tf_status" "migrate ran longer than command-timeout ($tf_command_timeout s) and was stopped"
  elif [ "$tf_status" -ne 0 ]; then
    tf_abort "$tf_status" "migrate exited with status $tf_status; $tf_data_label/current and current are unchanged"
  fi
fi
# Nobody would learn that it is ready: a build the client did not see finish is failed.
if tf_connection_lost; then tf_abort 1 'interrupted: connection lost'; fi
tf_clock
tf_finished=$tf_now
tf_write "$tf_manifest_path" "$tf_manifest_ready" || tf_abort 1 "cannot write $tf_manifest_path"
tf_say ready "$tf_finished" "$tf_commit"`;


/**
 * Phase 5–8: create the release, export the source, run build; mark the
 * release ready, or remove it and mark it failed.
 */
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

export function renderBuildScript(context: ScriptContext, building: Manifest, upload: UploadSections | null = null): RenderedScript {
  const ready: Manifest = { ...building, state: 'ready', commit: COMMIT, finished: FINISHED };
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
      { name: 'tf_manifest_building', value: renderRecord(building) },
      { name: 'tf_manifest_ready', value: renderRecord(ready) },
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

const FLIP_BODY = `${CURRENT_HELPERS}
tf_step flip
[ -d "$tf_release_path" ] || tf_fail 1 "$tf_release_path is missing; nothing was flipped"
# A current that leads outside releases/ is not ours to replace (the plan
# refuses it too): whatever serves there, tagflip cannot flip back to it.
if [ -L "$tf_deploy_path/current" ] && ! tf_release_of "$tf_deploy_path" >/dev/null; then
  tf_fail 1 "$tf_deploy_path/current points to '$(readlink -- "$tf_deploy_path/current")', outside $tf_deploy_path/releases; nothing was flipped (point it at the release that serves: ln -sfn releases/<name> $tf_deploy_path/current)"
fi
# Point DIR/current at releases/NAME with one rename(2).
tf_flip() {
  tf_link=$1/.current.tagflip-$$
  # -f replaces a link left by a session that had this pid; -n never follows it.
  ln -sfn -- "releases/$2" "$tf_link" || return 1
  mv -T -- "$tf_link" "$1/current" || { rm -f -- "$tf_link"; return 1; }
}
if [ -n "$tf_data_target" ]; then
  # data/current leads into releases/, never through a link out of it (preflight's check, again).
  if [ -L "$tf_data_path/releases" ] || [ -L "$tf_data_path/releases/$tf_data_target" ]; then
    tf_fail 1 "$tf_data_path/releases/$tf_data_target is reached through a symlink; tagflip points $tf_data_label/current only at a data release of its own; nothing was flipped"
  fi
  [ -d "$tf_data_path/releases/$tf_data_target" ] || tf_fail 1 "$tf_data_path/releases/$tf_data_target is missing; nothing was flipped"
  tf_flip "$tf_data_path" "$tf_data_target" || tf_fail 1 "could not flip $tf_data_path/current; nothing was flipped"
  tf_say data-flipped
fi
if ! tf_flip "$tf_deploy_path" "$tf_release"; then
  if [ -n "$tf_data_target" ]; then
    # Put data/current back as it was: on its old release, or absent on a first migration.
    if { [ -n "$tf_data_before" ] && tf_flip "$tf_data_path" "$tf_data_before"; } ||
      { [ -z "$tf_data_before" ] && rm -f -- "$tf_data_path/current"; }; then
      tf_fail 1 "'mv -T' could not replace $tf_deploy_path/current; current and $tf_data_label/current are unchanged"
    fi
    tf_fail 1 "'mv -T' could not replace $tf_deploy_path/current, and $tf_data_label/current could not be put back: it points to releases/$tf_data_target"
  fi
  tf_fail 1 "'mv -T' could not replace $tf_deploy_path/current; it is unchanged"
fi
tf_say flipped
tf_flipped=$tf_release
# For preflight: mv -T works here (written by the shell, no process).
[ -f "$tf_deploy_path/.tagflip/mv-T" ] || true 2>/dev/null > "$tf_deploy_path/.tagflip/mv-T"
{ [ -d "$tf_deploy_path/.tagflip/releases" ] || mkdir -p -- "$tf_deploy_path/.tagflip/releases"; } &&
  tf_write "$tf_manifest_path" "$tf_manifest_active" &&
  { [ -z "$tf_departed_manifest" ] || tf_write "$tf_departed_manifest_path" "$tf_departed_manifest"; } &&
  tf_append_history "$tf_history_flip" ||
  tf_say warning "current now points to releases/$tf_release, but its record under .tagflip could not be written: check that the deploy user can write $tf_deploy_path/.tagflip"
if [ -n "$tf_adopted" ]; then
  tf_say log "adopted releases/$tf_adopted (made without tagflip): recorded as inactive, the release to go back to"
fi`;

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
 * when the records carry it (AFTER_FLIP_PRUNE). Once the flip is done, nothing
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

/** Retention's removals, checked on the host first; after a flip, its helpers are already there. */
const PRUNE_STEPS = `tf_step prune
if [ -n "$tf_prune_unknown" ]; then tf_say left-alone "$tf_prune_unknown"; fi
tf_exists() { [ -e "$1" ] || [ -L "$1" ]; }
# A build may leave directories without write permission (Go's module cache is
# read-only on purpose): made writable (never following a link), they go too.
tf_remove_tree() {
  rm -rf -- "$1" 2>/dev/null && return 0
  chmod -R u+w -- "$1" 2>/dev/null
  rm -rf -- "$1"
}
# Never what is live, nor a directory tagflip has no record of, whatever the
# plan said: check everything before removing anything. What is live is what
# current leads to, compared by real path, however the link is written; a
# current that leads outside releases/ leaves nothing to tell, so nothing goes.
if [ -n "$tf_prune" ] && [ -z "\${tf_flipped:-}" ] && [ -L "$tf_deploy_path/current" ] && ! tf_release_of "$tf_deploy_path" >/dev/null; then
  tf_fail 1 "$tf_deploy_path/current points to '$(readlink -- "$tf_deploy_path/current")', outside $tf_deploy_path/releases: nothing was removed, since the release that serves cannot be told (point it at that release: ln -sfn releases/<name> $tf_deploy_path/current)"
fi
# What is live, resolved once: a failed release's record has no directory
# left, and hundreds of them must not cost two processes each. The real path of
# a name that does not exist is that of releases/ and the name (readlink -f).
# Right after a flip in this script, current is releases/<what it flipped to>.
tf_releases_real=$(readlink -f -- "$tf_deploy_path/releases" 2>/dev/null) || tf_releases_real=''
if [ -n "\${tf_flipped:-}" ] && [ -n "$tf_releases_real" ] && [ ! -L "$tf_deploy_path/releases/$tf_flipped" ]; then
  tf_live_real=$tf_releases_real/$tf_flipped
else
  tf_live_real=$(readlink -f -- "$tf_deploy_path/current" 2>/dev/null) || tf_live_real=''
fi
for tf_name in $tf_prune; do
  if tf_exists "$tf_deploy_path/releases/$tf_name"; then
    # The real path of a release that is not itself a link is releases/'s and its name.
    if [ -L "$tf_deploy_path/releases/$tf_name" ]; then
      tf_real=$(readlink -f -- "$tf_deploy_path/releases/$tf_name" 2>/dev/null) || tf_real=''
    else
      tf_real=$tf_releases_real/$tf_name
    fi
    if [ -n "$tf_live_real" ] && [ "$tf_live_real" = "$tf_real" ]; then tf_fail 1 "refusing to remove releases/$tf_name: it is current"; fi
    if [ ! -f "$tf_deploy_path/.tagflip/releases/$tf_name.json" ]; then
      tf_fail 1 "refusing to remove releases/$tf_name: tagflip has no record of it"
    fi
  elif [ -n "$tf_live_real" ] && [ -d "$tf_deploy_path/releases" ] && [ "$tf_live_real" = "$tf_releases_real/$tf_name" ]; then
    tf_fail 1 "refusing to remove releases/$tf_name: it is current"
  fi
done
# Data releases are removed in data-path's own releases/, never through a link.
if [ -n "$tf_prune_data" ] && [ -L "$tf_data_path/releases" ]; then
  tf_fail 1 "$tf_data_path/releases is a symlink (to '$(readlink -- "$tf_data_path/releases")'): no data release is removed through it, so nothing was removed; make it a directory of its own"
fi
for tf_name in $tf_prune_data; do
  if tf_is_live "$tf_data_path" "$tf_data_path/releases/$tf_name"; then
    tf_fail 1 "refusing to remove data release $tf_name: it is $tf_data_label/current"
  fi
done
# A directory goes before its record: a directory half removed keeps its
# record, so the next prune may finish the job. (A record is the manifest, the
# content list and the files' identities; .paths is the stamp that releases
# uploaded by earlier versions have instead.) Records without a directory
# (failed releases) go together, by one rm in .tagflip/releases (release names
# hold no blanks nor pattern characters, so the list splits safely); should
# that fail, one by one, to name the record that cannot go.
tf_records=''
for tf_name in $tf_prune; do
  tf_record=$tf_deploy_path/.tagflip/releases/$tf_name
  if tf_exists "$tf_deploy_path/releases/$tf_name"; then
    tf_remove_tree "$tf_deploy_path/releases/$tf_name" || tf_fail 1 "cannot remove $tf_deploy_path/releases/$tf_name"
    rm -f -- "$tf_record.json" "$tf_record.files" "$tf_record.ids" "$tf_record.paths" || tf_fail 1 "cannot remove the record of $tf_name"
    tf_say removed "$tf_name"
  else
    tf_say removed-record "$tf_name"
    tf_records="$tf_records $tf_name.json $tf_name.files $tf_name.ids $tf_name.paths"
  fi
done
# shellcheck disable=SC2086 # split on purpose: see above
if [ -n "$tf_records" ] && ! (cd -- "$tf_deploy_path/.tagflip/releases" 2>/dev/null && set -f && rm -f -- $tf_records 2>/dev/null); then
  for tf_name in $tf_prune; do
    tf_record=$tf_deploy_path/.tagflip/releases/$tf_name
    rm -f -- "$tf_record.json" "$tf_record.files" "$tf_record.ids" "$tf_record.paths" || tf_fail 1 "cannot remove the record of $tf_name"
  done
fi
for tf_name in $tf_prune_data; do
  tf_remove_tree "$tf_data_path/releases/$tf_name" || tf_fail 1 "cannot remove $tf_data_path/releases/$tf_name"
  tf_say removed-data "$tf_name"
done
[ -z "$tf_prune$tf_prune_data" ] || tf_append_history "$tf_history_prune" || tf_fail 1 "cannot write $tf_history_path"`;

const PRUNE_BODY = `${CURRENT_HELPERS}\n${PRUNE_STEPS}`;

/**
 * Retention once current has moved (after the flip, or after the hooks):
 * housekeeping, which never fails the deploy. A failure ends the removals and
 * says \`prune-failed <code> <why>\` instead of an error; the phase goes on
 * to exit 0, and the client reports it as a warning (what was left, and why).
 */
const AFTER_FLIP_PRUNE = `(
  # A subshell starts with the default action for signals its parent caught: a
  # client gone must not end it between a directory and its record (PRELUDE).
  trap 'tf_lost=yes' PIPE HUP
  tf_fail() { tf_say prune-failed "$1" "$2"; exit 1; }
${PRUNE_STEPS}
) || :`;

/**
 * Step 12: remove releases (directory and record); name the directories left
 * alone because tagflip has no record of them. Release names are validated
 * names (letters, digits, . _ + -), so a space-separated list is safe to split.
 */
export function renderPruneScript(context: ScriptContext, remove: readonly string[], removeData: readonly string[] = [], unknown: readonly string[] = []): RenderedScript {
  return render([...commonAssignments(context), timeoutAssignment(context), ...pruneAssignments(context, remove, removeData, unknown)], PRUNE_BODY);
}

/** Retention at the end of a deploy or rollback whose hooks ran (after verify): a failure is a warning (AFTER_FLIP_PRUNE). */
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

const HOOK_BODY = `tf_step "$tf_hook_name"
cd "$tf_release_path" || tf_fail 1 "cannot enter $tf_release_path"
tf_hook sh -c "$tf_hook_command"
tf_status=$?
if [ "$tf_status" -eq 124 ]; then
  tf_fail "$tf_status" "$tf_hook_name ran longer than command-timeout ($tf_command_timeout s) and was stopped"
elif [ "$tf_status" -ne 0 ]; then
  tf_fail "$tf_status" "$tf_hook_name exited with status $tf_status"
fi`;

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

const DISCARD_BODY = `${CURRENT_HELPERS}
tf_step discard
if tf_is_live "$tf_deploy_path" "$tf_release_path"; then
  tf_fail 1 "releases/$tf_release is current; it is not discarded"
fi
rm -rf -- "$tf_release_path" "$tf_deploy_path/.tagflip/releases/$tf_release.files" "$tf_deploy_path/.tagflip/releases/$tf_release.ids" ||
  tf_fail 1 "cannot remove $tf_release_path"
if [ -n "$tf_data_copy" ]; then
  # Never through a link (the build refused to copy through one).
  if [ -L "$tf_data_path/releases" ]; then
    tf_say warning "$tf_data_path/releases is a symlink: the data copy $tf_data_copy was not removed through it"
  else
    rm -rf -- "$tf_data_path/releases/$tf_data_copy"
  fi
fi
tf_write "$tf_manifest_path" "$tf_manifest_failed" && tf_append_history "$tf_history_failed" ||
  tf_fail 1 "cannot write $tf_manifest_path"`;

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

const HISTORY_BODY = `tf_step record
if ! { mkdir -p -- "$tf_deploy_path/.tagflip" && tf_append_history "$tf_history_line"; }; then
  tf_fail 1 "cannot write $tf_history_path"
fi`;

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
 * barrier, as the build would have. A failure removes the copy only: the
 * release stays ready for the next attempt.
 */
const DATA_COPY_BODY = `${DATA_LINKS}
tf_step migrate
tf_data_copy=''
tf_data_abort() {
  tf_code=$1
  tf_reason=$2
  if tf_connection_lost; then tf_reason='interrupted: connection lost'; fi
  cd / || :
  if [ -n "$tf_data_copy" ]; then
    tf_live_data=$(readlink -f -- "$tf_data_path/current" 2>/dev/null) || tf_live_data=''
    if [ -z "$tf_live_data" ] || [ "$tf_live_data" != "$(readlink -f -- "$tf_data_copy")" ]; then rm -rf -- "$tf_data_copy"; fi
  fi
  tf_append_history "$tf_history_failed" || :
  tf_fail "$tf_code" "$tf_reason"
}
[ -d "$tf_release_path" ] || tf_fail 1 "$tf_release_path is missing; nothing was changed"
tf_data_refusal=''
tf_data_refuse() { [ -n "$tf_data_refusal" ] || tf_data_refusal=$2; }
tf_check_data_links tf_data_refuse
if [ -n "$tf_data_refusal" ]; then tf_fail 1 "$tf_data_refusal; nothing under $tf_data_path was changed"; fi
tf_live_data=$(readlink -f -- "$tf_data_path/current" 2>/dev/null) || tf_live_data=''
if [ -n "$tf_live_data" ] && [ "$tf_live_data" = "$(readlink -f -- "$tf_data_path/releases/$tf_release")" ]; then
  tf_fail 1 "data release $tf_release is the live data ($tf_data_label/current); deploy under a new release name"
fi
if [ -L "$tf_data_path/current" ] && [ ! -e "$tf_data_path/current" ]; then
  tf_fail 1 "$tf_data_path/current points to $(readlink -- "$tf_data_path/current"), which is missing; restore it before migrating"
fi
tf_data_copy=$tf_data_path/releases/$tf_release
mkdir -p -- "$tf_data_path/releases" && rm -rf -- "$tf_data_copy" || tf_data_abort 1 "cannot prepare $tf_data_copy"
if [ -e "$tf_data_path/current" ]; then
  cp -a --reflink=auto -- "$tf_data_path/current/" "$tf_data_copy" || tf_data_abort 1 "copying $tf_data_path/current to $tf_data_copy failed"
else
  mkdir -- "$tf_data_copy" || tf_data_abort 1 "cannot create $tf_data_copy"
  tf_say log "no $tf_data_path/current yet: migrating an empty data directory"
fi
cd "$tf_release_path" || tf_data_abort 1 "cannot enter $tf_release_path"
export TAGFLIP_DATA_PATH="$tf_data_copy"
tf_hook sh -c "$tf_migrate"
tf_status=$?
export TAGFLIP_DATA_PATH="$tf_data_path/current"
cd / || :
if [ "$tf_status" -eq 124 ]; then
  tf_data_abort "$tf_status" "migrate ran longer than command-timeout ($tf_command_timeout s) and was stopped"
elif [ "$tf_status" -ne 0 ]; then
  tf_data_abort "$tf_status" "migrate exited with status $tf_status; $tf_data_label/current and current are unchanged, releases/$tf_release stays ready"
fi
if tf_connection_lost; then tf_data_abort 1 'interrupted: connection lost'; fi
tf_say data-ready`;

export function renderDataCopyScript(context: ScriptContext): RenderedScript {
  const history = { ...historyEntry(context, 'deploy', 'failed'), exitCode: CODE, failedStep: STEP, reason: REASON };
  return render(
    [
      ...commonAssignments(context),
      { name: 'tf_migrate', value: context.migrate },
      { name: 'tf_history_failed', value: renderRecord(history) },
      timeoutAssignment(context),
      ...hookEnvironment(context),
    ],
    DATA_COPY_BODY,
  );
}

const DATA_DISCARD_BODY = `tf_step discard
tf_data_copy=$tf_data_path/releases/$tf_release
if [ -L "$tf_data_path/releases" ]; then
  tf_say warning "$tf_data_path/releases is a symlink: the data copy $tf_data_copy was not removed through it"
else
  tf_live_data=$(readlink -f -- "$tf_data_path/current" 2>/dev/null) || tf_live_data=''
  if [ -z "$tf_live_data" ] || [ "$tf_live_data" != "$(readlink -f -- "$tf_data_copy")" ]; then rm -rf -- "$tf_data_copy"; fi
fi
tf_append_history "$tf_history_failed" || tf_fail 1 "cannot write $tf_history_path"`;

/** Another host failed before the flip of a prepared release: remove the data copy made here; the release stays ready. */
export function renderDataDiscardScript(context: ScriptContext, reason: string): RenderedScript {
  const history = { ...historyEntry(context, 'deploy', 'failed'), failedStep: 'barrier', reason };
  return render([...commonAssignments(context), { name: 'tf_history_failed', value: renderRecord(history) }, timeoutAssignment(context)], DATA_DISCARD_BODY);
}
