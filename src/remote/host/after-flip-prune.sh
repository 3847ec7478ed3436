# shellcheck shell=sh
# Retention once current has moved (after the flip, or after the hooks):
# housekeeping, which never fails the deploy. A failure ends the removals and
# says `prune-failed <code> <why>` instead of an error; the phase goes on
# to exit 0, and the client reports it as a warning (what was left, and why).

(
  # A subshell starts with the default action for signals its parent caught: a
  # client gone must not end it between a directory and its record (prelude.sh).
  trap 'tf_lost=yes' PIPE HUP
  tf_fail() { tf_say prune-failed "$1" "$2"; exit 1; }
. ./prune.sh
) || :
