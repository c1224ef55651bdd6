"""Shared setup for tests/test_krita_*.py: import the Krita plugin package from plugins/krita with the fake Krita."""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "krita"
os.environ.setdefault("IMPASTO_KRITA_NO_REGISTER", "1")
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))

from krita_fake import krita as fake_krita  # noqa: E402


def install_fake(monkeypatch):
    """Make ``import krita`` give the fake, with a fresh application object."""
    monkeypatch.setitem(sys.modules, "krita", fake_krita)
    return fake_krita.Krita.reset()
