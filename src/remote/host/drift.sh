# shellcheck shell=sh
# command: status with drift: compare the release that is current
# ($tf_release, as the facts read it) with the content recorded at the end of
# its build (.tagflip/releases/<tag>.tree, tree-list.sh). The answer is the
# paths that differ, as bytes, each NUL-ended and led by a for added, c for
# changed, r for removed, a directory's path ended by '/': base64 in lines
# under MAX_LINE (drift-part), then drift-done. drift-ignore is applied by the
# runner, on these paths. Writes only a work directory in .tagflip, removed.

. ./tree-list.sh
tf_step drift
tf_record=$tf_deploy_path/.tagflip/releases/$tf_release.tree
# The path of each record (field 5 on), without a link's //target; a directory's ended by '/'.
tf_tree_paths() { LC_ALL=C sed -z -e 's,^d [^ ]* [^ ]* [^ ]* \(.*\)$,\1/,;t' -e 's,^[^ ]* [^ ]* [^ ]* [^ ]* ,,;s,//.*,,' -- "$1" | LC_ALL=C sort -z -u; }
if [ ! -d "$tf_release_path" ]; then
  tf_say drift-none "releases/$tf_release is missing"
elif [ ! -f "$tf_record" ]; then
  tf_say drift-none "no record"
elif ! tf_work=$(mktemp -d "$tf_deploy_path/.tagflip/drift.XXXXXX"); then
  tf_say drift-failed "cannot create a work directory in $tf_deploy_path/.tagflip"
else
  if ! tf_tree_list "$tf_release_path" "$tf_work/now"; then
    tf_say drift-failed "cannot read every file of releases/$tf_release (a file the deploy user cannot read, or one that went while it was read)"
  elif LC_ALL=C comm -z -23 -- "$tf_record" "$tf_work/now" > "$tf_work/old" &&
    LC_ALL=C comm -z -13 -- "$tf_record" "$tf_work/now" > "$tf_work/new" &&
    tf_tree_paths "$tf_work/old" > "$tf_work/old.paths" &&
    tf_tree_paths "$tf_work/new" > "$tf_work/new.paths" &&
    {
      LC_ALL=C comm -z -13 -- "$tf_work/old.paths" "$tf_work/new.paths" | LC_ALL=C sed -z 's,^,a ,'
      LC_ALL=C comm -z -12 -- "$tf_work/old.paths" "$tf_work/new.paths" | LC_ALL=C sed -z 's,^,c ,'
      LC_ALL=C comm -z -23 -- "$tf_work/old.paths" "$tf_work/new.paths" | LC_ALL=C sed -z 's,^,r ,'
    } > "$tf_work/answer" && base64 -w 60000 -- "$tf_work/answer" > "$tf_work/answer.b64"; then
    while IFS= read -r tf_line; do tf_say drift-part "$tf_line"; done < "$tf_work/answer.b64"
    tf_say drift-done "$(wc -c < "$tf_work/answer")"
  else
    tf_say drift-failed "comparing releases/$tf_release with its record failed"
  fi
  rm -rf -- "$tf_work"
fi
