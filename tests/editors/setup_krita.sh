#!/bin/bash
# Install Krita 5.1.5 (Debian 12 package) + PyQt5 + Xvfb + pytest for Krita's own Python.  Idempotent: returns at
# once when everything is installed.  Needs root and the Debian package registry.
set -euo pipefail
pkgs="krita python3-pyqt5 xvfb xauth python3-pytest"
if ! dpkg -s $pkgs >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq $pkgs >/dev/null
fi
QT_QPA_PLATFORM=offscreen kritarunner --version 2>/dev/null | grep -i krita
