# shellcheck shell=sh
# tf_migrate_check: with migrate-check set and data to check, run it in the
# new release with the hook environment (TAGFLIP_DATA_PATH is data/current).
# Exit 0 says the data is up to date: tf_data_reused=yes, and `data-reused
# NAME` tells the runner that the release uses the current data release as it
# is, with no copy and no migration. Any other exit: the data is copied and
# migrated, and the log says why. Used by the build (build.sh) and by the
# switch to a prepared release (data-copy.sh); returns 1 only when the release
# cannot be entered.

tf_migrate_check() {
  tf_data_reused=''
  if [ -n "$tf_migrate_check" ] && [ -e "$tf_data_path/current" ]; then
    cd "$tf_release_path" || return 1
    tf_hook sh -c "$tf_migrate_check"
    tf_status=$?
    cd / || :
    tf_live_name=$(readlink -- "$tf_data_path/current")
    if [ "$tf_status" -eq 0 ]; then
      tf_data_reused=yes
      tf_say data-reused "${tf_live_name#releases/}"
    elif [ "$tf_status" -eq 124 ]; then
      tf_say log "migrate-check ran longer than command-timeout ($tf_command_timeout s) and was stopped: copying and migrating the data"
    else
      tf_say log "migrate-check exited with status $tf_status: copying and migrating the data"
    fi
  elif [ -n "$tf_migrate_check" ] && [ ! -L "$tf_data_path/current" ]; then
    tf_say log "no $tf_data_label/current yet: migrate-check is not run"
  fi
  return 0
}
