# shellcheck shell=sh
# Which release DIR/current is, decided by real path, never by how the link is
# written: absolute, `./releases/x`, `releases/x/`, through a symlinked DIR.
# `tf_release_of DIR [LINK]` (LINK: the link's text, when read already) prints the name when the link leads to DIR/releases/<name>
# and fails otherwise (no link, or a target outside DIR/releases). Its last
# component is not resolved, so a release directory that is itself a link
# still counts; a chain of links is followed to its end.
# `tf_is_live DIR PATH`: PATH is what DIR/current leads to.

# The release DIR/current leads to, by real path, however the link is written.
tf_release_of() {
  if [ "$#" -ge 2 ]; then tf_of_link=$2; else tf_of_link=$(readlink -- "$1/current") || return 1; fi
  # As tagflip writes it, releases/NAME: inside DIR/releases by its very text.
  case $tf_of_link in
    releases/*/* | releases/ | releases/. | releases/..) ;;
    releases/*)
      if [ -d "$1/releases" ] && [ -x "$1/releases" ]; then printf '%s\n' "${tf_of_link#releases/}"; return 0; fi
      return 1
      ;;
  esac
  case $tf_of_link in /*) ;; *) tf_of_link=$1/$tf_of_link ;; esac
  while :; do case $tf_of_link in */) tf_of_link=${tf_of_link%/} ;; *) break ;; esac; done
  [ -n "$tf_of_link" ] || return 1
  tf_of_releases=$(cd -P -- "$1/releases" 2>/dev/null && pwd) || return 1
  tf_of_name=${tf_of_link##*/}
  tf_of_parent=${tf_of_link%/*}
  tf_of_parent=$(cd -P -- "${tf_of_parent:-/}" 2>/dev/null && pwd) || tf_of_parent=''
  if [ "$tf_of_parent" != "$tf_of_releases" ] || [ "$tf_of_name" = . ] || [ "$tf_of_name" = .. ]; then
    tf_of_real=$(readlink -f -- "$1/current") || return 1
    tf_of_name=${tf_of_real##*/}
    [ "${tf_of_real%/*}" = "$tf_of_releases" ] || return 1
  fi
  printf '%s\n' "$tf_of_name"
}
# Whether PATH is what DIR/current leads to (real paths compared).
tf_is_live() {
  tf_live=$(readlink -f -- "$1/current" 2>/dev/null) && [ -n "$tf_live" ] &&
    [ "$tf_live" = "$(readlink -f -- "$2" 2>/dev/null)" ]
}
