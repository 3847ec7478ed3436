# shellcheck shell=sh
# Shared helpers at the top of every script. `tf_say` prints a control line,
# newline first (session.ts): a hook's unterminated last line cannot hide it.

set -u
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
tf_connection_lost() { [ "$tf_lost" = yes ] || { [ -n "${tf_run_dir:-}" ] && [ -e "$tf_run_dir/lost" ]; }; }
tf_say() { printf '\n%s %s\n' "$tf_tag" "$*"; }
tf_step() { tf_current_step=$1; tf_say step "$1"; }
tf_fail() { tf_say error "$tf_current_step" "$1" "$2"; exit 1; }
# The time records take, read once (one process) and kept until a command runs:
# every record a script writes between two commands says the same second anyway.
tf_now=''
tf_clock() { [ -n "$tf_now" ] || tf_now=$(date -u +%Y-%m-%dT%H:%M:%SZ); }
# Free text as the inside of a JSON string: one line, \ and " escaped.
tf_json_text() { printf '%s' "$1" | tr '\n\r\t' '   ' | tr -d '\000-\037' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'; }
# Put $2 for every $1 in tf_text, with builtins only (no sed, no fork): the
# values are plain tokens (an ISO time, hex, digits, a step name), and a value
# put in is never scanned again.
tf_put() {
  tf_put_rest=$tf_text
  tf_text=''
  while :; do
    case $tf_put_rest in
      *"$1"*)
        tf_text=$tf_text${tf_put_rest%%"$1"*}$2
        tf_put_rest=${tf_put_rest#*"$1"}
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
  case $tf_text in *"@tagflip:now@"*) tf_clock && tf_put "@tagflip:now@" "$tf_now" ;; esac
  tf_put "@tagflip:commit@" "$tf_commit"
  case $tf_text in *"@tagflip:finished@"*) tf_put "@tagflip:finished@" "$tf_finished" ;; esac
  tf_put "@tagflip:code@" "$tf_code"
  tf_put "@tagflip:step@" "$tf_current_step"
  case $tf_text in
    *"@tagflip:reason@"*) tf_text=${tf_text%"@tagflip:reason@"*}$(tf_json_text "$tf_reason")${tf_text##*"@tagflip:reason@"} ;;
  esac
  printf '%s\n' "$tf_text"
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
      for tf_pair in ${tf_user_env:-}; do command export "$tf_pair"; done
    fi
    exec "$tf_timeout" -k 5 "$tf_command_timeout" "$tf_program" "$@"
  ) &
  tf_hook_pid=$!
  if [ -n "${tf_run_dir:-}" ]; then printf '%s\n' "$tf_hook_pid" > "$tf_run_dir/hook"; fi
  wait "$tf_hook_pid"
  tf_hook_status=$?
  if [ "$tf_hook_status" -ne 0 ]; then kill -KILL "-$tf_hook_pid" 2>/dev/null; fi
  # Emptied, not removed (no process): the watchdog stops no group for an empty file.
  # (true, not :, whose failed redirection would end the shell.)
  if [ -n "${tf_run_dir:-}" ]; then true 2>/dev/null > "$tf_run_dir/hook"; fi
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
  tf_origin_line="	url = $2"
  while IFS= read -r tf_line; do
    if [ "$tf_line" = "$tf_origin_line" ]; then return 0; fi
  done < "$1/config"
  git --git-dir="$1" remote set-url origin "$2"
}
