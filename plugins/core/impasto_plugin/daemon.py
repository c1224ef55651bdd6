"""How a plugin starts the daemon when none answers."""
from __future__ import annotations

import json
import os
from typing import Optional


def serve_command(install_info: str) -> Optional[list[str]]:
    """The command that starts the daemon: None when ``$IMPASTO_SERVE_COMMAND`` is set (the client reads the variable
    itself) or nothing usable was recorded, else the ``serve_command`` ``impasto install-plugin`` wrote into
    ``install_info`` (the plugin's ``install.json``); with None the client runs ``impasto serve`` from PATH."""
    if os.environ.get("IMPASTO_SERVE_COMMAND"):
        return None
    try:
        with open(install_info) as f:
            cmd = json.load(f).get("serve_command")
        if isinstance(cmd, list) and cmd and all(isinstance(c, str) for c in cmd):
            return cmd
    except (OSError, ValueError):
        pass
    return None
