# shellcheck shell=sh
# The copy of the files a new release reuses, as an sh -c text run in the
# release they come from: $1 the file of their paths (./path, NUL-ended; files
# over 1 MiB first, so that the copiers do not end with one of them copying a
# large file alone), $2 where to (a directory only this user can enter), $3
# their identities as the facts verified them (sorted). As many copiers at
# once as the host has CPUs, at most 8, into directories made beforehand: two
# cp --parents making one directory at the same time would fail. Copied
# (reflinked where the file system can), never hard-linked: the release they
# come from stays as it was whatever the new build does to its copy. Once
# copied, the files are checked again: one written, replaced or moved while it
# was being copied no longer has its identity, and the copy is not taken
# ($2.failed says why). The copy is made under the name its record lists, the
# identity check never follows a symlink (find -P), and find goes into no
# directory another user could have swapped (identities.sh).

copiers=$(nproc 2>/dev/null) || copiers=2
  if [ "$copiers" -gt 8 ]; then copiers=8; fi
  if ! { xargs -0 dirname -z -- < "$1" | LC_ALL=C sort -zu | (cd "$2" && xargs -0 mkdir -p --) &&
    xargs -0 -P "$copiers" -n 256 cp --parents --preserve=mode --reflink=auto -t "$2" -- < "$1"; }; then
    echo copy > "$2.failed"
    exit 1
  fi
  if ! { tf_identities() { @tagflip:include identities.sh@; } && tf_identities . > "$2.after" && LC_ALL=C sort -z -o "$2.after" -- "$2.after" &&
    LC_ALL=C comm -z -13 -- "$2.after" "$3" > "$2.moved" && [ ! -s "$2.moved" ]; }; then
    echo changed > "$2.failed"
    exit 1
  fi
  rm -f -- "$2.after" "$2.moved"
