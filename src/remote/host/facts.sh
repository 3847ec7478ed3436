# shellcheck shell=sh
# Phase 3, facts (SPEC): what the host has, said as `fact NAME VALUE` lines
# that src/core/facts.ts reads: current and its release, the releases and
# their records (manifests), data-path's current, and the tools the plan
# needs. Runs in a subshell of open.sh once the lock is held (or without the
# lock for status and dry runs). Changes nothing.

. ./current.sh
tf_step facts
tf_current_link=''
if [ -L "$tf_deploy_path/current" ] && tf_current_link=$(readlink -- "$tf_deploy_path/current"); then
  tf_say fact current "$tf_current_link"
  if tf_name=$(tf_release_of "$tf_deploy_path" "$tf_current_link"); then
    tf_say fact current-release "$tf_name"
    # A current release without a record (made by hand, by Capistrano) is adopted
    # by the next flip: say its commit, when its directory tells it cheaply.
    tf_dir=$tf_deploy_path/releases/$tf_name
    if [ -d "$tf_dir" ] && [ ! -f "$tf_deploy_path/.tagflip/releases/$tf_name.json" ]; then
      if [ -f "$tf_dir/REVISION" ]; then
        tf_say fact current-commit "$(head -c 64 -- "$tf_dir/REVISION" | tr -d '[:space:]')"
      elif [ -e "$tf_dir/.git" ] && command -v git >/dev/null 2>&1; then
        tf_say fact current-commit "$(git -C "$tf_dir" rev-parse --verify --quiet HEAD 2>/dev/null </dev/null)"
      fi
    fi
  fi
fi
if [ -n "$tf_release" ] && { [ -e "$tf_release_path" ] || [ -L "$tf_release_path" ]; }; then tf_say fact release-dir present; fi
for tf_dir in "$tf_deploy_path"/releases/*/; do
  if [ -d "$tf_dir" ]; then tf_dir=${tf_dir%/}; tf_say fact dir "${tf_dir##*/}"; fi
done
if [ -L "$tf_data_path/current" ]; then
  tf_say fact data-current "$(readlink -- "$tf_data_path/current")"
  if tf_name=$(tf_release_of "$tf_data_path"); then tf_say fact data-current-release "$tf_name"; fi
fi
for tf_dir in "$tf_data_path"/releases/*/; do
  if [ -d "$tf_dir" ]; then tf_dir=${tf_dir%/}; tf_say fact data-dir "${tf_dir##*/}"; fi
done
# Every record in one read (awk), not a process per file: a site may keep
# hundreds. awk gets the records' names on its input (names have no newline:
# src/core/inputs.ts), reads each itself, then, after an empty line, the newest
# history lines, however long the history has grown (tail seeks from its end).
# The tag reaches awk in its environment, never in its arguments (ps shows
# those). Without awk, the shell's own read does it, slower but without forks.
if command -v awk >/dev/null 2>&1; then
  {
    for tf_manifest in "$tf_deploy_path"/.tagflip/releases/*.json; do
      if [ -f "$tf_manifest" ] && [ -r "$tf_manifest" ]; then printf '%s\n' "$tf_manifest"; fi
    done
    printf '\n'
    if [ -f "$tf_history_path" ]; then tail -n 200 -- "$tf_history_path"; fi
  } | tf_awk_tag=$tf_tag awk '
    history { printf "\n%s history %s\n", ENVIRON["tf_awk_tag"], $0; next }
    $0 == "" { history = 1; next }
    {
      file = $0; text = ""; lines = 0
      while ((getline line < file) > 0) { text = text line; lines++ }
      close(file)
      if (lines > 0) printf "\n%s manifest %s\n", ENVIRON["tf_awk_tag"], text
    }'
else
  for tf_manifest in "$tf_deploy_path"/.tagflip/releases/*.json; do
    if [ -f "$tf_manifest" ] && [ -r "$tf_manifest" ]; then
      tf_text=''
      while IFS= read -r tf_line || [ -n "$tf_line" ]; do tf_text=$tf_text$tf_line; done < "$tf_manifest"
      tf_say manifest "$tf_text"
    fi
  done
  if [ -f "$tf_history_path" ]; then
    tail -n 200 -- "$tf_history_path" | while IFS= read -r tf_line; do tf_say history "$tf_line"; done
  fi
fi
tf_lock_file=$tf_deploy_path/.tagflip/lock
# Held means flock's exit status 1; a flock that cannot run says nothing of a holder.
if [ "$tf_lock" = report ] && [ -f "$tf_lock_file" ] && command -v flock >/dev/null 2>&1; then
  flock -n "$tf_lock_file" true 2>/dev/null
  if [ "$?" -eq 1 ]; then tf_say fact lock-holder "$(tr -d '\n' < "$tf_lock_file.json" 2>/dev/null)"; fi
fi
# One release name, one content: a complete release of this name is used again
# only if it was made from the commit the ref names now. Resolved only when a
# record and a directory of the release exist (a new name costs nothing here).
# Fetching writes the shared mirror, so only a run holding the lock fetches; a
# dry run reads the mirror as it is.
if [ -n "$tf_repository" ] && [ -n "$tf_release" ] && [ -f "$tf_manifest_path" ] && [ -d "$tf_release_path" ]; then
  tf_mirror=$tf_deploy_path/.tagflip/repo.git
  export GIT_TERMINAL_PROMPT=0 GIT_SSH_COMMAND='ssh -o BatchMode=yes'
  tf_fetched=yes
  if [ "$tf_lock" = yes ] && [ -d "$tf_mirror" ]; then
    tf_set_origin "$tf_mirror" "$tf_repository" &&
      tf_fetch "$tf_mirror" || tf_fetched="git fetch from $tf_repository failed"
  elif [ "$tf_lock" = yes ]; then
    rm -rf -- "$tf_mirror.tmp" &&
      tf_git clone --mirror --quiet -- "$tf_repository" "$tf_mirror.tmp" &&
      mv -T -- "$tf_mirror.tmp" "$tf_mirror" || tf_fetched="git clone of $tf_repository failed"
  fi
  if [ "$tf_fetched" != yes ]; then
    tf_say fact source-error "$tf_fetched"
  elif tf_source=$(git --git-dir="$tf_mirror" rev-parse --verify --quiet "$tf_ref^{commit}" 2>/dev/null); then
    tf_say fact source-commit "$tf_source"
  elif [ "$tf_lock" = yes ]; then
    tf_say fact source-error "'$tf_ref' is not a tag, branch or commit in $tf_repository"
  fi
fi
