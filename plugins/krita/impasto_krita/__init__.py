"""Impasto for Krita: neural style transfer from a docker, against the local ``impasto serve`` daemon.

Krita loads this package as the Python plugin ``impasto`` (see ../impasto.desktop).  The vendored folder (pyzmq for
Krita's Python, the ``impasto_protocol`` client) is put on ``sys.path`` first.  Registration happens only inside
Krita, and not when ``IMPASTO_KRITA_NO_REGISTER`` is set (tests import the modules directly).
"""
import importlib.util
import os

from . import deps

deps.add_vendor_path()

if importlib.util.find_spec("krita") is not None and not os.environ.get("IMPASTO_KRITA_NO_REGISTER"):
    try:
        import krita as _krita
        _real = not getattr(_krita, "IS_FAKE", False)
    except ImportError:  # pragma: no cover
        _real = False
    if _real:
        from .extension import register
        register()
