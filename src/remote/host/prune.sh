# shellcheck shell=sh
#  Retention's removals, checked on the host first; after a flip, its helpers are already there.

tf_step prune
if [ -n "$tf_prune_unknown" ]; then tf_say left-alone "$tf_prune_unknown"; fi
tf_exists() { [ -e "$1" ] || [ -L "$1" ]; }
# A build may leave directories without write permission (Go's module cache is
# read-only on purpose): made writable (never following a link), they go too.
tf_remove_tree() {
  rm -rf -- "$1" 2>/dev/null && return 0
  chmod -R u+w -- "$1" 2>/dev/null
  rm -rf -- "$1"
}
# Never what is live, nor a directory tagflip has no record of, whatever the
# plan said: check everything before removing anything. What is live is what
# current leads to, compared by real path, however the link is written; a
# current that leads outside releases/ leaves nothing to tell, so nothing goes.
if [ -n "$tf_prune" ] && [ -z "${tf_flipped:-}" ] && [ -L "$tf_deploy_path/current" ] && ! tf_release_of "$tf_deploy_path" >/dev/null; then
  tf_fail 1 "$tf_deploy_path/current points to '$(readlink -- "$tf_deploy_path/current")', outside $tf_deploy_path/releases: nothing was removed, since the release that serves cannot be told (point it at that release: ln -sfn releases/<name> $tf_deploy_path/current)"
fi
# What is live, resolved once: a failed release's record has no directory
# left, and hundreds of them must not cost two processes each. The real path of
# a name that does not exist is that of releases/ and the name (readlink -f).
# Right after a flip in this script, current is releases/<what it flipped to>.
tf_releases_real=$(readlink -f -- "$tf_deploy_path/releases" 2>/dev/null) || tf_releases_real=''
if [ -n "${tf_flipped:-}" ] && [ -n "$tf_releases_real" ] && [ ! -L "$tf_deploy_path/releases/$tf_flipped" ]; then
  tf_live_real=$tf_releases_real/$tf_flipped
else
  tf_live_real=$(readlink -f -- "$tf_deploy_path/current" 2>/dev/null) || tf_live_real=''
fi
for tf_name in $tf_prune; do
  if tf_exists "$tf_deploy_path/releases/$tf_name"; then
    # The real path of a release that is not itself a link is releases/'s and its name.
    if [ -L "$tf_deploy_path/releases/$tf_name" ]; then
      tf_real=$(readlink -f -- "$tf_deploy_path/releases/$tf_name" 2>/dev/null) || tf_real=''
    else
      tf_real=$tf_releases_real/$tf_name
    fi
    if [ -n "$tf_live_real" ] && [ "$tf_live_real" = "$tf_real" ]; then tf_fail 1 "refusing to remove releases/$tf_name: it is current"; fi
    if [ ! -f "$tf_deploy_path/.tagflip/releases/$tf_name.json" ]; then
      tf_fail 1 "refusing to remove releases/$tf_name: tagflip has no record of it"
    fi
  elif [ -n "$tf_live_real" ] && [ -d "$tf_deploy_path/releases" ] && [ "$tf_live_real" = "$tf_releases_real/$tf_name" ]; then
    tf_fail 1 "refusing to remove releases/$tf_name: it is current"
  fi
done
# Data releases are removed in data-path's own releases/, never through a link.
if [ -n "$tf_prune_data" ] && [ -L "$tf_data_path/releases" ]; then
  tf_fail 1 "$tf_data_path/releases is a symlink (to '$(readlink -- "$tf_data_path/releases")'): no data release is removed through it, so nothing was removed; make it a directory of its own"
fi
for tf_name in $tf_prune_data; do
  if tf_is_live "$tf_data_path" "$tf_data_path/releases/$tf_name"; then
    tf_fail 1 "refusing to remove data release $tf_name: it is $tf_data_label/current"
  fi
done
# A directory goes before its record: a directory half removed keeps its
# record, so the next prune may finish the job. (A record is the manifest, the
# content list, the files' identities and the tree; .paths is the stamp that releases
# uploaded by earlier versions have instead.) Records without a directory
# (failed releases) go together, by one rm in .tagflip/releases (release names
# hold no blanks nor pattern characters, so the list splits safely); should
# that fail, one by one, to name the record that cannot go.
tf_records=''
for tf_name in $tf_prune; do
  tf_record=$tf_deploy_path/.tagflip/releases/$tf_name
  if tf_exists "$tf_deploy_path/releases/$tf_name"; then
    tf_remove_tree "$tf_deploy_path/releases/$tf_name" || tf_fail 1 "cannot remove $tf_deploy_path/releases/$tf_name"
    rm -f -- "$tf_record.json" "$tf_record.files" "$tf_record.ids" "$tf_record.paths" "$tf_record.tree" || tf_fail 1 "cannot remove the record of $tf_name"
    tf_say removed "$tf_name"
  else
    tf_say removed-record "$tf_name"
    tf_records="$tf_records $tf_name.json $tf_name.files $tf_name.ids $tf_name.paths $tf_name.tree"
  fi
done
# shellcheck disable=SC2086 # split on purpose: see above
if [ -n "$tf_records" ] && ! (cd -- "$tf_deploy_path/.tagflip/releases" 2>/dev/null && set -f && rm -f -- $tf_records 2>/dev/null); then
  for tf_name in $tf_prune; do
    tf_record=$tf_deploy_path/.tagflip/releases/$tf_name
    rm -f -- "$tf_record.json" "$tf_record.files" "$tf_record.ids" "$tf_record.paths" "$tf_record.tree" || tf_fail 1 "cannot remove the record of $tf_name"
  done
fi
for tf_name in $tf_prune_data; do
  tf_remove_tree "$tf_data_path/releases/$tf_name" || tf_fail 1 "cannot remove $tf_data_path/releases/$tf_name"
  tf_say removed-data "$tf_name"
done
[ -z "$tf_prune$tf_prune_data" ] || tf_append_history "$tf_history_prune" || tf_fail 1 "cannot write $tf_history_path"
