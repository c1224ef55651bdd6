#!/bin/bash
# Real-Krita test suite for the Impasto plugin: installs Krita 5.1.5 + Xvfb if missing (apt), installs the plugin
# with `impasto install-plugin krita` into a throw-away Krita profile, starts a daemon with the weight-free test
# engines (`tests/support/serve.py`) with an isolated runtime dir and two remote CURVE servers on a second host
# (tests/editors/remote_servers.py), runs pytest INSIDE Krita (kritarunner under a private Xvfb) on tests/editors/krita/krita_tests.py,
# and exits non-zero if anything failed.  kritarunner itself always exits 0, so the result is taken from pytest's own
# exit code (kpytest.py ends the process with it) AND from the "KPYTEST-EXIT 0" line it prints.
# usage: tests/editors/run_krita_tests.sh [extra pytest args]      env: IMPASTO_PYTHON (default .venv/bin/python),
#        IMPASTO_WHEEL_DIR (offline pyzmq wheel folder), KEEP_WORK=1 (keep the temp profile for debugging)
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/wait.sh"
root=$(cd "$here/../.." && pwd)
PY=${IMPASTO_PYTHON:-$root/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)
start=$(date +%s)

bash "$here/setup_krita.sh" >/dev/null || { echo "run_krita_tests: Krita setup failed" >&2; exit 1; }

work=$(mktemp -d /tmp/impasto-krita-tests.XXXXXX)
export IMPASTO_RUNTIME_DIR=$work/run XDG_DATA_HOME=$work/data XDG_CONFIG_HOME=$work/config XDG_RUNTIME_DIR=$work/xdg
mkdir -p "$IMPASTO_RUNTIME_DIR" "$XDG_DATA_HOME" "$XDG_CONFIG_HOME" "$XDG_RUNTIME_DIR"
chmod 700 "$IMPASTO_RUNTIME_DIR" "$XDG_RUNTIME_DIR"
dpid=""
rpid=""
cleanup() {
  [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
  [ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
  [ "${KEEP_WORK:-0}" = 1 ] && echo "run_krita_tests: kept $work" || rm -rf "$work"
}
trap cleanup EXIT

pykrita=$XDG_DATA_HOME/krita/pykrita
install_args=(--pykrita-dir "$pykrita" --kritarc "$XDG_CONFIG_HOME/kritarc")
[ -n "${IMPASTO_WHEEL_DIR:-}" ] && install_args+=(--wheel-dir "$IMPASTO_WHEEL_DIR")
if ! "$PY" -m impasto.cli install-plugin krita "${install_args[@]}" > "$work/install.log" 2>&1; then
  cat "$work/install.log" >&2; echo "run_krita_tests: install-plugin failed" >&2; exit 1
fi
echo "run_krita_tests: $(head -1 "$work/install.log")"

# the daemon keeps its styles in a fresh data dir; a few small photos let the training test run in seconds
export IMPASTO_DATA_DIR=$work/impasto-data IMPASTO_TRAIN_PHOTOS=$work/photos
mkdir -p "$IMPASTO_DATA_DIR" "$IMPASTO_TRAIN_PHOTOS"
"$PY" - "$IMPASTO_TRAIN_PHOTOS" <<'PY' || { echo "run_krita_tests: could not write the training photos" >&2; exit 1; }
import sys
from PIL import Image
from skimage import data
for name in ("astronaut", "rocket", "chelsea"):
    Image.fromarray(getattr(data, name)()).convert("RGB").resize((96, 80)).save(f"{sys.argv[1]}/{name}.png")
PY
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" "$root/tests/support/serve.py" \
  --connection-file "$IMPASTO_RUNTIME_DIR/daemon.json" > "$work/daemon.log" 2>&1 &
dpid=$!
wait_for_file "$IMPASTO_RUNTIME_DIR/daemon.json" "$dpid" || true
if [ ! -s "$IMPASTO_RUNTIME_DIR/daemon.json" ]; then
  cat "$work/daemon.log" >&2; echo "run_krita_tests: the daemon did not start" >&2; exit 1
fi

# Two remote servers on a second host (a network namespace over veth, else 127.0.0.2), paired with this machine: the
# artist's profiles go to $IMPASTO_CONFIG_DIR, where the plugin's Server box finds them (remote_servers.py).
export IMPASTO_CONFIG_DIR=$work/artist
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$PY" "$here/remote_servers.py" "$work" "$IMPASTO_CONFIG_DIR" \
  > "$work/remote.log" 2>&1 &
rpid=$!
wait_for_file "$work/remotes.json" "$rpid" || true
if [ ! -s "$work/remotes.json" ]; then
  cat "$work/remote.log" >&2; echo "run_krita_tests: the remote servers did not start" >&2; exit 1
fi
echo "run_krita_tests: $(grep READY "$work/remote.log")"
export IMPASTO_TEST_REMOTES=$work/remotes.json IMPASTO_TEST_WORK=$work IMPASTO_TEST_REPORT=$work/remote-report.txt

# The plugin is imported from the pykrita folder install-plugin wrote (with its vendored pyzmq + client).
export PYTHONPATH="$pykrita:$here/krita"
export IMPASTO_KRITA_NO_REGISTER=1
unset QT_QPA_PLATFORM
"$here/krita/with_xvfb.sh" timeout 900 kritarunner -s kpytest -f main -- \
  -c "$here/krita/pytest.ini" --rootdir "$here/krita" --confcutdir "$here/krita" --basetemp "$work/pytest" \
  "$here/krita/krita_tests.py" "$@" 2>&1 | tee "$work/krita.log" | grep -v -E "^(krita\.|QStandardPaths|kf\.|Could not find|$)"
rc=${PIPESTATUS[0]}
[ -s "$work/remote-report.txt" ] && sed 's/^/run_krita_tests: /' "$work/remote-report.txt"
if ! grep -q "^KPYTEST-EXIT 0$" "$work/krita.log"; then
  [ "$rc" = 0 ] && rc=1
  echo "run_krita_tests: pytest inside Krita did not report success (exit $rc); last lines of the Krita log:" >&2
  tail -n 40 "$work/krita.log" >&2
  echo "--- daemon log:" >&2; tail -n 20 "$work/daemon.log" >&2
fi
# GUI smoke test: real Krita window, the plugin loaded by Krita from the profile (docker + menu actions).
if [ "${SKIP_GUI:-0}" != 1 ]; then
  if "$here/krita/krita_gui_run.sh" "$here/krita/gui_smoke.py" "$work/gui" > "$work/gui.out" 2>&1; then
    echo "run_krita_tests: GUI smoke test passed ($(grep -c . "$work/gui/result.txt") checks logged)"
  else
    echo "run_krita_tests: GUI smoke test FAILED:" >&2; cat "$work/gui.out" >&2
    [ "$rc" = 0 ] && rc=1
  fi
fi
echo "run_krita_tests: exit $rc in $(( $(date +%s) - start )) s"
exit "$rc"
