# shellcheck shell=sh
# The first round trip, run in the session shell itself (scope 'session'):
# start the watchdog, check the host (preflight), take the deploy lock, read
# the facts. Preflight and facts run in subshells; only the lock's file
# descriptor (9) and the watchdog outlive this script, and both end with the
# session.

tf_run_dir=$(mktemp -d 2>/dev/null) || tf_run_dir=''
tf_session_pid=$$
. ./precopy.sh
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
    if [ "$tf_lost" = no ] && ! printf '\n%s ping\n' "$tf_tag" >&2; then
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
. ./prelude.sh
. ./preflight.sh
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
      printf '\n%s waiting %s\n' "$tf_tag" "$(tr -d '\n' < "$tf_lock_file.json" 2>/dev/null)"
      tf_flock_said=$(flock -w "$tf_lock_timeout" 9 2>&1)
      tf_flock_status=$?
    fi
    if [ "$tf_flock_status" -eq 0 ]; then tf_locked=yes; fi
  fi
  if [ "$tf_locked" = yes ]; then
    # Through a temporary file renamed over it, named as tf_write names them.
    tf_temp=$tf_lock_file.json.tmp.$$
    if [ -e "$tf_temp" ] || [ -L "$tf_temp" ]; then tf_temp=$(mktemp "$tf_lock_file.json.tmp.XXXXXX"); else set -C; fi
    if ! { printf '%s\n' "${tf_lock_holder%"@tagflip:now@"*}$(date -u +%Y-%m-%dT%H:%M:%SZ)${tf_lock_holder##*"@tagflip:now@"}" > "$tf_temp" &&
        mv -f -- "$tf_temp" "$tf_lock_file.json"; }; then
      rm -f -- "$tf_temp"
    fi
    set +C
    printf '\n%s locked\n' "$tf_tag"
  elif [ "$tf_lock_open" = no ]; then
    printf '\n%s lock-error cannot open %s\n' "$tf_tag" "$tf_lock_file"
  elif [ "$tf_flock_status" -ne 1 ]; then
    printf '\n%s flock-failed %s %s\n' "$tf_tag" "$tf_flock_status" "$(printf '%s' "$tf_flock_said" | tr '\n' ' ')"
  else
    printf '\n%s lock-timeout %s\n' "$tf_tag" "$(tr -d '\n' < "$tf_lock_file.json" 2>/dev/null)"
  fi
fi
if { [ "$tf_ready" -eq 0 ] && [ "$tf_lock" != yes ]; } || [ "$tf_locked" = yes ]; then
  (
. ./prelude.sh
. ./facts.sh
. ./content-facts.sh
  ) 9>&- 2>&1
fi
