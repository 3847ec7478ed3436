# shellcheck shell=sh
# Phase 2, preflight (SPEC): check the host before anything changes, in a
# subshell of the session's first script (open.sh). Every problem is said as
# `problem KIND MESSAGE`, all of them, not just the first; the subshell's status
# is 0 only when there is none. Reads: deploy-path, .tagflip, data-path (when
# tagflip keeps data there). Writes nothing but a probe in the run directory,
# and tf_run_dir/private when .tagflip is private already.

. ./data-links.sh
tf_step preflight
tf_problems=0
tf_problem() { tf_problems=$((tf_problems + 1)); tf_say problem "$@"; }
# The probe goes in the session's run directory (mktemp -d), removed with it;
# none where a flip by mv -T has worked before (the flip leaves .tagflip/mv-T).
if [ -z "${tf_run_dir:-}" ]; then
  tf_problem mktemp "mktemp -d failed: the host needs a writable temporary directory"
elif [ -f "$tf_deploy_path/.tagflip/mv-T" ]; then
  :
elif ! { true > "$tf_run_dir/probe-a" && ln -s target "$tf_run_dir/probe-b" && mv -T "$tf_run_dir/probe-b" "$tf_run_dir/probe-a"; } 2>/dev/null; then
  tf_problem mv-T "'mv -T' does not work: tagflip flips current with it; install GNU coreutils"
fi
for tf_tool in timeout sed stat; do
  command -v "$tf_tool" >/dev/null 2>&1 || tf_problem "$tf_tool" "'$tf_tool' is not installed; install GNU coreutils and sed"
done
if [ "$tf_lock" = yes ] && ! command -v flock >/dev/null 2>&1; then
  tf_problem flock "'flock' is not installed; it keeps two runs off one deploy-path; install util-linux"
fi
if [ -n "$tf_repository" ]; then
  for tf_tool in git tar; do
    command -v "$tf_tool" >/dev/null 2>&1 || tf_problem "$tf_tool" "'$tf_tool' is not installed, but repository is set; install it on the host"
  done
fi
if [ -n "$tf_upload" ]; then
  for tf_tool in tar head xargs find base64 dirname sort; do
    command -v "$tf_tool" >/dev/null 2>&1 || tf_problem "$tf_tool" "'$tf_tool' is not installed, but upload is set; install GNU tar, coreutils and findutils on the host"
  done
fi
# Another user who can write in deploy-path or .tagflip could plant a file or a
# link where tagflip writes, or swap a release: refuse that. root may own
# deploy-path (it can do anything anyway), not .tagflip, which tagflip keeps
# private (mode 700) and tightens itself when it takes the lock. data-path and
# its releases (kinds data-path, data-releases) are held as deploy-path is:
# there tagflip copies, migrates and removes data.
# $3 is the directory's "owner mode" (stat -c '%u %a'); -O: owned by who deploys.
tf_check_others() {
  [ -n "$3" ] || return 0
  tf_owner=${3% *}
  tf_mode=${3#* }
  case $2 in
    data-path) tf_what="data-path $1" ;;
    *) tf_what=$1 ;;
  esac
  if [ ! -O "$1" ] && { [ "$tf_owner" != 0 ] || [ "$2" = .tagflip ]; }; then
    case $2 in
      data-*) tf_problem owner "$tf_what belongs to $(stat -L -c %U -- "$1"), not to $(id -un), who deploys: another user must not be able to choose the data tagflip copies, migrates and removes; chown $(id -un) $1, or set data-path to a directory of $(id -un)'s" ;;
      *) tf_problem owner "$1 belongs to $(stat -L -c %U -- "$1"), not to $(id -un), who deploys: another user must not be able to change what tagflip runs and records; chown $(id -un) $1" ;;
    esac
  fi
  if [ $((0$tf_mode & 02)) -ne 0 ]; then
    case $2 in
      data-*) tf_problem permissions "$tf_what is writable by every user of the host (mode $tf_mode): anyone could put a link there that tagflip would copy, migrate or remove through; check it for files you did not make, then chmod o-w $1" ;;
      *) tf_problem permissions "$1 is writable by every user of the host (mode $tf_mode): anyone could plant files or links where tagflip writes; check it for files you did not make, then chmod o-w $1" ;;
    esac
  elif [ $((0$tf_mode & 020)) -ne 0 ] && [ "$2" != .tagflip ]; then
    case $2 in
      data-*) tf_say warning "$tf_what is writable by group $(stat -L -c %G -- "$1") (mode $tf_mode): its members can change the data tagflip copies, migrates and removes; chmod g-w $1 unless every member may" ;;
      *) tf_say warning "$1 is writable by group $(stat -L -c %G -- "$1") (mode $tf_mode): its members can change what tagflip deploys; chmod g-w $1 unless every member may" ;;
    esac
  fi
}
tf_nl='
'
if [ -d "$tf_deploy_path" ]; then
  tf_say fact deploy-path exists
  if [ ! -w "$tf_deploy_path" ] || { [ -e "$tf_deploy_path/.tagflip" ] && [ ! -w "$tf_deploy_path/.tagflip" ]; }; then
    tf_problem writable "$tf_deploy_path is not writable by $(id -un); chown it (and .tagflip in it) to that user"
  fi
  # Both directories in one stat: a line each, deploy-path's first.
  if [ -d "$tf_deploy_path/.tagflip" ]; then
    tf_stats=$(stat -L -c '%u %a' -- "$tf_deploy_path" "$tf_deploy_path/.tagflip" 2>/dev/null) || tf_stats=''
  else
    tf_stats=$(stat -L -c '%u %a' -- "$tf_deploy_path" 2>/dev/null) || tf_stats=''
  fi
  tf_check_others "$tf_deploy_path" deploy-path "${tf_stats%%"$tf_nl"*}"
  case $tf_stats in
    *"$tf_nl"*)
      tf_check_others "$tf_deploy_path/.tagflip" .tagflip "${tf_stats#*"$tf_nl"}"
      # Private already: taking the lock need not make it so (tf_private_state).
      if [ -O "$tf_deploy_path/.tagflip" ] && [ "${tf_stats##* }" = 700 ] && [ -n "${tf_run_dir:-}" ]; then
        true 2>/dev/null > "$tf_run_dir/private"
      fi
      ;;
  esac
