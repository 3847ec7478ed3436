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
  # Columns cut from the same lines stay in step, and paste puts them side by
  # side: no regular expression with a group (GNU sed's are some 7 ms per
  # 1,000 lines), a few ms a step for 10,000 files. From the identities still
  # as recorded: './PATH SIZE' SOH 'f MODE SIZE PATH'. From the list's files:
  # './PATH SIZE' SOH SHA-256 (a size is digits only: one reading of each).
  if (cd "$1" && tf_identity_owner && tf_identities .) > "$tf_sums_work.now" &&
    LC_ALL=C sort -z -o "$tf_sums_work.now" -- "$tf_sums_work.now" &&
    LC_ALL=C comm -z -12 -- "$tf_sums_work.now" "$3" > "$tf_sums_work.same" &&
    { LC_ALL=C grep -z -v '[[:cntrl:]]' -- "$tf_sums_work.same" > "$tf_sums_work.plain" || [ "$?" = 1 ]; } &&
    LC_ALL=C cut -z -d ' ' -f 7- -- "$tf_sums_work.plain" > "$tf_sums_work.path" &&
    LC_ALL=C cut -z -d ' ' -f 4 -- "$tf_sums_work.plain" > "$tf_sums_work.size" &&
    LC_ALL=C cut -z -d ' ' -f 3,4 -- "$tf_sums_work.plain" > "$tf_sums_work.mode" &&
    LC_ALL=C cut -z -c 3- -- "$tf_sums_work.path" > "$tf_sums_work.name" &&
    LC_ALL=C paste -z -d ' ' -- "$tf_sums_work.path" "$tf_sums_work.size" > "$tf_sums_work.key" &&
    LC_ALL=C sed -z 's/^/f /' -- "$tf_sums_work.mode" > "$tf_sums_work.meta" &&
    LC_ALL=C paste -z -d ' ' -- "$tf_sums_work.meta" "$tf_sums_work.name" > "$tf_sums_work.record" &&
    LC_ALL=C paste -z -d "$tf_soh" -- "$tf_sums_work.key" "$tf_sums_work.record" > "$tf_sums_work.ids" &&
    LC_ALL=C sort -z -o "$tf_sums_work.ids" -- "$tf_sums_work.ids" &&
    { LC_ALL=C grep -v -F '\' -- "$2" > "$tf_sums_work.unescaped" || [ "$?" = 1 ]; } &&
    { LC_ALL=C grep -x '{"path":"[^"[:cntrl:]]*","type":"file","mode":[0-9]*,"size":[0-9]*,"sha256":"[0-9a-f]\{64\}"}' -- "$tf_sums_work.unescaped" > "$tf_sums_work.listed" || [ "$?" = 1 ]; } &&
    LC_ALL=C sed -e 's,^{"path":",./,' -e 's/","type":"file","mode":[0-9]*,"size":/ /' -e "s/,\"sha256\":\"/$tf_soh/" -e 's/"}$//' -- "$tf_sums_work.listed" > "$tf_sums_work.sums" &&
    LC_ALL=C tr '\n' '\0' < "$tf_sums_work.sums" > "$tf_sums_work.listed" &&
    LC_ALL=C sort -z -o "$tf_sums_work.listed" -- "$tf_sums_work.listed" &&
    LC_ALL=C join -z -t "$tf_soh" --check-order -- "$tf_sums_work.ids" "$tf_sums_work.listed" > "$tf_sums_work.joined" &&
    LC_ALL=C cut -z -d "$tf_soh" -f 2- -- "$tf_sums_work.joined" > "$4.tmp" &&
    LC_ALL=C sort -z -o "$4.tmp" -- "$4.tmp" && mv -f -- "$4.tmp" "$4"; then
    tf_sums_known=0
  else
    tf_sums_known=1
    rm -f -- "$4.tmp" "$4"
  fi
  rm -f -- "$tf_sums_work".*
  return "$tf_sums_known"
}
