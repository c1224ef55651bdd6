"""Impasto's wire protocol and client: stdlib + pyzmq only, importable by the backend and by the editor plugins.

See PROTOCOL.md beside this package for the message catalogue.
"""
from .options import KeypointPair, OptionsError, StylizeOptions

__all__ = ["KeypointPair", "OptionsError", "StylizeOptions"]
