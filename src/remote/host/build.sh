# shellcheck shell=sh
# Phases 5–8 (SPEC): create releases/<tag>, put the source in it (git archive
# from the mirror in .tagflip/repo.git, or the upload: upload.sh), link the
# shared paths, copy and migrate the data, run build; then record the release
# as ready. Any failure removes what this build made (never what is live) and
# records it as failed (tf_abort). Writes: releases/<tag>, its record in
# .tagflip/releases (.json, and for an upload .files and .ids), the history on
# failure, data-path/releases/<tag> when migrate is set.

. ./current.sh
. ./identity.sh
. ./past-the-stamp.sh
. ./migrate-check.sh
. ./data-migrate.sh
. ./data-links.sh
. ./tree-list.sh
. ./uploaded-sums.sh
tf_data_copy=''
tf_content_list=$tf_deploy_path/.tagflip/releases/$tf_release.files
tf_content_ids=$tf_deploy_path/.tagflip/releases/$tf_release.ids
tf_content_tree=$tf_deploy_path/.tagflip/releases/$tf_release.tree
# Remove what this build made (never what is live) and record it as failed, with
# the step, the exit code and the reason. This also runs when the client has
# gone (the lock is still held), so the host's records tell what happened.
tf_abort() {
  tf_code=$1
  tf_reason=$2
  if tf_connection_lost; then tf_reason='interrupted: connection lost'; fi
  cd / || :
  if ! tf_is_live "$tf_deploy_path" "$tf_release_path"; then rm -rf -- "$tf_release_path" "$tf_content_list" "$tf_content_ids" "$tf_content_tree"; fi
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
if [ -e "$tf_content_list" ] || [ -e "$tf_content_ids" ] || [ -e "$tf_content_tree" ] || [ -L "$tf_content_list" ] || [ -L "$tf_content_ids" ] || [ -L "$tf_content_tree" ]; then
  rm -f -- "$tf_content_list" "$tf_content_ids" "$tf_content_tree" || tf_fail 1 "cannot remove $tf_content_list"
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
. ./upload.sh
fi
if [ -n "$tf_shared_dirs$tf_shared_files" ]; then
  tf_step shared
  tf_shared=$tf_deploy_path/shared
  # A symlink in the release on the way to a shared path could point anywhere: refuse it.
  tf_check_parents() {
    tf_rest=$1
    tf_prefix=''
    while case $tf_rest in */*) true ;; *) false ;; esac; do
      tf_prefix=$tf_prefix${tf_rest%%/*}
      tf_rest=${tf_rest#*/}
      if [ -L "$tf_release_path/$tf_prefix" ]; then tf_abort 1 "$tf_prefix in the release is a symlink; tagflip will not link $1 through it"; fi
      tf_prefix=$tf_prefix/
    done
  }
  tf_link_shared() {
    tf_check_parents "$1"
    mkdir -p -- "$(dirname -- "$tf_release_path/$1")" && rm -rf -- "${tf_release_path:?}/$1" &&
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
  if [ -z "${tf_run_dir:-}" ] || ! true 2>/dev/null > "$tf_run_dir/build-started"; then tf_started=$(date +%s); fi
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
tf_data_reused=''
tf_migrate_kept=''
if [ -n "$tf_migrate" ]; then
  tf_data_step
  tf_data_check tf_abort
fi
if [ -n "$tf_migrate" ] && [ -z "$tf_data_reused" ]; then tf_copy_and_migrate tf_abort tf_abort; fi
# What the release holds as built, for status with drift (drift.sh). Without
# it, status says "no record": nothing to fail the deploy for. For an upload,
# the files still as uploaded take their SHA-256 from its content list
# (uploaded-sums.sh): only what the build wrote is read. Without the identity
# record (the clock did not move) or if that fails, every file is read.
if [ -n "$tf_record_tree" ]; then
  tf_known_sums=''
  # With no build or migrate command, nothing but tagflip's own links went into
  # the release since the upload step listed its files' identities, moments
  # ago in this script: those are the identities now, not listed again.
  tf_ids_now=''
  if [ -z "$tf_build" ] && [ -z "$tf_migrate" ]; then tf_ids_now=$tf_content_ids; fi
  if [ -n "$tf_upload_bytes" ] && [ -f "$tf_content_list" ] && [ -f "$tf_content_ids" ] &&
    tf_uploaded_sums "$tf_release_path" "$tf_content_list" "$tf_content_ids" "$tf_content_tree.known" "$tf_ids_now"; then
    tf_known_sums=$tf_content_tree.known
  fi
  if tf_tree_list "$tf_release_path" "$tf_content_tree" "$tf_known_sums"; then
    [ -z "$tf_upload_bytes" ] || tf_say debug "recorded the content of releases/$tf_release: $tf_tree_count files hashed, $tf_tree_taken still as uploaded (SHA-256 from the content list)"
  else
    tf_say log "no record of the content of releases/$tf_release (a file the deploy user cannot read?): status with drift will say no record"
  fi
  rm -f -- "$tf_content_tree.known"
fi
# Nobody would learn that it is ready: a build the client did not see finish is failed.
if tf_connection_lost; then tf_abort 1 'interrupted: connection lost'; fi
tf_clock
tf_finished=$tf_now
if [ -n "$tf_data_reused" ]; then tf_manifest_ready=$tf_manifest_ready_reused; fi
tf_write "$tf_manifest_path" "$tf_manifest_ready" || tf_abort 1 "cannot write $tf_manifest_path"
tf_say ready "$tf_finished" "$tf_commit"
