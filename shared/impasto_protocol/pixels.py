"""Pixel-buffer operations both editor plugins need: channel order, bit depth, selection masks.

Stdlib only (``array``), no numpy: this runs inside Krita's and GIMP's own Pythons, vendored with the client.
Buffers are tight interleaved RGBA (or BGRA) bytes, 1 byte (u8) or 2 bytes (u16) per channel.
"""
from __future__ import annotations

import operator
from array import array
from itertools import repeat

from .images import ImageBuffer


class PixelError(ValueError):
    """Pixel data does not have the size or layout we expected."""


def check_len(data, n: int, what: str) -> None:
    if len(data) != n:
        raise PixelError(f"{what}: got {len(data)} bytes, expected {n}")


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
    """True when there is no mask or every pixel is fully selected."""
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
