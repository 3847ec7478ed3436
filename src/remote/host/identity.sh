# shellcheck shell=sh
# tf_uid and tf_gid for identities.sh: the deploy user, and the group whose write
# permission is as good as the user's own, the user's primary group when it is
# a user private group (named as the user), else one no file has (2^31 - 1).

tf_identity_owner() {
  # Once a session (open.sh, for an upload): the facts and the build inherit them.
  if [ -n "${tf_uid:-}" ] && [ -n "${tf_gid:-}" ]; then return 0; fi
  tf_uid=$(id -u) && tf_gid=$(id -g) && tf_uname=$(id -un) && tf_gname=$(id -gn) || return 1
  if [ "$tf_uname" != "$tf_gname" ]; then tf_gid=2147483647; fi
}
tf_identities() {
  . ./identities.sh
}
