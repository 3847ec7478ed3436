# shellcheck shell=sh
# Phase 9, flip (SPEC): point current at releases/<tag> with one rename(2)
# (mv -T), data-path's current first when the release has its own data; then
# the records: the release active, the one it replaced inactive (or
# rolled-back), a line in the history. Once current has moved, nothing here
# fails the phase: a record that cannot be written is a warning. Retention may
# follow in the same script (after-flip-prune.sh).

. ./current.sh
tf_step flip
[ -d "$tf_release_path" ] || tf_fail 1 "$tf_release_path is missing; nothing was flipped"
# A current that leads outside releases/ is not ours to replace (the plan
# refuses it too): whatever serves there, tagflip cannot flip back to it.
if [ -L "$tf_deploy_path/current" ] && ! tf_release_of "$tf_deploy_path" >/dev/null; then
  tf_fail 1 "$tf_deploy_path/current points to '$(readlink -- "$tf_deploy_path/current")', outside $tf_deploy_path/releases; nothing was flipped (point it at the release that serves: ln -sfn releases/<name> $tf_deploy_path/current)"
fi
# Point DIR/current at releases/NAME with one rename(2).
tf_flip() {
  tf_link=$1/.current.tagflip-$$
  # -f replaces a link left by a session that had this pid; -n never follows it.
  ln -sfn -- "releases/$2" "$tf_link" || return 1
  mv -T -- "$tf_link" "$1/current" || { rm -f -- "$tf_link"; return 1; }
}
if [ -n "$tf_data_target" ]; then
  # data/current leads into releases/, never through a link out of it (preflight's check, again).
  if [ -L "$tf_data_path/releases" ] || [ -L "$tf_data_path/releases/$tf_data_target" ]; then
    tf_fail 1 "$tf_data_path/releases/$tf_data_target is reached through a symlink; tagflip points $tf_data_label/current only at a data release of its own; nothing was flipped"
  fi
  [ -d "$tf_data_path/releases/$tf_data_target" ] || tf_fail 1 "$tf_data_path/releases/$tf_data_target is missing; nothing was flipped"
  tf_flip "$tf_data_path" "$tf_data_target" || tf_fail 1 "could not flip $tf_data_path/current; nothing was flipped"
  tf_say data-flipped
fi
if ! tf_flip "$tf_deploy_path" "$tf_release"; then
  if [ -n "$tf_data_target" ]; then
    # Put data/current back as it was: on its old release, or absent on a first migration.
    if { [ -n "$tf_data_before" ] && tf_flip "$tf_data_path" "$tf_data_before"; } ||
      { [ -z "$tf_data_before" ] && rm -f -- "$tf_data_path/current"; }; then
      tf_fail 1 "'mv -T' could not replace $tf_deploy_path/current; current and $tf_data_label/current are unchanged"
    fi
    tf_fail 1 "'mv -T' could not replace $tf_deploy_path/current, and $tf_data_label/current could not be put back: it points to releases/$tf_data_target"
  fi
  tf_fail 1 "'mv -T' could not replace $tf_deploy_path/current; it is unchanged"
fi
tf_say flipped
tf_flipped=$tf_release
# For preflight: mv -T works here (written by the shell, no process).
[ -f "$tf_deploy_path/.tagflip/mv-T" ] || true 2>/dev/null > "$tf_deploy_path/.tagflip/mv-T"
{ [ -d "$tf_deploy_path/.tagflip/releases" ] || mkdir -p -- "$tf_deploy_path/.tagflip/releases"; } &&
  tf_write "$tf_manifest_path" "$tf_manifest_active" &&
  { [ -z "$tf_departed_manifest" ] || tf_write "$tf_departed_manifest_path" "$tf_departed_manifest"; } &&
  tf_append_history "$tf_history_flip" ||
  tf_say warning "current now points to releases/$tf_release, but its record under .tagflip could not be written: check that the deploy user can write $tf_deploy_path/.tagflip"
if [ -n "$tf_adopted" ]; then
  tf_say log "adopted releases/$tf_adopted (made without tagflip): recorded as inactive, the release to go back to"
fi
