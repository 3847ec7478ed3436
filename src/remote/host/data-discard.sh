# shellcheck shell=sh
# When another host failed before the flip of a prepared release (the
# barrier): remove the data copy data-copy.sh made here, never the live data
# nor through a link, and record the deploy as failed. The release stays ready.

tf_step discard
tf_data_copy=$tf_data_path/releases/$tf_release
if [ -L "$tf_data_path/releases" ]; then
  tf_say warning "$tf_data_path/releases is a symlink: the data copy $tf_data_copy was not removed through it"
else
  tf_live_data=$(readlink -f -- "$tf_data_path/current" 2>/dev/null) || tf_live_data=''
  if [ -z "$tf_live_data" ] || [ "$tf_live_data" != "$(readlink -f -- "$tf_data_copy")" ]; then rm -rf -- "$tf_data_copy"; fi
fi
tf_append_history "$tf_history_failed" || tf_fail 1 "cannot write $tf_history_path"
