"""Where the installed plug-in keeps its files: the plug-in folder, ``vendor/`` (pyzmq for GIMP's Python, the
``impasto_protocol`` client and the ``impasto_plugin`` core, put there by ``impasto install-plugin gimp``), the
install record and the last style list the daemon gave."""
from __future__ import annotations

import os
import sys

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR = os.path.join(PLUGIN_DIR, "vendor")
INSTALL_INFO = os.path.join(PLUGIN_DIR, "install.json")
STYLES_CACHE = os.path.join(PLUGIN_DIR, "styles.json")       # the last style list the daemon gave


def add_vendor_path() -> None:
    if os.path.isdir(VENDOR) and VENDOR not in sys.path:
        sys.path.insert(0, VENDOR)
