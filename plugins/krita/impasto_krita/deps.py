"""Can the plugin talk to the daemon from inside this Krita?  pyzmq is a compiled module that must match Krita's own
Python; ``impasto install-plugin krita`` vendors it.  When it is missing, say exactly what to run."""
from __future__ import annotations

import os
import sys
from typing import Optional

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")


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
        return (f"The Impasto plugin cannot load pyzmq in Krita's Python {python_tag()} ({e}). In a terminal, run:\n"
                f"    impasto install-plugin krita --python-version {python_tag()}\n"
                "then restart Krita.")
    return None
