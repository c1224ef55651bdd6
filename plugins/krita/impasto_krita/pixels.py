"""Pixel conversions between Krita's layouts and Impasto's wire images.  Plain Python (no Krita, no numpy).

Krita's integer RGBA (U8, U16) is stored B, G, R, A; float RGBA (F16, F32) is R, G, B, A; 16-bit values are native
(little-endian) unsigned shorts.  Before reading, the plugin converts a *duplicate* of the layer to 8- or 16-bit sRGB
RGBA (``wire_depth``), so only U8/U16 BGRA reaches this module.  The wire carries it as-is with ``bgr=True``; results
come back RGBA and are swizzled to BGRA for ``setPixelData``.
"""
from __future__ import annotations

from impasto_plugin.geometry import Rect  # noqa: F401 - the plugin's rectangles are the core's
from impasto_protocol.images import ImageBuffer
from impasto_protocol.pixels import PixelError, apply_mask, buffer_to_rgba, convert_depth, swap_rb  # noqa: F401
from impasto_protocol.pixels import check_len as _check_len

ITEMSIZE = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}
WIRE_DTYPE = {"U8": "u8", "U16": "u16"}
SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"       # Krita's bundled sRGB (gamma-encoded) profile, any depth


def wire_depth(color_model: str, color_depth: str) -> str:
    """The Krita depth the layer is converted to before sending: U8 stays U8, everything deeper travels as U16.

    Colour models other than RGBA (GRAYA, CMYKA, LABA, XYZA, YCbCrA) are converted to RGBA at this depth."""
    if color_depth not in ITEMSIZE:
        raise PixelError(f"unknown colour depth {color_depth!r}")
    return "U8" if color_depth == "U8" else "U16"


def needs_conversion(color_model: str, color_depth: str, profile: str) -> bool:
    """False when the layer already is 8/16-bit RGBA sRGB and can be read as it is."""
    return not (color_model == "RGBA" and color_depth in ("U8", "U16") and "srgb" in profile.lower()
                and "g10" not in profile.lower() and "linear" not in profile.lower())


def krita_to_buffer(data: bytes, width: int, height: int, depth: str) -> ImageBuffer:
    """Wrap Krita BGRA bytes (U8/U16) as a wire image without copying or swizzling (``bgr=True``)."""
    if depth not in WIRE_DTYPE:
        raise PixelError(f"only U8/U16 travel on the wire, got {depth}")
    _check_len(data, width * height * 4 * ITEMSIZE[depth], f"{width}x{height} {depth} BGRA layer")
    return ImageBuffer(width, height, 4, WIRE_DTYPE[depth], data, bgr=True)


def rgba_to_krita(rgba, itemsize: int) -> bytearray:
    """RGBA bytes to Krita's integer BGRA."""
    return swap_rb(rgba, itemsize)


def mask_buffer(mask: bytes, width: int, height: int) -> ImageBuffer:
    _check_len(mask, width * height, f"{width}x{height} selection mask")
    return ImageBuffer(width, height, 1, "u8", mask)
