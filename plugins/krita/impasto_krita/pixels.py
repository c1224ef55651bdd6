"""Pixel conversions between Krita's layouts and Impasto's wire images.  Plain Python (no Krita, no numpy).

Krita's integer RGBA (U8, U16) is stored B, G, R, A; float RGBA (F16, F32) is R, G, B, A; 16-bit values are native
(little-endian) unsigned shorts.  Before reading, the plugin converts a *duplicate* of the layer to 8- or 16-bit sRGB
RGBA (``wire_depth``), so only U8/U16 BGRA reaches this module.  The wire carries it as-is with ``bgr=True``; results
come back RGBA and are swizzled to BGRA for ``setPixelData``.
"""
from __future__ import annotations

import operator
from array import array
from dataclasses import dataclass
from itertools import repeat

from impasto_protocol.images import ImageBuffer

ITEMSIZE = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}
WIRE_DTYPE = {"U8": "u8", "U16": "u16"}
SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"       # Krita's bundled sRGB (gamma-encoded) profile, any depth


class PixelError(ValueError):
    """Pixel data does not have the size or layout we expected."""


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)

    def intersect(self, other: "Rect") -> "Rect":
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


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


def _check_len(data, n: int, what: str) -> None:
    if len(data) != n:
        raise PixelError(f"{what}: got {len(data)} bytes, expected {n}")


def krita_to_buffer(data: bytes, width: int, height: int, depth: str) -> ImageBuffer:
    """Wrap Krita BGRA bytes (U8/U16) as a wire image without copying or swizzling (``bgr=True``)."""
    if depth not in WIRE_DTYPE:
        raise PixelError(f"only U8/U16 travel on the wire, got {depth}")
    _check_len(data, width * height * 4 * ITEMSIZE[depth], f"{width}x{height} {depth} BGRA layer")
    return ImageBuffer(width, height, 4, WIRE_DTYPE[depth], data, bgr=True)


def swap_rb(data, itemsize: int) -> bytearray:
    """Swap the first and third channel of interleaved 4-channel pixels (RGBA <-> BGRA)."""
    if itemsize == 1:
        out = bytearray(data)
        out[0::4] = data[2::4]
        out[2::4] = data[0::4]
        return out
    code = {2: "H", 4: "f"}[itemsize]
    src = array(code)
    src.frombytes(bytes(data))
    out = array(code, src)
    out[0::4] = src[2::4]
    out[2::4] = src[0::4]
    return bytearray(out.tobytes())


def buffer_to_rgba(img: ImageBuffer) -> bytearray:
    """Any 3/4-channel u8/u16 wire image as tight RGBA bytes of the same dtype (opaque alpha added to RGB)."""
    if img.dtype not in ("u8", "u16"):
        raise PixelError(f"results must be u8 or u16, got {img.dtype}")
    if img.channels not in (3, 4):
        raise PixelError(f"results must be RGB or RGBA, got {img.channels} channels")
    data = bytes(img.tight_bytes())
    size = img.itemsize
    if img.channels == 3:
        code = "B" if size == 1 else "H"
        src = array(code)
        src.frombytes(data)
        out = array(code, bytes(img.width * img.height * 4 * size))
        out[0::4], out[1::4], out[2::4] = src[0::3], src[1::3], src[2::3]
        out[3::4] = array(code, repeat(255 if size == 1 else 65535, img.width * img.height))
        rgba = bytearray(out.tobytes())
    else:
        rgba = bytearray(data)
    return swap_rb(rgba, size) if img.bgr else rgba


def rgba_to_krita(rgba, itemsize: int) -> bytearray:
    """RGBA bytes to Krita's integer BGRA."""
    return swap_rb(rgba, itemsize)


def convert_depth(rgba, src_size: int, dst_size: int) -> bytes:
    """u8 <-> u16 RGBA (exact for u8 -> u16 -> u8; u16 -> u8 rounds)."""
    if src_size == dst_size:
        return bytes(rgba)
    if src_size == 1 and dst_size == 2:
        return array("H", map(operator.mul, rgba, repeat(257))).tobytes()
    src = array("H")
    src.frombytes(bytes(rgba))
    return bytes(map(operator.floordiv, map(operator.add, src, repeat(128)), repeat(257)))


def apply_mask(rgba, mask: bytes, itemsize: int) -> bytearray:
    """Multiply the alpha of RGBA pixels by an 8-bit selection mask (0 = outside, 255 = fully selected).

    Feathered (partial) selection values scale alpha proportionally; everything runs in C-level ``map`` calls."""
    n = len(mask)
    _check_len(rgba, n * 4 * itemsize, "masked image")
    out = bytearray(rgba)
    if is_full_mask(mask):
        return out
    if itemsize == 1:
        alpha = out[3::4]
        out[3::4] = bytes(map(operator.floordiv, map(operator.add, map(operator.mul, alpha, mask), repeat(127)),
                              repeat(255)))
        return out
    px = array("H")
    px.frombytes(bytes(out))
    px[3::4] = array("H", map(operator.floordiv, map(operator.add, map(operator.mul, px[3::4], mask), repeat(127)),
                              repeat(255)))
    return bytearray(px.tobytes())


def mask_buffer(mask: bytes, width: int, height: int) -> ImageBuffer:
    _check_len(mask, width * height, f"{width}x{height} selection mask")
    return ImageBuffer(width, height, 1, "u8", mask)


def is_full_mask(mask: bytes) -> bool:
    return not mask or min(mask) == 255


def unmix_partial(result, content, mask: bytes, itemsize: int) -> bytearray:
    """Undo the daemon's blend where the selection is partial (feathered edges).

    The daemon returns ``B = m*S + (1-m)*C`` (stylized S where the mask m is 1, the content C where it is 0).  The
    plugin puts the result in a layer *over* the content with alpha ``m``, so the colour it needs is S itself:
    ``S = (B - (1-m)*C) / m``.  Only pixels with 0 < m < 255 are touched (found with C-level searches), so hard-edged
    selections cost nothing."""
    import re
    out = bytearray(result)
    marks = bytes(mask).translate(_PARTIAL)
    if b"\x01" not in marks:
        return out
    code = "B" if itemsize == 1 else "H"
    top = 255 if itemsize == 1 else 65535
    res = array(code)
    res.frombytes(bytes(result))
    con = array(code)
    con.frombytes(bytes(content))
    for run in re.finditer(b"\x01+", marks):
        for i in range(run.start(), run.end()):
            m = mask[i] / 255.0
            for c in range(4 * i, 4 * i + 3):
                v = (res[c] - (1.0 - m) * con[c]) / m
                res[c] = 0 if v < 0 else top if v > top else int(v + 0.5)
    return bytearray(res.tobytes())


_PARTIAL = bytes([0] + [1] * 254 + [0])
