"""The MT styles the daemon can offer (shipped and user-trained), as the protocol describes them.

The catalogue itself belongs to ``impasto.engines.mt.styles``; this module only adapts it to the wire
(name, title, artist, year, PNG thumbnail bytes) and survives its absence (no MT installed: no styles).
"""
from __future__ import annotations

import importlib
import io
import logging
from typing import Any, Optional

log = logging.getLogger(__name__)
STYLES_MODULE = "impasto.engines.mt.styles"


def _catalogue() -> Optional[list[Any]]:
    try:
        mod = importlib.import_module(STYLES_MODULE)
    except ImportError:
        return None
    for fn_name in ("list_styles", "available_styles", "installed_styles"):
        fn = getattr(mod, fn_name, None)
        if callable(fn):
            try:
                return list(fn())
            except Exception:  # noqa: BLE001 - a broken style file must not take the daemon down
                log.exception("listing MT styles failed")
                return []
    return None


def _field(s: Any, name: str) -> Any:
    if isinstance(s, dict):
        return s.get(name)
    v = getattr(s, name, None)
    meta = getattr(s, "metadata", None)          # impasto.engines.mt.styles.StyleInfo keeps details here
    if (v is None or v == "") and meta is not None:
        v = getattr(meta, name, None)
    return v


def _usable(s: Any) -> bool:
    return isinstance(s, (str, dict)) or getattr(s, "ok", True)


def _thumbnail(s: Any) -> Optional[bytes]:
    t = _field(s, "thumbnail")
    if not t:
        t = _field(s, "thumbnail_png") or None
    if t is None:
        return None
    if isinstance(t, (bytes, bytearray)):
        return bytes(t)
    try:   # a path or a PIL image
        from PIL import Image
        im = t if hasattr(t, "save") else Image.open(t)
        im = im.convert("RGB")
        im.thumbnail((256, 256))
        buf = io.BytesIO()
        im.save(buf, "PNG")
        return buf.getvalue()
    except Exception:  # noqa: BLE001
        return None


def list_styles() -> list[dict]:
    out = []
    for s in _catalogue() or []:
        name = s if isinstance(s, str) else _field(s, "name")
        if not name or not _usable(s):
            continue
        if isinstance(s, str):
            out.append({"name": name, "title": name, "artist": None, "year": None, "thumbnail": None})
            continue
        year = _field(s, "year")
        out.append({"name": str(name), "title": str(_field(s, "title") or name),
                    "artist": _field(s, "artist") or None,
                    "year": year if isinstance(year, (int, str)) and year != "" else None,
                    "thumbnail": _thumbnail(s)})
    return out


def style_names() -> list[str]:
    return [s if isinstance(s, str) else str(_field(s, "name")) for s in (_catalogue() or []) if _usable(s)]


def style_names_or_none() -> Optional[list[str]]:
    """Installed names, or None when there is no catalogue to check against (the engine then decides)."""
    cat = _catalogue()
    if cat is None:
        return None
    return [s if isinstance(s, str) else str(_field(s, "name")) for s in cat if _usable(s)]


def shipped_style_names() -> list[str]:
    """Names of the styles shipped with Impasto (not the user's trained ones): training must not silently shadow
    them for every client."""
    try:
        mod = importlib.import_module(STYLES_MODULE)
        return sorted(p.stem for p in mod.shipped_styles_dir().glob(f"*{mod.SUFFIX}"))
    except Exception:  # noqa: BLE001 - no MT installed, or an unreadable folder: nothing to protect
        return []
