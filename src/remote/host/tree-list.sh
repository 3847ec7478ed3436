# shellcheck shell=sh
# The content of a release as tagflip records it at the end of a build and
# compares it with for `status` with drift (drift.sh): tf_tree_list DIR OUT
# writes OUT, one NUL-ended record per entry under DIR, sorted as bytes:
# type (find's %y), mode, size, SHA-256 for a file (- otherwise), the path,
# and for a link '//' and its target (a path find prints never holds '//').
# Names are bytes throughout (LC_ALL=C; never decoded). No link is followed:
# a link into shared/ is recorded as a link, never what it leads to. One
# find, one sha256sum per batch of files (xargs), and paste -z to join the
# sums to the files in find's order; a file that cannot be read fails it.

tf_tree_list() {
  tf_tree_work=$2.work
  rm -f -- "$tf_tree_work.meta" "$tf_tree_work.hashed" "$tf_tree_work.paths" "$tf_tree_work.other" "$tf_tree_work.sums" "$tf_tree_work.files"
  if (cd "$1" && LC_ALL=C find . -mindepth 1 \
    \( -type f -fprintf "$tf_tree_work.meta" 'f %m %s\0' -fprintf "$tf_tree_work.hashed" './%P\0' -fprintf "$tf_tree_work.paths" '%P\0' \) -o \
    \( -type l -fprintf "$tf_tree_work.other" 'l %m %s - %P//%l\0' \) -o \
    \( -type d -fprintf "$tf_tree_work.other" 'd %m 0 - %P\0' \) -o \
    -fprintf "$tf_tree_work.other" '%y %m 0 - %P\0' &&
    xargs -0 -r sha256sum -z -- < "$tf_tree_work.hashed" > "$tf_tree_work.sums") &&
    LC_ALL=C cut -z -d ' ' -f 1 < "$tf_tree_work.sums" > "$tf_tree_work.files" &&
    LC_ALL=C paste -z -d ' ' -- "$tf_tree_work.meta" "$tf_tree_work.files" "$tf_tree_work.paths" > "$tf_tree_work.sums" &&
    cat -- "$tf_tree_work.sums" "$tf_tree_work.other" | LC_ALL=C sort -z -o "$2.tmp" && mv -f -- "$2.tmp" "$2"; then
    tf_tree_listed=0
  else
    tf_tree_listed=1
    rm -f -- "$2.tmp"
  fi
  rm -f -- "$tf_tree_work.meta" "$tf_tree_work.hashed" "$tf_tree_work.paths" "$tf_tree_work.other" "$tf_tree_work.sums" "$tf_tree_work.files"
  return "$tf_tree_listed"
}
