"""Can the plug-in talk to the daemon from GIMP's Python?  pyzmq is a compiled module that must match GIMP's own
Python (3.13 in Debian 13's GIMP 3.0); ``impasto install-plugin gimp`` vendors it with the ``impasto_protocol``
client into ``vendor/`` beside the plug-in.  When it is missing, say exactly what to run."""
from __future__ import annotations

import os
import sys
from typing import Optional

PLUGIN_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENDOR = os.path.join(PLUGIN_DIR, "vendor")
INSTALL_INFO = os.path.join(PLUGIN_DIR, "install.json")
STYLES_CACHE = os.path.join(PLUGIN_DIR, "styles.json")       # the last style list the daemon gave


def add_vendor_path() -> None:
    if os.path.isdir(VENDOR) and VENDOR not in sys.path:
        sys.path.insert(0, VENDOR)


def python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def zmq_problem() -> Optional[str]:
    """None when pyzmq and the Impasto client import; else a message telling the artist what to run."""
    try:
        import zmq  # noqa: F401
        import impasto_protocol.client  # noqa: F401
    except ImportError as e:
        return (f"Impasto cannot load pyzmq in GIMP's Python {python_tag()} ({e}). In a terminal, run:\n"
                f"    impasto install-plugin gimp --python-version {python_tag()}\n"
                "then restart GIMP.")
    return None
