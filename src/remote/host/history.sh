# shellcheck shell=sh
# Append one line to .tagflip/history.jsonl: e.g. that a rollback's activate
# or verify failed after its flip (the flip's own line already said where
# current went).

tf_step record
if ! { mkdir -p -- "$tf_deploy_path/.tagflip" && tf_append_history "$tf_history_line"; }; then
  tf_fail 1 "cannot write $tf_history_path"
fi