elif [ -e "$tf_deploy_path" ] || [ -L "$tf_deploy_path" ]; then
  tf_problem writable "$tf_deploy_path exists but is not a directory"
else
  tf_say fact deploy-path absent
  tf_dir=$tf_deploy_path
  while [ ! -e "$tf_dir" ]; do tf_dir=$(dirname -- "$tf_dir"); done
  if [ ! -d "$tf_dir" ] || [ ! -w "$tf_dir" ]; then
    tf_problem writable "cannot create $tf_deploy_path: $tf_dir is not writable by $(id -un); create $tf_deploy_path and chown it to that user"
  fi
fi
if [ -e "$tf_deploy_path/current" ] && [ ! -L "$tf_deploy_path/current" ]; then
  tf_problem current "$tf_deploy_path/current is not a symlink; move it aside so tagflip can manage it"
fi
# data-path gets deploy-path's checks once tagflip keeps data there (migrate
# is set, or current or releases is there): a directory of the app's own that
# happens to sit at data-path is none of tagflip's business.
if [ -n "$tf_migrating" ] || [ -e "$tf_data_path/current" ] || [ -L "$tf_data_path/current" ] ||
  [ -e "$tf_data_path/releases" ] || [ -L "$tf_data_path/releases" ]; then
  if [ -d "$tf_data_path" ]; then
    # Both directories in one stat, as for deploy-path; releases only if it is one (not a link).
    if [ -d "$tf_data_path/releases" ] && [ ! -L "$tf_data_path/releases" ]; then
      tf_stats=$(stat -L -c '%u %a' -- "$tf_data_path" "$tf_data_path/releases" 2>/dev/null) || tf_stats=''
    else
      tf_stats=$(stat -L -c '%u %a' -- "$tf_data_path" 2>/dev/null) || tf_stats=''
    fi
    tf_check_others "$tf_data_path" data-path "${tf_stats%%"$tf_nl"*}"
    case $tf_stats in
      *"$tf_nl"*) tf_check_others "$tf_data_path/releases" data-releases "${tf_stats#*"$tf_nl"}" ;;
    esac
  elif [ -e "$tf_data_path" ] || [ -L "$tf_data_path" ]; then
    tf_problem data "data-path $tf_data_path exists but is not a directory; move it aside, or set data-path to a directory"
  fi
  tf_check_data_links tf_problem
fi
[ "$tf_problems" -eq 0 ]
