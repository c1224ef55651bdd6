"""Pixels between GIMP's Gegl buffers and Impasto's wire images.  Plain Python (no GIMP, no numpy).

The plug-in reads the drawable through babl as gamma-encoded RGBA ("R'G'B'A u8", or "R'G'B'A u16" for 16/32-bit
images, so high-bit-depth work keeps 16 bits on the wire) and writes the result back in the same format; babl
converts to and from the image's own precision, grey and linear-light storage.  The selection is read as "Y u8"
and becomes the new layer's alpha (multiplied into whatever alpha the result has).
"""
from __future__ import annotations

import operator
from array import array
from dataclasses import dataclass
from itertools import repeat

from impasto_protocol.images import ImageBuffer

# GIMP precision (the enum's value name) -> (babl format, wire dtype, bytes per channel)
U8 = ("R'G'B'A u8", "u8", 1)
U16 = ("R'G'B'A u16", "u16", 2)


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

    def moved(self, dx: int, dy: int) -> "Rect":
        return Rect(self.x + dx, self.y + dy, self.width, self.height)

    def intersect(self, other: "Rect") -> "Rect":
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def wire_format(precision_name: str) -> tuple[str, str, int]:
    """Babl format, wire dtype and item size for a GIMP precision such as ``GIMP_PRECISION_U8_NON_LINEAR``:
    8-bit images travel as u8, everything deeper (16/32-bit integer, half and float) as u16."""
    name = precision_name.upper()
    if "U8" in name:
        return U8
    if any(t in name for t in ("U16", "U32", "HALF", "FLOAT", "DOUBLE")):
        return U16
    raise PixelError(f"unknown image precision {precision_name!r}")


def check_len(data, n: int, what: str) -> None:
    if len(data) != n:
        raise PixelError(f"{what}: got {len(data)} bytes, expected {n}")


def rgba_buffer(data: bytes, width: int, height: int, dtype: str) -> ImageBuffer:
    """Wrap tight RGBA bytes read from GIMP as a wire image (no copy)."""
    size = {"u8": 1, "u16": 2}[dtype]
    check_len(data, width * height * 4 * size, f"{width}x{height} RGBA {dtype} pixels")
    return ImageBuffer(width, height, 4, dtype, data)


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


def swap_rb(data, itemsize: int) -> bytearray:
    """Swap the first and third channel of interleaved 4-channel pixels (BGRA -> RGBA)."""
    if itemsize == 1:
        out = bytearray(data)
        out[0::4] = data[2::4]
        out[2::4] = data[0::4]
        return out
    src = array("H")
    src.frombytes(bytes(data))
    out16 = array("H", src)
    out16[0::4] = src[2::4]
    out16[2::4] = src[0::4]
    return bytearray(out16.tobytes())


def convert_depth(rgba, src_size: int, dst_size: int) -> bytes:
    """u8 <-> u16 RGBA (exact for u8 -> u16 -> u8; u16 -> u8 rounds)."""
    if src_size == dst_size:
        return bytes(rgba)
    if src_size == 1 and dst_size == 2:
        return array("H", map(operator.mul, rgba, repeat(257))).tobytes()
    src = array("H")
    src.frombytes(bytes(rgba))
    return bytes(map(operator.floordiv, map(operator.add, src, repeat(128)), repeat(257)))


def is_full_mask(mask: bytes | None) -> bool:
    return not mask or min(mask) == 255


def apply_mask(rgba, mask: bytes, itemsize: int) -> bytearray:
    """Multiply the alpha of RGBA pixels by an 8-bit selection mask (0 = outside, 255 = fully selected).

    Feathered (partial) selection values scale alpha proportionally; everything runs in C-level ``map`` calls."""
    n = len(mask)
    check_len(rgba, n * 4 * itemsize, "masked image")
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

