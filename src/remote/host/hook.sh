# shellcheck shell=sh
# Phases 10–11 (SPEC): run activate or verify ($tf_hook_command, named
# $tf_hook_name) in the release that is now current, under command-timeout and
# with the hook environment (tf_hook in prelude.sh). Writes nothing itself.

tf_step "$tf_hook_name"
cd "$tf_release_path" || tf_fail 1 "cannot enter $tf_release_path"
tf_hook sh -c "$tf_hook_command"
tf_status=$?
if [ "$tf_status" -eq 124 ]; then
  tf_fail "$tf_status" "$tf_hook_name ran longer than command-timeout ($tf_command_timeout s) and was stopped"
elif [ "$tf_status" -ne 0 ]; then
  tf_fail "$tf_status" "$tf_hook_name exited with status $tf_status"
fi
