#!/bin/bash
# Run GIMP 3 headless (gimp-console-3.0, no display) inside the chroot, with WORKDIR bind-mounted at /job.
# usage: gimp_run.sh ROOT WORKDIR PYFILE_RELATIVE_TO_WORKDIR [VAR=VAL ...]
#   Executes /job/PYFILE through the python-fu-eval batch interpreter.  Exit code: 0 ok, 64 if the code raised.
#   GIMP's profile is $WORKDIR/gimpcfg (its plug-ins: $WORKDIR/gimpcfg/plug-ins/NAME/NAME.py, executable).
#   Only /job is mounted (in a private mount namespace, gone when GIMP exits): a daemon's ipc socket in WORKDIR is
#   reachable from inside through it; the network namespace is the host's, so a daemon started with --tcp on
#   127.0.0.1 outside the chroot is reachable too.
set -euo pipefail
ROOT=$1; WORK=$(realpath "$2"); PYFILE=$3; shift 3
exec unshare -m bash -c '
  mount --bind "$1" "$2/job" && exec chroot "$2" env -i HOME=/root LANG=C.UTF-8 PATH=/usr/bin:/bin \
     GIMP3_DIRECTORY=/job/gimpcfg "${@:4}" \
     timeout "${GIMP_TIMEOUT:-600}" gimp-console-3.0 -i --batch-interpreter=python-fu-eval \
       -b "exec(open(\"/job/$3\").read())" --quit' _ "$WORK" "$ROOT" "$PYFILE" "$@"
