#!/bin/bash
# Real GIMP 3 GUI (gimp-3.0 from the chroot) on a private Xvfb, driven from the host.
# usage: gimp_gui.sh ROOT WORKDIR BATCH_PY DRIVER [ARGS...]
#   Starts GIMP with WORKDIR at /job and /job/input.png open, runs /job/BATCH_PY in GIMP through python-fu-eval,
#   then runs DRIVER ARGS on the host with DISPLAY set and GIMP_PID exported (xdotool, import...).  GIMP is stopped
#   when DRIVER returns; the exit code is DRIVER's.  The profile is WORKDIR/gimpcfg (a gimprc without the welcome
#   and colour-profile dialogs, single-window mode, is written there).  Extra environment for GIMP: GIMP_ENV="A=1 B=2".
set -u
ROOT=$1; WORK=$(realpath "$2"); BATCH=$3; shift 3
mkdir -p "$WORK/gimpcfg"
cat > "$WORK/gimpcfg/gimprc" <<'RC'
(show-welcome-dialog no)
(color-profile-policy keep)
(show-tips no)
(config-version "3.0.4")
(check-updates no)
RC
f=$(mktemp)
Xvfb -displayfd 3 -noreset -screen 0 1280x860x24 -nolisten tcp 3>"$f" 2>/dev/null &
xp=$!
for _ in $(seq 1 100); do [ -s "$f" ] && break; sleep 0.05; done
[ -s "$f" ] || { echo "Xvfb did not start" >&2; kill "$xp" 2>/dev/null; exit 70; }
export DISPLAY=":$(head -1 "$f")"; rm -f "$f"
# shellcheck disable=SC2086
unshare -m bash -c '
  mount --bind "$1" "$2/job" && mount --bind /tmp/.X11-unix "$2/tmp/.X11-unix" &&
  exec chroot "$2" env -i HOME=/root LANG=C.UTF-8 PATH=/usr/bin:/bin DISPLAY="$3" GIMP3_DIRECTORY=/job/gimpcfg $5 \
    timeout "${GIMP_TIMEOUT:-300}" gimp-3.0 --no-splash --batch-interpreter=python-fu-eval -b "exec(open(\"/job/$4\").read())" \
    /job/input.png' _ "$WORK" "$ROOT" "$DISPLAY" "$BATCH" "${GIMP_ENV:-}" > "$WORK/gimp-gui.log" 2>&1 &
export GIMP_PID=$!
"$@"; rc=$?
kill "$GIMP_PID" 2>/dev/null; wait "$GIMP_PID" 2>/dev/null
kill "$xp" 2>/dev/null; wait "$xp" 2>/dev/null
exit $rc
