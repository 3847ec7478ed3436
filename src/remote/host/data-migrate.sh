# shellcheck shell=sh
# The migrate step, shared by a build (build.sh) and by the switch to a
# prepared release (data-copy.sh); each says how it fails: FAIL CODE REASON
# while nothing under data-path has changed, ABORT CODE REASON once the copy
# exists (it removes the copy, never live data).
# tf_data_step: the step's name, migrate-check when there is one to run.
# tf_data_check FAIL: data-path's links checked again, then migrate-check
# (migrate-check.sh): tf_data_reused says the data is up to date.
# tf_copy_and_migrate FAIL ABORT: copy data/current to data/releases/$tf_release
# and run migrate on the copy, in the release, with TAGFLIP_DATA_PATH the
# copy; $tf_migrate_kept ends the message of a failed migrate.

tf_data_step() {
  if [ -n "$tf_migrate_check" ]; then tf_step migrate-check; else tf_step migrate; fi
}
tf_data_check() {
  # Preflight refused these already; checked again right before the copy and
  # the rm -rf, so that nothing under data-path is ever removed or copied
  # through a link, whoever put it there since.
  tf_data_refusal=''
  tf_data_refuse() { [ -n "$tf_data_refusal" ] || tf_data_refusal=$2; }
  tf_check_data_links tf_data_refuse
  if [ -n "$tf_data_refusal" ]; then "$1" 1 "$tf_data_refusal; nothing under $tf_data_path was changed"; fi
  tf_migrate_check || "$1" 1 "cannot enter $tf_release_path"
}
tf_copy_and_migrate() {
  if [ "$tf_current_step" != migrate ]; then tf_step migrate; fi
  tf_live_data=$(readlink -f -- "$tf_data_path/current" 2>/dev/null) || tf_live_data=''
  if [ -n "$tf_live_data" ] && [ "$tf_live_data" = "$(readlink -f -- "$tf_data_path/releases/$tf_release")" ]; then
    "$1" 1 "data release $tf_release is the live data ($tf_data_label/current); deploy under a new release name"
  fi
  if [ -L "$tf_data_path/current" ] && [ ! -e "$tf_data_path/current" ]; then
    "$1" 1 "$tf_data_path/current points to $(readlink -- "$tf_data_path/current"), which is missing; restore it before migrating"
  fi
  tf_data_copy=$tf_data_path/releases/$tf_release
  mkdir -p -- "$tf_data_path/releases" && rm -rf -- "$tf_data_copy" || "$2" 1 "cannot prepare $tf_data_copy"
  if [ -e "$tf_data_path/current" ]; then
    # A copy-on-write clone where the file system can, a full copy elsewhere.
    cp -a --reflink=auto -- "$tf_data_path/current/" "$tf_data_copy" || "$2" 1 "copying $tf_data_path/current to $tf_data_copy failed"
  else
    mkdir -- "$tf_data_copy" || "$2" 1 "cannot create $tf_data_copy"
    tf_say log "no $tf_data_path/current yet: migrating an empty data directory"
  fi
  cd "$tf_release_path" || "$2" 1 "cannot enter $tf_release_path"
  export TAGFLIP_DATA_PATH="$tf_data_copy"
  tf_hook sh -c "$tf_migrate"
  tf_status=$?
  export TAGFLIP_DATA_PATH="$tf_data_path/current"
  cd / || :
  if [ "$tf_status" -eq 124 ]; then
    "$2" "$tf_status" "migrate ran longer than command-timeout ($tf_command_timeout s) and was stopped"
  elif [ "$tf_status" -ne 0 ]; then
    "$2" "$tf_status" "migrate exited with status $tf_status; $tf_data_label/current and current are unchanged$tf_migrate_kept"
  fi
}
