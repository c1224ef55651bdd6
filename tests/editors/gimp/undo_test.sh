#!/bin/bash
# Undo in the real GIMP 3 GUI: GIMP (Xvfb) runs undo_batch.py, which stylizes the open image non-interactively;
# then the artist's Ctrl+Z (xdotool) must remove the result in one step.  No PDB procedure undoes, so this needs the
# GUI.  usage: undo_test.sh ROOT WORKDIR   (WORKDIR prepared by run_gimp_tests.sh: plug-in, daemon, input.png)
set -u
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$1; WORK=$2
rm -f "$WORK/undo-state" "$WORK/undo-result.txt"
cp "$here/undo_batch.py" "$WORK/tests/"
drive() {
  for _ in $(seq 1 600); do [ -s "$WORK/undo-state" ] || [ -s "$WORK/undo-result.txt" ] && break; sleep 0.1; done
  if [ -s "$WORK/undo-state" ]; then
    main=$(xdotool search --onlyvisible --name " GIMP$" | head -1)
    sleep 1
    xdotool windowfocus --sync "$main" key --clearmodifiers ctrl+z
  fi
  for _ in $(seq 1 400); do [ -s "$WORK/undo-result.txt" ] && break; sleep 0.1; done
  cat "$WORK/undo-result.txt" 2>/dev/null || echo "FAIL no verdict (GIMP log: $WORK/gimp-gui.log)"
  grep -q "^OK" "$WORK/undo-result.txt" 2>/dev/null
}
export WORK
export -f drive
GIMP_ENV="IMPASTO_RUNTIME_DIR=/job/run" timeout 180 "$here/gimp_gui.sh" "$ROOT" "$WORK" tests/undo_batch.py bash -c drive
