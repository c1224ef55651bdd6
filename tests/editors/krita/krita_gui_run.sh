#!/bin/bash
# Run the real Krita GUI under a private Xvfb with a throw-away profile in which the Impasto plugin (installed by
# `impasto install-plugin krita`) and the test driver plugin impasto_ci are enabled; impasto_ci runs SCRIPT's run()
# once the window exists and quits Krita with its code.  A daemon must be running (IMPASTO_RUNTIME_DIR).
# usage: krita_gui_run.sh SCRIPT.py OUTDIR          env: IMPASTO_PYTHON, IMPASTO_WHEEL_DIR
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
PY=${IMPASTO_PYTHON:-$root/.venv/bin/python}
export KRITA_CI_SCRIPT=$(realpath "$1") KRITA_CI_OUT=$(realpath -m "$2")
prof=$(mktemp -d /tmp/impasto-krita-gui.XXXXXX)
mkdir -p "$prof/config" "$prof/data/krita/pykrita" "$prof/run" "$KRITA_CI_OUT"
chmod 700 "$prof/run"
args=(--pykrita-dir "$prof/data/krita/pykrita" --kritarc "$prof/config/kritarc")
[ -n "${IMPASTO_WHEEL_DIR:-}" ] && args+=(--wheel-dir "$IMPASTO_WHEEL_DIR")
"$PY" -m impasto.cli install-plugin krita "${args[@]}" >/dev/null || { rm -rf "$prof"; exit 1; }
cp -r "$here/pykrita/impasto_ci" "$here/pykrita/impasto_ci.desktop" "$prof/data/krita/pykrita/"
printf 'enable_impasto_ci=true\n' >> "$prof/config/kritarc"
# no first-start dialogs, a plain window
cat >> "$prof/config/kritarc" <<'RC'

[General]
ShowWelcomeScreen=false
RC
export XDG_CONFIG_HOME=$prof/config XDG_DATA_HOME=$prof/data XDG_RUNTIME_DIR=$prof/run
export KRITA_CI_RESULT=$KRITA_CI_OUT/result.txt
rm -f "$KRITA_CI_RESULT"
unset QT_QPA_PLATFORM PYTHONPATH IMPASTO_KRITA_NO_REGISTER
"$here/with_xvfb.sh" timeout 600 krita --nosplash > "$KRITA_CI_OUT/krita.log" 2>&1; rc=$?
grep -q "^exit code 0$" "$KRITA_CI_RESULT" 2>/dev/null || { [ "$rc" = 0 ] && rc=1; cat "$KRITA_CI_RESULT" >&2 2>/dev/null; tail -n 30 "$KRITA_CI_OUT/krita.log" >&2; }
rm -rf "$prof"
exit $rc
