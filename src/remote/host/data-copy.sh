# shellcheck shell=sh
# The data step of a deploy of a prepared release (issue 24; docs/stages.md):
# a prepare copies no data, so the switch copies $tf_data_path/current to
# data/releases/$tf_release and runs $tf_migrate on the copy, before the
# barrier, as build.sh's migrate step does for a build. A failure removes the
# copy (never live data) and appends a failed line to the history; the
# release itself stays ready for the next attempt. Says data-ready when done.
# With migrate-check, the check runs first (migrate-check.sh): when it says
# the data is up to date, nothing is copied and data-reused says so instead.

. ./data-links.sh
. ./migrate-check.sh
. ./data-migrate.sh
tf_data_step
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
tf_migrate_kept=", releases/$tf_release stays ready"
tf_data_check tf_fail
if [ -n "$tf_data_reused" ]; then exit 0; fi
tf_copy_and_migrate tf_fail tf_data_abort
if tf_connection_lost; then tf_data_abort 1 'interrupted: connection lost'; fi
tf_say data-ready
