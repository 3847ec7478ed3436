# shellcheck shell=sh
# The copy of the files a new release reuses (content-facts.sh), started with
# the facts instead of after the client's plan (a round trip and the plan
# later): tf_precopy_start copies them into .tagflip/precopy.PID, a directory
# of this session's, in a process group of its own (timeout's) that holds an
# exclusive lock on precopy.PID.lock while it runs and makes precopy.PID.ok
# once done and checked (copy-files.sh). The build's upload step waits on that
# lock, keeps in the copy just the files the plan says are unchanged, and
# renames it into the release (upload.sh). tf_precopy_stop ends a copy
# nobody took: at the session's end (CLOSE_WORDS (scripts.ts), the EXIT trap, the watchdog
# once the session is gone), or when the plan has no use for it.

tf_precopy_dir=$tf_deploy_path/.tagflip/precopy.$tf_session_pid
. ./identity.sh
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
  tf_uid=$tf_uid tf_gid=$tf_gid timeout -k 5 "$tf_command_timeout" sh -c '@tagflip:include copy-files.sh@ && : > "$2.ok"' sh "$1" "$tf_precopy_dir" "$2" 9>&- &
  # Only the copy holds the lock now.
  exec 7>&-
  printf '%s\n' "$!" > "$tf_run_dir/precopy.job"
}
# What is left of it, once taken or stopped.
tf_precopy_remove() {
  rm -rf -- "$tf_precopy_dir" "$tf_precopy_dir.lock" "$tf_precopy_dir.ok" "$tf_precopy_dir.failed" "$tf_precopy_dir.after" "$tf_precopy_dir.moved" "$tf_run_dir/precopy.job"
}
tf_precopy_stop() {
  if [ -z "${tf_run_dir:-}" ] || [ ! -s "$tf_run_dir/precopy.job" ]; then return 0; fi
  read -r tf_precopy_job < "$tf_run_dir/precopy.job" || tf_precopy_job=''
  # Still copying (its lock is held): stop its group, and wait until all of it is gone.
  if [ -n "$tf_precopy_job" ] && ! flock -n 7 7<"$tf_precopy_dir.lock" 2>/dev/null; then
    kill -TERM "-$tf_precopy_job" 2>/dev/null
    flock 7 7<"$tf_precopy_dir.lock" 2>/dev/null
  fi
  tf_precopy_remove
}
