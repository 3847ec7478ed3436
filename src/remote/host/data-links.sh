# shellcheck shell=sh
# The parts of data-path that tagflip copies from and removes in are its own
# directories, never a link someone planted: `releases` a directory,
# `current` a link to `releases/<name>` (one name, no way out of
# releases/), and that data release a directory, not a link to one elsewhere.
# `tf_check_data_links REPORT` calls `REPORT data MESSAGE` for each part
# that is not (preflight: tf_problem; the migrate step: its first refusal).

tf_check_data_links() {
  if [ -L "$tf_data_path/releases" ]; then
    "$1" data "$tf_data_path/releases is a symlink (to '$(readlink -- "$tf_data_path/releases")'): tagflip copies data into it and removes data releases from it, never through a link; make it a directory of its own (move the link aside, mkdir $tf_data_path/releases, and move into it the data releases you trust)"
  elif [ -e "$tf_data_path/releases" ] && [ ! -d "$tf_data_path/releases" ]; then
    "$1" data "$tf_data_path/releases is not a directory; move it aside"
  fi
  if [ -e "$tf_data_path/current" ] && [ ! -L "$tf_data_path/current" ]; then
    "$1" data "$tf_data_path/current is not a symlink; move the data to $tf_data_path/releases/<name> and link current to releases/<name>"
  elif [ -L "$tf_data_path/current" ]; then
    tf_data_link=$(readlink -- "$tf_data_path/current")
    tf_data_name=${tf_data_link#releases/}
    tf_data_name=${tf_data_name%/}
    case $tf_data_link in releases/*) ;; *) tf_data_name=/ ;; esac
    case $tf_data_name in
      '' | . | .. | */*)
        "$1" data "$tf_data_path/current must be a relative link to releases/<name>, not to '$tf_data_link': tagflip will not copy, migrate or flip data through a link out of $tf_data_path/releases; relink it: ln -sfn releases/<name> $tf_data_path/current"
        ;;
      *)
        if [ -L "$tf_data_path/releases/$tf_data_name" ]; then
          "$1" data "$tf_data_path/releases/$tf_data_name, where $tf_data_path/current points, is a symlink (to '$(readlink -- "$tf_data_path/releases/$tf_data_name")'): tagflip copies the live data from there, never through a link; put the data itself at $tf_data_path/releases/$tf_data_name"
        fi
        ;;
    esac
  fi
}
