# shellcheck shell=sh
# Wait until the file system's clock has moved past the mtime of $tf_stamp, so
# that whatever is written from now on comes out newer than it: $tf_probe, a
# file beside it, is rewritten until it is newer. Where the clock ticks finely
# (a few ms), builtins only, no process; after 200 tries (a file system that
# keeps whole seconds, or a shell whose test compares whole seconds, as
# BusyBox's) with a nap between tries, for up to 3 s. Returns 1 if the clock
# did not move by then. -nt is not POSIX, but dash, bash, ksh and BusyBox have
# it; a shell without it waits the 3 s and returns 1. Leaves $tf_probe behind.

tf_past_the_stamp() {
  tf_tries=0
  tf_waited=0
  # shellcheck disable=SC3013 # -nt is not POSIX, but every shell tagflip meets has it (see the header)
  until [ "$tf_probe" -nt "$tf_stamp" ] 2>/dev/null; do
    tf_tries=$((tf_tries + 1))
    if [ "$tf_tries" -gt 200 ]; then
      if [ "$tf_waited" -ge 300 ]; then return 1; fi
      if sleep 0.01 2>/dev/null; then tf_waited=$((tf_waited + 1)); else sleep 1; tf_waited=$((tf_waited + 100)); fi
    fi
    { true > "$tf_probe"; } 2>/dev/null || return 1
  done
}
