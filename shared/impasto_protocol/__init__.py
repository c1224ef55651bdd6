"""Impasto's wire protocol and client: stdlib + pyzmq only, importable by the backend and by the editor plugins.

See PROTOCOL.md beside this package for the message catalogue.  ``images`` and ``options`` need only the stdlib;
``client`` (which needs pyzmq) is imported on demand: ``from impasto_protocol.client import Client``.
"""
from .images import ImageBuffer, ImageBufferError
from .options import KeypointPair, OptionsError, StylizeOptions

__all__ = ["ImageBuffer", "ImageBufferError", "KeypointPair", "OptionsError", "StylizeOptions"]
