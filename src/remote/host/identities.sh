# shellcheck shell=sh
# The identity of the regular files at and under the paths given, one
# NUL-ended line each: device, inode, mode, size, mtime and ctime as the file
# system keeps them (to the nanosecond where it does), path. Only of what no
# other user can have written or swapped: files of the deploy user's ($tf_uid)
# that others cannot write, in directories of the deploy user's that others
# cannot write; find goes into no other directory (its entries could be
# replaced at any moment, also between a check and a copy). Group write counts
# as others' unless the group is the deploy user's own ($tf_gid:
# tf_identity_owner). No single quote in it: it goes into sh -c texts.

find "$@" \( -type d \( -perm -0002 -o ! -user "$tf_uid" -o \( -perm -0020 ! -group "$tf_gid" \) \) -prune \) -o \( -type f -user "$tf_uid" ! -perm -0002 ! \( -perm -0020 ! -group "$tf_gid" \) -printf "%D %i %m %s %T@ %C@ %p\\0" \)
