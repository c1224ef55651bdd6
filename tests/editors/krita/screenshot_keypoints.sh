#!/bin/bash
# Regenerate docs/krita-propose-keypoints.png (the markers Propose keypoints wrote) and docs/krita-warp-overlay.png
# (a DST result from those markers with its warp overlay group turned on): real Krita GUI under Xvfb, plugin installed
# by `impasto install-plugin krita`, a real daemon.  Pictures: tests/editors/make_keypoint_scene.py (scikit-image's
# astronaut and a painted, mirrored copy of it).
# usage: tests/editors/krita/screenshot_keypoints.sh [OUTDIR (default docs/)]   env: SHOT_SIZE, SHOT_STEPS
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
PY=${IMPASTO_PYTHON:-$root/.venv/bin/python}
out=$(realpath -m "${1:-$root/docs}")
bash "$here/../setup_krita.sh" >/dev/null || exit 1
work=$(mktemp -d /tmp/impasto-krita-kpshot.XXXXXX)
export IMPASTO_RUNTIME_DIR=$work/run IMPASTO_DATA_DIR=$work/data SHOT_PHOTO=$work/photo.png SHOT_PAINTING=$work/painting.png
mkdir -p "$IMPASTO_RUNTIME_DIR" "$out" "$IMPASTO_DATA_DIR"; chmod 700 "$IMPASTO_RUNTIME_DIR"
"$PY" "$here/../make_keypoint_scene.py" "$work" || exit 1
"$PY" -m impasto.cli serve --connection-file "$IMPASTO_RUNTIME_DIR/daemon.json" > "$work/daemon.log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null; [ "${KEEP_WORK:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"' EXIT
for _ in $(seq 1 1800); do [ -s "$IMPASTO_RUNTIME_DIR/daemon.json" ] && break; sleep 0.1; done
"$here/krita_gui_run.sh" "$here/keypoints_scene.py" "$work/shot"; rc=$?
cat "$work/shot/result.txt" 2>/dev/null
for f in krita-propose-keypoints.png krita-warp-overlay.png; do
  [ -f "$work/shot/$f" ] && cp "$work/shot/$f" "$out/$f" && echo "wrote $out/$f"
done
exit $rc
