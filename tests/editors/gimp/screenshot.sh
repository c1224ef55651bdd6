#!/bin/bash
# Regenerate docs/gimp-stylize-dialog.png (the plug-in's dialog) and docs/gimp-window.png (GIMP with the dialog open
# over the image) from the real GIMP 3 GUI on Xvfb.  Needs root (chroot) and the host tools Xvfb, xdotool, ImageMagick.
# usage: tests/editors/gimp/screenshot.sh [OUTDIR]      (default: docs/)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=$(realpath "${1:-$root/docs}")
PY=${IMPASTO_PYTHON:-$root/.venv/bin/python}
command -v xdotool >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xdotool >/dev/null
ROOT=$(bash "$here/../setup_gimp3_chroot.sh" | tail -1)
work=$(mktemp -d /tmp/impasto-gimp-shot.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/tests" "$out"
"$PY" -m impasto.cli install-plugin gimp --plugins-dir "$work/gimpcfg/plug-ins" --python-version 3.13 \
  --wheel-dir "${IMPASTO_CI_CACHE:-$HOME/.cache/impasto-ci}/wheels" >/dev/null
"$PY" -c "
import sys; sys.path.insert(0, '$here'); from prepare import images; from pathlib import Path; images(Path('$work'), (600, 400), marker=False)"
cp "$here/dialog_batch.py" "$work/tests/"
# the painting for the result screenshot (read, never committed; only the stylized result appears in docs/)
painting=${SHOT_PAINTING:-$root/../shared/data/style/great_wave.jpg}
[ -f "$painting" ] && cp "$painting" "$work/style-painting.jpg"
# a real daemon, so the dialog's first line shows what it offers
mkdir -p "$work/run" && chmod 700 "$work/run"
"$PY" -m impasto.cli serve --connection-file "$work/run/daemon.json" --train-photos "$work/photos" \
  > "$work/daemon.log" 2>&1 &
dpid=$!
trap 'kill $dpid 2>/dev/null; wait $dpid 2>/dev/null; [ "${KEEP_WORK:-0}" = 1 ] || rm -rf "$work"' EXIT
for _ in $(seq 1 600); do [ -s "$work/run/daemon.json" ] && break; sleep 0.1; done

shoot() {
  wid=$(xdotool search --sync --onlyvisible --name "Impasto: Stylize" | head -1)
  main=$(xdotool search --onlyvisible --name " GIMP$" | head -1)
  # no window manager: place the windows ourselves (GIMP full screen, the dialog over its right half)
  [ -n "$main" ] && xdotool windowsize "$main" 1280 860 windowmove "$main" 0 0
  xdotool windowmove "$wid" 862 70 mousemove 640 850
  sleep 2                                         # let GTK finish drawing
  import -window "$wid" "$out/gimp-stylize-dialog.png"
  import -window root "$out/gimp-window.png"
  if [ -f "$work/style-painting.jpg" ]; then        # cancel the dialog, wait for the real job, photograph it
    xdotool windowfocus --sync "$wid" key Escape
    for _ in $(seq 1 2800); do [ -s "$work/result-ready" ] && break; sleep 0.2; done
    sleep 2
    import -window root "$out/gimp-result.png"
    echo "result: $(cat "$work/result-ready" 2>/dev/null) -> $out/gimp-result.png"
  fi
  echo "wrote $out/gimp-stylize-dialog.png ($(identify -format '%wx%h' "$out/gimp-stylize-dialog.png")) and $out/gimp-window.png"
}
export out work
export -f shoot
GIMP_TIMEOUT=600 GIMP_ENV="IMPASTO_RUNTIME_DIR=/job/run" timeout 720 "$here/gimp_gui.sh" "$ROOT" "$work" tests/dialog_batch.py bash -c shoot
