#!/bin/bash
# Build (once) a Debian 13 "trixie" chroot with GIMP 3.0 + Python 3.13 + pytest, without touching the host's apt
# setup, and cache it as a tarball so later CI runs only unpack it (about 2 s instead of about 75 s).
#
# usage: tests/editors/setup_gimp3_chroot.sh [ROOT]
#   ROOT   default: $IMPASTO_CI_CACHE/gimp3-trixie   (IMPASTO_CI_CACHE default: ~/.cache/impasto-ci)
#   Idempotent: returns at once when ROOT/.ready exists; else unpacks $IMPASTO_CI_CACHE/gimp3-trixie.tar.zst when
#   present; else builds with debootstrap (needs root and the Debian mirror this machine's apt uses; MIRROR= overrides)
#   and writes the tarball.  Prints the chroot path as its last line.
set -euo pipefail
CACHE=${IMPASTO_CI_CACHE:-$HOME/.cache/impasto-ci}
ROOT=${1:-$CACHE/gimp3-trixie}
TARBALL=${GIMP3_TARBALL:-$CACHE/gimp3-trixie.tar.zst}
PACKAGES="gimp python3 python3-pytest"
log() { echo "setup_gimp3_chroot: $*" >&2; }

if [ -f "$ROOT/.ready" ]; then log "cached at $ROOT"; echo "$ROOT"; exit 0; fi
[ "$(id -u)" = 0 ] || { log "needs root (debootstrap, chroot, unshare)"; exit 1; }
mkdir -p "$(dirname "$ROOT")" "$(dirname "$TARBALL")"
TMP="$ROOT.partial"; rm -rf "$TMP"

if [ -f "$TARBALL" ]; then
  log "unpacking $TARBALL"
  mkdir -p "$TMP"
  if tar -I 'zstd -T2' -xf "$TARBALL" -C "$TMP" && [ -f "$TMP/.ready" ]; then
    rm -rf "$ROOT"; mv "$TMP" "$ROOT"; log "ready at $ROOT"; echo "$ROOT"; exit 0
  fi
  log "the tarball is unusable; rebuilding"; rm -rf "$TMP" "$TARBALL"
fi

MIRROR=${MIRROR:-$(sed -n "s/^URIs: *//p" /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)}
[ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$MIRROR" ] || { log "no Debian mirror found in the apt sources; set MIRROR"; exit 1; }
command -v debootstrap >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
command -v zstd >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd >/dev/null

LOG="$TMP.log"
log "debootstrap trixie from $MIRROR (about 75 s; log $LOG)"
debootstrap --variant=minbase trixie "$TMP" "$MIRROR" >"$LOG" 2>&1 || { tail -20 "$LOG" >&2; exit 1; }
# A private mount namespace: /proc vanishes when the command ends (no umount bookkeeping).
unshare -m sh -c "
  mount -t proc proc '$TMP/proc' &&
  chroot '$TMP' apt-get update -qq &&
  chroot '$TMP' env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $PACKAGES &&
  chroot '$TMP' apt-get clean" >>"$LOG" 2>&1 || { tail -20 "$LOG" >&2; exit 1; }
rm -rf "$TMP"/var/lib/apt/lists/*
mkdir -p "$TMP/job" "$TMP/tmp/.X11-unix"
chroot "$TMP" gimp-console-3.0 --version >&2
chroot "$TMP" python3 -c 'import sys, pytest, gi; print("python", sys.version.split()[0], "pytest", pytest.__version__)' >&2
touch "$TMP/.ready"
tar -I 'zstd -T2 -3' -cf "$TARBALL.partial" -C "$TMP" . && mv "$TARBALL.partial" "$TARBALL"
rm -rf "$ROOT"; mv "$TMP" "$ROOT"; rm -f "$LOG"
log "ready at $ROOT ($(du -sxm "$ROOT" | cut -f1) MB; tarball $(du -m "$TARBALL" | cut -f1) MB)"
echo "$ROOT"
