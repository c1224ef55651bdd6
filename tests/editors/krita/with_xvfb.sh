#!/bin/bash
# usage: with_xvfb.sh CMD ARGS...   Runs CMD on a private Xvfb and returns CMD's exit code.
# The display number is picked by Xvfb itself (-displayfd: no xvfb-run race); -noreset avoids the
# "could not connect to display" flake measured with a plain Xvfb; Xvfb is stopped by PID afterwards.
set -u
f=$(mktemp); Xvfb -displayfd 3 -noreset -screen 0 ${XVFB_SCREEN:-1600x1000x24} -nolisten tcp 3>"$f" 2>/dev/null & xp=$!
for _ in $(seq 1 100); do [ -s "$f" ] && break; sleep 0.05; done
[ -s "$f" ] || { echo "Xvfb did not start" >&2; kill "$xp" 2>/dev/null; rm -f "$f"; exit 70; }
export DISPLAY=":$(head -1 "$f")"; rm -f "$f"
"$@"; rc=$?
kill "$xp" 2>/dev/null; wait "$xp" 2>/dev/null
exit $rc
