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
if [ -n "$tf_migrate_check" ]; then tf_step migrate-check; else tf_step migrate; fi
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
tf_migrate_check || tf_fail 1 "cannot enter $tf_release_path; nothing was changed"
if [ -n "$tf_data_reused" ]; then exit 0; fi
if [ "$tf_current_step" != migrate ]; then tf_step migrate; fi
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
tf_say data-ready
