"""Shared setup for tests/test_krita_*.py: import the Krita plugin package from plugins/krita with the fake Krita."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "krita"
CORE_DIR = ROOT / "plugins" / "core"           # impasto_plugin: install-plugin vendors it, tests take it from here
os.environ.setdefault("IMPASTO_KRITA_NO_REGISTER", "1")
for _d in (CORE_DIR, PLUGIN_DIR):
    if str(_d) not in sys.path:
        sys.path.insert(0, str(_d))

from krita_fake import krita as fake_krita  # noqa: E402


def install_fake(monkeypatch):
    """Make ``import krita`` give the fake, with a fresh application object."""
    monkeypatch.setitem(sys.modules, "krita", fake_krita)
    return fake_krita.Krita.reset()
