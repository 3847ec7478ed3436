# shellcheck shell=sh
# The upload step of the build phase (SPEC step 6, upload). The session's
# stdin is fd 8 here (session.ts, sendData): the host asked for exactly
# tf_upload_bytes when the build phase began (build.sh), sent as two
# sections, each read with head -c: a tar of what changed, and the content
# list. The files unchanged since the current release come from the copy the
# session started with the facts (precopy.sh), and only those the plan
# names (their paths, NUL-ended, base64, in the script): that list is an
# allow-list, compared with the copy as bytes, and whatever else the copy
# holds goes. Every byte is read whatever fails, so that none is left for the
# shell to run; a failure is reported once all are read. The content list is
# written only when the last section arrived whole, and then the identity of
# every file as uploaded (.ids, identities.sh), the next deploy's evidence that a
# file is still as uploaded: kept only once the file system's clock has moved
# past it (past-the-stamp.sh), so that no build, hook or app that writes a file
# later can leave it with the identity it had.

  tf_step upload
  tf_upload_error=''
  tf_incoming=$tf_content_list.incoming
. ./exact-bytes.sh
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
  if [ -n "${tf_run_dir:-}" ] && [ -s "$tf_run_dir/precopy.job" ]; then
    if [ -n "$tf_unchanged_list" ]; then tf_precopied=${tf_precopy_dir:-}; else tf_precopy_stop; fi
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
        (cd "$tf_deploy_path/releases/$tf_upload_from" && tf_uid=$tf_uid tf_gid=$tf_gid sh -c '@tagflip:include copy-files.sh@' sh "$tf_incoming.keep" "$tf_precopied" "$tf_run_dir/verified") &&
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
        find . -mindepth 1 ! -type d -printf '%P\0' | LC_ALL=C sort -z > "$tf_incoming.have" &&
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
  tf_say received
