# shellcheck shell=sh
# For the record at the end of an upload's build (tree-list.sh): the SHA-256
# of the files still as uploaded, taken from the upload's content list instead
# of read again. tf_uploaded_sums DIR LIST IDS OUT: LIST the content list
# (.files: one JSON object a line, src/core/content-list.ts, renderEntry), IDS
# the identity of every file as the upload step wrote it (.ids,
# identities.sh, sorted); writes OUT, tree-list.sh's KNOWN: 'f MODE SIZE PATH'
# SOH SHA-256, NUL-ended, sorted. The evidence is the one the next upload
# trusts to reuse a file (content-facts.sh): a file whose device, inode, mode,
# size, mtime and ctime are still those recorded was not written, replaced,
# moved in or chmod-ed since (the upload step waited for the clock to move
# past the record). A file the build wrote, added or replaced has another
# identity, and is hashed. The list is matched to the identities by path and
# size, as bytes (join, sort, comm; never decoded): only lines whose path
# JSON writes as its bytes (no '"', backslash or control character, so no
# escape to undo) and no name with a control character take part; the files
# of any other are hashed. Needs identity.sh (tf_identity_owner,
# tf_identities). Returns 1 if any step failed: then nothing is known, and
# every file is hashed.

tf_uploaded_sums() {
  tf_sums_work=$4.work
  tf_soh=$(printf '\001')
  rm -f -- "$tf_sums_work".*
  # 'SIZE PATH' SOH MODE, from the identities still as recorded.
  if (cd "$1" && tf_identity_owner && tf_identities .) > "$tf_sums_work.now" &&
    LC_ALL=C sort -z -o "$tf_sums_work.now" -- "$tf_sums_work.now" &&
    LC_ALL=C comm -z -12 -- "$tf_sums_work.now" "$3" > "$tf_sums_work.same" &&
    LC_ALL=C sed -z -n "s/^[0-9]* [0-9]* \([0-7]*\) \([0-9]*\) [^ ]* [^ ]* \.\/\([^[:cntrl:]]*\)\$/\2 \3$tf_soh\1/p" -- "$tf_sums_work.same" > "$tf_sums_work.ids" &&
    LC_ALL=C sort -z -o "$tf_sums_work.ids" -- "$tf_sums_work.ids" &&
    # 'SIZE PATH' SOH SHA-256, from the list's files.
    LC_ALL=C sed -n -e '/\\/d' -e 's/^{"path":"\([^"[:cntrl:]]*\)","type":"file","mode":[0-9]*,"size":\([0-9]*\),"sha256":"\([0-9a-f]\{64\}\)"}$/\2 \1'"$tf_soh"'\3/p' -- "$2" > "$tf_sums_work.listed" &&
    LC_ALL=C tr '\n' '\0' < "$tf_sums_work.listed" > "$tf_sums_work.sums" &&
    LC_ALL=C sort -z -o "$tf_sums_work.sums" -- "$tf_sums_work.sums" &&
    LC_ALL=C join -z -t "$tf_soh" --check-order -- "$tf_sums_work.ids" "$tf_sums_work.sums" > "$tf_sums_work.joined" &&
    LC_ALL=C sed -z -n "s/^\([0-9]*\) \([^$tf_soh]*\)$tf_soh\([0-7]*\)$tf_soh\([0-9a-f]*\)\$/f \3 \1 \2$tf_soh\4/p" -- "$tf_sums_work.joined" > "$4.tmp" &&
    LC_ALL=C sort -z -o "$4.tmp" -- "$4.tmp" && mv -f -- "$4.tmp" "$4"; then
    tf_sums_known=0
  else
    tf_sums_known=1
    rm -f -- "$4.tmp" "$4"
  fi
  rm -f -- "$tf_sums_work".*
  return "$tf_sums_known"
}
