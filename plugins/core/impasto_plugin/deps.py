"""Can the plugin talk to the daemon from the editor's Python?  pyzmq is a compiled module that must match the
editor's own Python; ``impasto install-plugin <editor>`` vendors it with the ``impasto_protocol`` client.  When it is
missing, say exactly what to run."""
from __future__ import annotations

import sys
from typing import Optional

EDITORS = {"krita": "Krita", "gimp": "GIMP"}


def python_tag() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def zmq_problem(editor: str) -> Optional[str]:
    """None when pyzmq and the Impasto client import; else a message telling the artist what to run.
    ``editor``: ``"krita"`` or ``"gimp"``."""
    try:
        import zmq  # noqa: F401
        import impasto_protocol.client  # noqa: F401
    except ImportError as e:
        title = EDITORS[editor]
        return (f"Impasto cannot load pyzmq in {title}'s Python {python_tag()} ({e}). In a terminal, run:\n"
                f"    impasto install-plugin {editor} --python-version {python_tag()}\n"
                f"then restart {title}.")
    return None
