"""The MT styles the daemon offers (shipped and user-trained), as the protocol describes them.

The catalogue is ``impasto.engines.mt.styles`` (an unreadable model file is listed there with its error, and left
out here); this module only turns each readable ``StyleInfo`` into the wire's name, title, artist, year and PNG
thumbnail bytes.
"""
from __future__ import annotations

from ..engines.mt import styles as catalogue


def _wire(info: catalogue.StyleInfo) -> dict:
    meta = info.metadata
    assert meta is not None
    return {"name": info.name, "title": meta.title or info.name, "artist": meta.artist or None,
            "year": meta.year if meta.year != "" else None, "thumbnail": meta.thumbnail_png or None}


def list_styles() -> list[dict]:
    return [_wire(s) for s in catalogue.list_styles() if s.ok]


def style_names() -> list[str]:
    return [s.name for s in catalogue.list_styles() if s.ok]


def shipped_style_names() -> list[str]:
    """Names of the styles shipped with Impasto (not the user's trained ones): training must not silently shadow
    them for every client."""
    return sorted(p.stem for p in catalogue.shipped_styles_dir().glob(f"*{catalogue.SUFFIX}"))
