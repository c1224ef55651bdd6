"""Pixels between GIMP's Gegl buffers and Impasto's wire images.  Plain Python (no GIMP, no numpy).

The plug-in reads the drawable through babl as gamma-encoded RGBA ("R'G'B'A u8", or "R'G'B'A u16" for 16/32-bit
images, so high-bit-depth work keeps 16 bits on the wire) and writes the result back in the same format; babl
converts to and from the image's own precision, grey and linear-light storage.  The selection is read as "Y u8"
and becomes the new layer's alpha (multiplied into whatever alpha the result has).
"""
from __future__ import annotations

from impasto_plugin.geometry import Rect  # noqa: F401 - the plugin's rectangles are the core's
from impasto_protocol.images import ImageBuffer
from impasto_protocol.pixels import (PixelError, apply_mask, buffer_to_rgba, check_len,  # noqa: F401
                                     convert_depth, is_full_mask, swap_rb)

# GIMP precision (the enum's value name) -> (babl format, wire dtype, bytes per channel)
U8 = ("R'G'B'A u8", "u8", 1)
U16 = ("R'G'B'A u16", "u16", 2)


def wire_format(precision_name: str) -> tuple[str, str, int]:
    """Babl format, wire dtype and item size for a GIMP precision such as ``GIMP_PRECISION_U8_NON_LINEAR``:
    8-bit images travel as u8, everything deeper (16/32-bit integer, half and float) as u16."""
    name = precision_name.upper()
    if "U8" in name:
        return U8
    if any(t in name for t in ("U16", "U32", "HALF", "FLOAT", "DOUBLE")):
        return U16
    raise PixelError(f"unknown image precision {precision_name!r}")


def rgba_buffer(data: bytes, width: int, height: int, dtype: str) -> ImageBuffer:
    """Wrap tight RGBA bytes read from GIMP as a wire image (no copy)."""
    size = {"u8": 1, "u16": 2}[dtype]
    check_len(data, width * height * 4 * size, f"{width}x{height} RGBA {dtype} pixels")
    return ImageBuffer(width, height, 4, dtype, data)



