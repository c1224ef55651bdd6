#!/bin/bash
# Regenerate docs/krita.png (Krita with the Impasto docker, after a stylization) and docs/krita-docker.png (the docker
# alone): real Krita GUI under Xvfb, plugin installed by `impasto install-plugin krita`, a real daemon.
# Content: scikit-image's public-domain "coffee" photo; style: scikit-image's "hubble_deep_field" (no repo data).
# usage: tests/editors/krita/screenshot.sh [OUTDIR (default docs/)]   env: SHOT_ENGINE, SHOT_SIZE, SHOT_STEPS
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
PY=${IMPASTO_PYTHON:-$root/.venv/bin/python}
out=$(realpath -m "${1:-$root/docs}")
bash "$here/../setup_krita.sh" >/dev/null || exit 1
work=$(mktemp -d /tmp/impasto-krita-shot.XXXXXX)
export IMPASTO_RUNTIME_DIR=$work/run SHOT_CONTENT=$work/coffee.png SHOT_STYLE=$work/hubble.png
mkdir -p "$IMPASTO_RUNTIME_DIR" "$out"; chmod 700 "$IMPASTO_RUNTIME_DIR"
"$PY" - <<PY || exit 1
from PIL import Image
from skimage import data
Image.fromarray(data.coffee()).resize((600, 400), Image.LANCZOS).save("$SHOT_CONTENT")
Image.fromarray(data.hubble_deep_field()).resize((400, 400), Image.LANCZOS).save("$SHOT_STYLE")
PY
"$PY" -m impasto.cli serve --connection-file "$IMPASTO_RUNTIME_DIR/daemon.json" > "$work/daemon.log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 600); do [ -s "$IMPASTO_RUNTIME_DIR/daemon.json" ] && break; sleep 0.1; done
"$here/krita_gui_run.sh" "$here/screenshot_scene.py" "$work/shot"; rc=$?
cat "$work/shot/result.txt" 2>/dev/null
if [ -f "$work/shot/krita.png" ]; then
  cp "$work/shot/krita.png" "$out/krita.png"
  [ -f "$work/shot/krita-docker.png" ] && cp "$work/shot/krita-docker.png" "$out/krita-docker.png"
  echo "wrote $out/krita.png"
fi
exit $rc
