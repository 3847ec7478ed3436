# shellcheck shell=sh
# For the record at the end of an upload's build (tree-list.sh): the SHA-256
# of the files still as uploaded, taken from the upload's content list instead
# of read again. tf_uploaded_sums DIR LIST IDS OUT [NOW]: LIST the content list
# (.files: one JSON object a line, src/core/content-list.ts, renderEntry), IDS
# the identity of every file as the upload step wrote it (.ids,
# identities.sh); writes OUT, tree-list.sh's KNOWN: 'f MODE SIZE PATH' SOH
# SHA-256, NUL-ended. NOW, when given, is IDS itself, taken as the identities
# now: build.sh gives it when no command of the user's (build, migrate) ran
# since the upload step took them, only tagflip's own links; else they are
# listed again. The evidence is the one the next upload trusts to reuse a
# file (content-facts.sh): a file whose device, inode, mode, size, mtime and
# ctime are still those recorded was not written, replaced, moved in or
# chmod-ed since (the upload step waited for the clock to move past the
# record). A file the build wrote, added or replaced has another identity, and
# is hashed. The identity now is matched to the one recorded as a whole line,
# and to the list by path and size, as bytes (LC_ALL=C; never decoded): only
# lines whose path JSON writes as its bytes (no '"', backslash or control
# character, so no escape to undo) and no name with a control character take
# part; the files of any other are hashed. One awk reads all three, NUL-ended
# records but the list's (tf_nul_awk: an awk that cannot is not used). Needs
# identity.sh (tf_identity_owner, tf_identities). Returns 1 if any step
# failed: then nothing is known, and every file is hashed.

tf_uploaded_sums() {
  # Given NOW (the recorded identities themselves), every identity in it is as recorded.
  if [ -n "${5:-}" ]; then
    tf_sums_now=$5 tf_sums_recorded=/dev/null tf_sums_same=yes
  else
    tf_sums_now=$4.now tf_sums_recorded=$3 tf_sums_same=''
  fi
  # The file names reach awk in its environment, where no escape is undone;
  # each RS assignment takes effect from the file after it.
  if tf_nul_awk && { [ -n "$tf_sums_same" ] || (cd "$1" && tf_identity_owner && tf_identities .) > "$tf_sums_now"; } &&
    tf_sums_list=$2 tf_sums_ids=$tf_sums_recorded LC_ALL=C awk '
      FILENAME == ENVIRON["tf_sums_list"] {
        if ($0 ~ /^\{"path":"[^"\\[:cntrl:]]*","type":"file","mode":[0-9]+,"size":[0-9]+,"sha256":"[0-9a-f]+"\}$/ &&
          split($0, part, "\"") == 17 && length(part[16]) == 64)
          sum["./" part[4] " " substr(part[13], 2, length(part[13]) - 2)] = part[16]
        next
      }
      FILENAME == ENVIRON["tf_sums_ids"] { recorded[$0] = 1; next }
      # The identity now: device inode mode size mtime ctime ./PATH.
      (same || ($0 in recorded)) && $0 !~ /[[:cntrl:]]/ {
        path = $0
        for (field = 0; field < 6; field++) path = substr(path, index(path, " ") + 1)
        if ((path " " $4) in sum) printf "f %s %s %s\001%s%c", $3, $4, substr(path, 3), sum[path " " $4], 0
      }' same="$tf_sums_same" "$2" RS='\0' "$tf_sums_recorded" "$tf_sums_now" > "$4.tmp" &&
    mv -f -- "$4.tmp" "$4"; then
    tf_sums_known=0
  else
    tf_sums_known=1
    rm -f -- "$4.tmp" "$4"
  fi
  [ -n "$tf_sums_same" ] || rm -f -- "$4.now"
  return "$tf_sums_known"
}
# Whether awk splits NUL-ended records (RS = "\0"): mawk and gawk do, BusyBox's
# awk does not. Asked once a shell.
tf_nul_awk() {
  if [ -z "${tf_nul_awk_reads:-}" ]; then
    tf_nul_awk_reads=$(printf 'a\0b c\0' | LC_ALL=C awk 'BEGIN { RS = "\0" } { n += NF } END { print NR " " n }' 2>/dev/null) || tf_nul_awk_reads=no
  fi
  [ "$tf_nul_awk_reads" = '2 3' ]
}
