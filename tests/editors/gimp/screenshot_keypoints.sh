#!/bin/bash
# Regenerate docs/gimp-propose-keypoints.png (the two keypoint paths Propose keypoints wrote) and
# docs/gimp-warp-overlay.png (a DST result from those paths with its warp overlay group turned on) from the real
# GIMP 3 GUI on Xvfb, against a real daemon.  Pictures: tests/editors/make_keypoint_scene.py.  Needs root (chroot)
# and the host tools Xvfb, xdotool, ImageMagick.
# usage: tests/editors/gimp/screenshot_keypoints.sh [OUTDIR]      (default: docs/)   env: SHOT_SIZE, SHOT_STEPS
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=$(realpath -m "${1:-$root/docs}")
PY=${IMPASTO_PYTHON:-$root/.venv/bin/python}
command -v xdotool >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xdotool >/dev/null
ROOT=$(bash "$here/../setup_gimp3_chroot.sh" | tail -1)
work=$(mktemp -d /tmp/impasto-gimp-kpshot.XXXXXX)
mkdir -p "$work/tests" "$out" "$work/run" && chmod 700 "$work/run"
"$PY" -m impasto.cli install-plugin gimp --plugins-dir "$work/gimpcfg/plug-ins" --python-version 3.13 \
  --wheel-dir "${IMPASTO_CI_CACHE:-$HOME/.cache/impasto-ci}/wheels" >/dev/null
"$PY" "$here/../make_keypoint_scene.py" "$work" 300 >/dev/null
mv "$work/photo.png" "$work/input.png"
cp "$here/keypoints_batch.py" "$work/tests/"
"$PY" -m impasto.cli serve --connection-file "$work/run/daemon.json" > "$work/daemon.log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null; [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"' EXIT
for _ in $(seq 1 600); do [ -s "$work/run/daemon.json" ] && break; sleep 0.1; done

shoot() {
  for _ in $(seq 1 600); do main=$(xdotool search --onlyvisible --name " GIMP$" | head -1); [ -n "$main" ] && break; sleep 0.5; done
  [ -n "$main" ] && xdotool windowsize "$main" 1280 860 windowmove "$main" 0 0
  for _ in $(seq 1 1500); do [ -s "$work/proposed-ready" ] && break; sleep 0.2; done
  sleep 3
  import -window root "$out/gimp-propose-keypoints.png"
  echo "proposal: $(cat "$work/proposed-ready" 2>/dev/null) -> $out/gimp-propose-keypoints.png"
  for _ in $(seq 1 4500); do [ -s "$work/overlay-ready" ] && break; sleep 0.2; done
  sleep 3
  import -window root "$out/gimp-warp-overlay.png"
  echo "overlay: $(cat "$work/overlay-ready" 2>/dev/null) -> $out/gimp-warp-overlay.png"
}
export out work
export -f shoot
GIMP_TIMEOUT=1200 GIMP_ENV="IMPASTO_RUNTIME_DIR=/job/run" timeout 1300 "$here/gimp_gui.sh" "$ROOT" "$work" tests/keypoints_batch.py bash -c shoot
