"""How errors and logs show a value a peer sent: ``repr`` (one line, control characters escaped), cut short.

Stdlib only (imported by the wire format, the options and the image descriptions, inside the editors too).
"""
from __future__ import annotations

from typing import Any


def quote(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, saying how much was left out.  A huge string is cut
    before ``repr`` is built, so quoting costs nothing however large the value."""
    if isinstance(value, (str, bytes)) and len(value) > 4 * limit:
        value = value[:4 * limit]
    r = repr(value)
    if len(r) > limit:
        r = f"{r[:limit]}...({len(r) - limit} more)"
    return r
