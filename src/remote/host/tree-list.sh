# shellcheck shell=sh
# The content of a release as tagflip records it at the end of a build and
# compares it with for `status` with drift (drift.sh): tf_tree_list DIR OUT
# [KNOWN] writes OUT, one NUL-ended record per entry under DIR, sorted as
# bytes: type (find's %y), mode, size, SHA-256 for a file (- otherwise), the
# path, and for a link '//' and its target (a path find prints never holds
# '//'). Names are bytes throughout (LC_ALL=C; never decoded). No link is
# followed: a link into shared/ is recorded as a link, never what it leads to.
# One find; then the files are hashed with sha256sum, in batches (xargs), by
# as many at once as the host has CPUs (at most 8), and paste -z joins the sums
# to the files in the order they were hashed in; a file that cannot be read
# fails it. KNOWN (an upload's files still as uploaded: uploaded-sums.sh)
# holds records 'f MODE SIZE PATH' SOH SHA-256, NUL-ended: a file whose own
# 'f MODE SIZE PATH' is one of them takes that SHA-256 and is not read; every
# other file is hashed. The record is the same bytes either way.

tf_tree_list() {
  # find writes its lists from within DIR.
  case $2 in /*) tf_tree_work=$2.work ;; *) tf_tree_work=$PWD/$2.work ;; esac
  tf_tree_clean
  if (cd "$1" && LC_ALL=C find . -mindepth 1 \
    \( -type f -fprintf "$tf_tree_work.files" 'f %m %s %P\0' \) -o \
    \( -type l -fprintf "$tf_tree_work.other" 'l %m %s - %P//%l\0' \) -o \
    \( -type d -fprintf "$tf_tree_work.other" 'd %m 0 - %P\0' \) -o \
    -fprintf "$tf_tree_work.other" '%y %m 0 - %P\0') &&
    tf_tree_known "${3:-}" &&
    (cd "$1" && tf_tree_hash) &&
    LC_ALL=C sort -z -o "$2.tmp" -- "$tf_tree_work.known" "$tf_tree_work.hashed" "$tf_tree_work.other" && mv -f -- "$2.tmp" "$2"; then
    tf_tree_listed=0
  else
    tf_tree_listed=1
    rm -f -- "$2.tmp"
  fi
  tf_tree_clean
  return "$tf_tree_listed"
}
tf_tree_clean() {
  rm -f -- "$tf_tree_work".*
}
# Splits the files (.files) into those KNOWN gives the SHA-256 of, as records
# (.known; how many: tf_tree_taken), and the others, to hash (.hash; how many:
# tf_tree_count), in one awk (uploaded-sums.sh made KNOWN with one that reads
# NUL-ended records). A file is known when its whole 'f MODE SIZE PATH' is a
# KNOWN record's, before the SOH and the 64 digits of its SHA-256.
tf_tree_known() {
  tf_tree_taken=0
  if [ -z "$1" ]; then
    mv -f -- "$tf_tree_work.files" "$tf_tree_work.hash" && : > "$tf_tree_work.known" && tf_tree_counted
    return
  fi
  tf_tree_counts=$(tf_tree_sums=$1 tf_tree_out=$tf_tree_work LC_ALL=C awk '
    BEGIN { RS = "\0"; known = ENVIRON["tf_tree_out"] ".known"; hash = ENVIRON["tf_tree_out"] ".hash" }
    FILENAME == ENVIRON["tf_tree_sums"] { sum[substr($0, 1, length($0) - 65)] = substr($0, length($0) - 63); next }
    $0 in sum {
      # f MODE SIZE SHA-256 PATH
      path = $0
      for (field = 0; field < 3; field++) path = substr(path, index(path, " ") + 1)
      printf "f %s %s %s %s%c", $2, $3, sum[$0], path, 0 > known
      taken++
      next
    }
    { printf "%s%c", $0, 0 > hash; count++ }
    END { printf "" > known; printf "" > hash; print taken + 0, count + 0 }' "$1" "$tf_tree_work.files") &&
    tf_tree_taken=${tf_tree_counts% *} && tf_tree_count=${tf_tree_counts#* } &&
    [ -n "$tf_tree_taken" ] && [ -n "$tf_tree_count" ]
}
# grep -c exits 1 when it counts 0.
tf_tree_counted() {
  tf_tree_count=$(LC_ALL=C grep -c -z '' -- "$tf_tree_work.hash") || [ "$tf_tree_count" = 0 ]
}
# Hashes the files of .hash into .hashed (records), in as many parts as the
# host has CPUs (at most 8, at most one per file), every Nth file in a part:
# each part's files are read in one sha256sum batch after another (xargs), all
# parts at once. The sums come back in the order of the parts' lists, put end
# to end (.order), and paste joins them to those lists' records.
tf_tree_hash() {
  # Nothing to read (all known): no process.
  if [ "$tf_tree_count" = 0 ]; then
    : > "$tf_tree_work.hashed"
    return
  fi
  tf_tree_jobs=$(nproc 2>/dev/null) || tf_tree_jobs=1
  case $tf_tree_jobs in '' | *[!0-9]*) tf_tree_jobs=1 ;; esac
  if [ "$tf_tree_jobs" -gt 8 ]; then tf_tree_jobs=8; fi
  if [ "$tf_tree_count" -lt "$tf_tree_jobs" ]; then tf_tree_jobs=$tf_tree_count; fi
  if [ "$tf_tree_jobs" -le 1 ]; then
    # One part: the list itself, no process to split it.
    mv -f -- "$tf_tree_work.hash" "$tf_tree_work.order" &&
      LC_ALL=C sed -z 's,^[^ ]* [^ ]* [^ ]* ,./,' -- "$tf_tree_work.order" > "$tf_tree_work.names" &&
      xargs -0 -r sha256sum -z -- < "$tf_tree_work.names" > "$tf_tree_work.sums" ||
      return 1
  else
    tf_tree_part=1
    tf_tree_pids=''
    while [ "$tf_tree_part" -le "$tf_tree_jobs" ]; do
      LC_ALL=C sed -z -n "$tf_tree_part~${tf_tree_jobs}p" -- "$tf_tree_work.hash" > "$tf_tree_work.part$tf_tree_part" &&
        LC_ALL=C sed -z 's,^[^ ]* [^ ]* [^ ]* ,./,' -- "$tf_tree_work.part$tf_tree_part" > "$tf_tree_work.names$tf_tree_part" ||
        return 1
      xargs -0 -r sha256sum -z -- < "$tf_tree_work.names$tf_tree_part" > "$tf_tree_work.sums$tf_tree_part" &
      tf_tree_pids="$tf_tree_pids $!"
      tf_tree_part=$((tf_tree_part + 1))
    done
    tf_tree_hashed=0
    for tf_tree_pid in $tf_tree_pids; do
      wait "$tf_tree_pid" || tf_tree_hashed=1
    done
    [ "$tf_tree_hashed" = 0 ] || return 1
    tf_tree_part=1
    : > "$tf_tree_work.order" && : > "$tf_tree_work.sums" || return 1
    while [ "$tf_tree_part" -le "$tf_tree_jobs" ]; do
      cat -- "$tf_tree_work.part$tf_tree_part" >> "$tf_tree_work.order" &&
        cat -- "$tf_tree_work.sums$tf_tree_part" >> "$tf_tree_work.sums" ||
        return 1
      tf_tree_part=$((tf_tree_part + 1))
    done
  fi
  # A sum for every file, or paste would pair the wrong ones.
  [ "$(LC_ALL=C grep -c -z '' -- "$tf_tree_work.sums")" = "$tf_tree_count" ] &&
    LC_ALL=C cut -z -d ' ' -f 1-3 -- "$tf_tree_work.order" > "$tf_tree_work.meta" &&
    LC_ALL=C cut -z -d ' ' -f 1 -- "$tf_tree_work.sums" > "$tf_tree_work.digests" &&
    LC_ALL=C cut -z -d ' ' -f 4- -- "$tf_tree_work.order" > "$tf_tree_work.paths" &&
    LC_ALL=C paste -z -d ' ' -- "$tf_tree_work.meta" "$tf_tree_work.digests" "$tf_tree_work.paths" > "$tf_tree_work.hashed"
}
