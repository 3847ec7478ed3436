# shellcheck shell=sh
# When another host of the step failed before the flip (the barrier): remove
# the release built here and its data copy, never what is live, and record it
# as failed, so that no host runs what not all hosts could.

. ./current.sh
tf_step discard
if tf_is_live "$tf_deploy_path" "$tf_release_path"; then
  tf_fail 1 "releases/$tf_release is current; it is not discarded"
fi
rm -rf -- "$tf_release_path" "$tf_deploy_path/.tagflip/releases/$tf_release.files" "$tf_deploy_path/.tagflip/releases/$tf_release.ids" "$tf_deploy_path/.tagflip/releases/$tf_release.tree" ||
  tf_fail 1 "cannot remove $tf_release_path"
if [ -n "$tf_data_copy" ]; then
  # Never through a link (the build refused to copy through one).
  if [ -L "$tf_data_path/releases" ]; then
    tf_say warning "$tf_data_path/releases is a symlink: the data copy $tf_data_copy was not removed through it"
  else
    rm -rf -- "$tf_data_path/releases/$tf_data_copy"
  fi
fi
tf_write "$tf_manifest_path" "$tf_manifest_failed" && tf_append_history "$tf_history_failed" ||
  tf_fail 1 "cannot write $tf_manifest_path"
