# shellcheck shell=sh
# With upload: the content list of the current release, if it was uploaded,
# and which of its files are still as uploaded, so that the runner sends the
# others again instead of letting the host copy them. The evidence is the
# identity recorded when the upload step wrote them (.ids, identities.sh, sorted):
# a file whose device, inode, mode, size, mtime and ctime are all still those
# was not written, replaced, moved in or chmod-ed since, by a build or by
# anyone else, whatever the file system's timestamps' granularity (the upload
# step waited for its clock to move past the record before anything else ran).
# comm compares the lines as bytes, names too. The answer is the paths of those
# files (./path), from a start (s) to the status (e): without a whole answer
# and a 0 there, nothing is reused and everything is sent. Sent base64 in
# lines the client takes whole (under MAX_LINE). Under the deploy lock, the
# copy of exactly those files starts now (precopy.sh): no other file of
# the current release can reach the new one.

tf_link=$tf_current_link
tf_name=${tf_link#releases/}
tf_name=${tf_name%/}
tf_list=$tf_deploy_path/.tagflip/releases/$tf_name.files
tf_ids=$tf_deploy_path/.tagflip/releases/$tf_name.ids
if [ -n "$tf_upload" ] && [ -n "$tf_run_dir" ] && [ "$tf_link" != "$tf_name" ] && [ -f "$tf_list" ] && [ -f "$tf_ids" ] && [ -d "$tf_deploy_path/releases/$tf_name" ]; then
  tf_verified=$tf_run_dir/verified
  if tf_seen=$(cd "$tf_deploy_path/releases/$tf_name" && {
    printf 's\0'
    # Each step's status on its own (a pipeline's is its last command's).
    if tf_identity_owner && tf_identities . > "$tf_verified.now" &&
      LC_ALL=C sort -z -o "$tf_verified.now" -- "$tf_verified.now" &&
      LC_ALL=C comm -z -12 -- "$tf_verified.now" "$tf_ids" > "$tf_verified" &&
      cut -z -d ' ' -f 7- < "$tf_verified" > "$tf_verified.paths"; then
      cat -- "$tf_verified.paths"
      printf 'e0\0'
      if [ "$tf_lock" = yes ] && [ ! -e "$tf_release_path" ] && [ ! -L "$tf_release_path" ] && [ -s "$tf_verified" ]; then
        # Files over 1 MiB first (copy-files.sh).
        LC_ALL=C sort -z -t ' ' -k 4,4nr -- "$tf_verified" | cut -z -d ' ' -f 7- > "$tf_run_dir/untouched" &&
          tf_precopy_start "$tf_run_dir/untouched" "$tf_verified" </dev/null >/dev/null 2>&1
      fi
    else
      printf 'e1\0'
    fi
  } | base64 -w 60000); then
    # The tag never goes in an argument (every user can read those: ps): awk
    # reads it from its environment, as the facts' awk does (the list's path is
    # absolute, never taken for an assignment); sed, without awk, from a
    # script file in the run directory (mode 700). One process per list,
    # whatever its length (50,000 lines), none per line.
    if command -v awk >/dev/null 2>&1; then
      printf '%s\n' "$tf_seen" | tf_awk_tag=$tf_tag awk '
        FNR == 1 { kind = (kind == "") ? " content-seen " : " content-list " }
        { print ENVIRON["tf_awk_tag"] kind $0 }' - "$tf_list"
    elif printf 's/^/%s content-seen /\n' "$tf_tag" > "$tf_run_dir/seen.sed" &&
      printf 's/^/%s content-list /\n' "$tf_tag" > "$tf_run_dir/list.sed"; then
      printf '%s\n' "$tf_seen" | sed -f "$tf_run_dir/seen.sed"
      sed -f "$tf_run_dir/list.sed" -- "$tf_list"
    fi
    if [ -s "$tf_run_dir/precopy.job" ]; then tf_say fact precopy yes; fi
  fi
fi
