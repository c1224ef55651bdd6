"""Impasto for Krita: neural style transfer from a docker, against the local ``impasto serve`` daemon.

Krita loads this package as the Python plugin ``impasto`` (see ../impasto.desktop).  The vendored folder (pyzmq for
Krita's Python, the ``impasto_protocol`` client and the ``impasto_plugin`` core) is put on ``sys.path`` first.  Registration happens only inside
Krita, and not when ``IMPASTO_KRITA_NO_REGISTER`` is set (tests import the modules directly).
"""
import importlib.util
import os
import sys

VENDOR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor")
if os.path.isdir(VENDOR) and VENDOR not in sys.path:
    sys.path.insert(0, VENDOR)

if importlib.util.find_spec("krita") is not None and not os.environ.get("IMPASTO_KRITA_NO_REGISTER"):
    try:
        import krita as _krita
        _real = not getattr(_krita, "IS_FAKE", False)
    except ImportError:  # pragma: no cover
        _real = False
    if _real:
        from .extension import register
        register()
