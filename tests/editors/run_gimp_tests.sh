#!/bin/bash
# Real-GIMP 3 test suite for the Impasto plug-in.  Sets up (or unpacks from the cache) the Debian 13 chroot with
# GIMP 3.0.4, installs the plug-in with `impasto install-plugin gimp` into a throw-away GIMP profile, starts a real
# daemon (`impasto serve`) outside the chroot on its default private ipc socket in the work folder (the connection
# file names it relative to its folder, so GIMP reaches it through the /job bind mount), makes sure it has the tiny
# MT test style (trained once, cached), starts two remote CURVE servers on a second host (remote_servers.py: a
# network namespace over veth, else 127.0.0.2), and runs pytest INSIDE GIMP (gimp-console-3.0, python-fu-eval) on
# tests/editors/gimp/gimp_tests.py.
# Exits non-zero if anything failed.
# usage: tests/editors/run_gimp_tests.sh [extra pytest args]
# env:   IMPASTO_PYTHON (default .venv/bin/python), IMPASTO_CI_CACHE (default ~/.cache/impasto-ci: chroot tarball,
#        pyzmq wheel, test style), KEEP_WORK=1 (keep the work folder), SKIP_GUI=1 (skip the GUI undo test)
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/wait.sh"
root=$(cd "$here/../.." && pwd)
PY=${IMPASTO_PYTHON:-$root/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
CACHE=${IMPASTO_CI_CACHE:-$HOME/.cache/impasto-ci}
start=$(date +%s)
say() { echo "run_gimp_tests: $*"; }

ROOT=$(bash "$here/setup_gimp3_chroot.sh" | tail -1) && [ -f "$ROOT/.ready" ] || { say "GIMP chroot setup failed" >&2; exit 1; }

work=$(mktemp -d /tmp/impasto-gimp-tests.XXXXXX)
dpid=""
rpid=""
cleanup() {
  [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
  [ "${KEEP_WORK:-0}" = 1 ] && say "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/run" "$work/tests" "$work/gimpcfg"
chmod 700 "$work/run"

# pyzmq for GIMP's Python 3.13 (cp313 or abi3, manylinux), downloaded once into the cache
wheels=$CACHE/wheels
mkdir -p "$wheels"
if ! ls "$wheels"/pyzmq-*.whl >/dev/null 2>&1; then
  "$PY" -m pip download -q --only-binary=:all: --no-deps --python-version 3.13 --implementation cp --abi cp313 \
    --abi abi3 --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$wheels" pyzmq || { say "could not download pyzmq for Python 3.13" >&2; exit 1; }
fi
if ! "$PY" -m impasto.cli install-plugin gimp --plugins-dir "$work/gimpcfg/plug-ins" --python-version 3.13 \
     --wheel-dir "$wheels" > "$work/install.log" 2>&1; then
  cat "$work/install.log" >&2; say "install-plugin failed" >&2; exit 1
fi
say "$(head -1 "$work/install.log")"
cp "$here/gimp/gimp_tests.py" "$here/gimp/gpytest.py" "$work/tests/"
printf '[pytest]\naddopts = -ra\n' > "$work/tests/pytest.ini"

# the daemon: isolated runtime dir under the work folder (bind-mounted into the chroot at /job), cached test style
export IMPASTO_DATA_DIR=$CACHE/gimp-test-data
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" -m impasto.cli serve --connection-file "$work/run/daemon.json" \
  --train-photos "$work/photos" \
  > "$work/daemon.log" 2>&1 &
dpid=$!
wait_for_file "$work/run/daemon.json" "$dpid" || true
[ -s "$work/run/daemon.json" ] || { cat "$work/daemon.log" >&2; say "the daemon did not start" >&2; exit 1; }
"$PY" "$here/gimp/prepare.py" "$work" "$work/run/daemon.json" || { say "preparing the test data failed" >&2; exit 1; }
# Two remote servers on a second host (a network namespace over veth, else 127.0.0.2; the chroot shares this network
# stack, so it reaches either), paired with this machine: the profiles go to $work/artist, which GIMP sees as
# /job/artist (IMPASTO_CONFIG_DIR below).  They share the daemon's data dir, so they have the gimptest style too.
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" "$here/remote_servers.py" "$work" "$work/artist" > "$work/remote.log" 2>&1 &
rpid=$!
wait_for_file "$work/remotes.json" "$rpid" || true
[ -s "$work/remotes.json" ] || { cat "$work/remote.log" >&2; say "the remote servers did not start" >&2; exit 1; }
say "$(grep READY "$work/remote.log")"
genv=(IMPASTO_RUNTIME_DIR=/job/run IMPASTO_CONFIG_DIR=/job/artist IMPASTO_TEST_REMOTES=/job/remotes.json
      IMPASTO_TEST_WORK=/job IMPASTO_TEST_REPORT=/job/remote-report.txt)

extra=""
[ $# -gt 0 ] && extra=$(printf ' %q' "$@")            # re-quoted: gpytest.py splits GPYTEST_ARGS with shlex
"$here/gimp/gimp_run.sh" "$ROOT" "$work" tests/gpytest.py "${genv[@]}" \
  "GPYTEST_ARGS=-c /job/tests/pytest.ini --rootdir /job/tests /job/tests/gimp_tests.py$extra" > "$work/gimp.log" 2>&1
rc=$?
grep -v -E "^$|Gtk-WARNING|gimp_wire_read|Welcome to GIMP|tag cache|gimp_flush|stray image|batch command" "$work/gimp.log"
[ -s "$work/remote-report.txt" ] && sed 's/^/run_gimp_tests: /' "$work/remote-report.txt"
if ! grep -q "^GPYTEST-EXIT 0$" "$work/gimp.log"; then
  [ "$rc" = 0 ] && rc=1
  say "pytest inside GIMP did not report success (exit $rc)" >&2
  echo "--- daemon log:" >&2; tail -n 20 "$work/daemon.log" >&2
fi
# Cancel: GIMP kills a plug-in when the artist cancels its progress bar; we kill it the same way (SIGKILL) while its
# Gatys job runs, and the daemon must cancel the job (client gone) while GIMP's call fails and inserts nothing --
# on the local daemon, then on the remote server "studio" (through CURVE: its heartbeats stop the same way).
if [ "${SKIP_CANCEL:-0}" != 1 ] && "$PY" -c "import impasto.engines.optim.gatys" 2>/dev/null; then
  cp "$here/gimp/cancel_batch.py" "$work/tests/"
  for target in local studio; do
    conn=$work/run/daemon.json
    [ "$target" = studio ] && conn=$work/remote/studio/daemon.json       # the server's own (admin) connection
    "$here/gimp/gimp_run.sh" "$ROOT" "$work" tests/cancel_batch.py "${genv[@]}" "IMPASTO_TEST_SERVER=$target" \
      "IMPASTO_TEST_RUN=$work" > "$work/cancel-$target.log" 2>&1 &
    gp=$!
    kout=$("$PY" "$here/gimp/kill_plugin.py" "$work" "$conn" 2>&1); krc=$?
    wait "$gp"; grc=$?
    if [ "$krc" = 0 ] && [ "$grc" = 0 ] && grep -q "^CANCEL status" "$work/cancel-$target.log"; then
      say "cancel test ($target) passed: $kout; GIMP: $(grep '^CANCEL' "$work/cancel-$target.log")"
    else
      say "cancel test ($target) FAILED: $kout (GIMP exit $grc)" >&2
      grep -E "CANCEL|Error|error" "$work/cancel-$target.log" >&2
      [ "$rc" = 0 ] && rc=1
    fi
  done
fi
# Undo needs the GUI (no PDB procedure undoes): GIMP on Xvfb, Ctrl+Z sent with xdotool.
if [ "${SKIP_GUI:-0}" != 1 ]; then
  command -v xdotool >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xdotool >/dev/null
  if out=$("$here/gimp/undo_test.sh" "$ROOT" "$work" 2>&1); then
    say "GUI undo test passed: $out"
  else
    say "GUI undo test FAILED: $out" >&2
    tail -n 20 "$work/gimp-gui.log" >&2
    [ "$rc" = 0 ] && rc=1
  fi
fi
say "exit $rc in $(( $(date +%s) - start )) s"
exit "$rc"
