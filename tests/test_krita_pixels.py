"""Krita plugin: pixel conversion, masks and feathering, without Krita."""
import struct

import pytest
from krita_plugin_support import PLUGIN_DIR  # noqa: F401

from impasto_krita import pixels
from impasto_protocol.images import ImageBuffer


def test_swap_rb_u8_and_u16_roundtrip():
    bgra = bytes([1, 2, 3, 4, 10, 20, 30, 40])
    assert bytes(pixels.swap_rb(bgra, 1)) == bytes([3, 2, 1, 4, 30, 20, 10, 40])
    assert bytes(pixels.swap_rb(pixels.swap_rb(bgra, 1), 1)) == bgra
    b16 = struct.pack("<8H", 1, 2, 3, 4, 1000, 2000, 65535, 0)
    assert struct.unpack("<8H", bytes(pixels.swap_rb(b16, 2))) == (3, 2, 1, 4, 65535, 2000, 1000, 0)


def test_krita_bytes_travel_as_bgr_without_copy():
    data = bytes(range(2 * 3 * 4))
    buf = pixels.krita_to_buffer(data, 2, 3, "U8")
    assert (buf.width, buf.height, buf.channels, buf.dtype, buf.bgr) == (2, 3, 4, "u8", True)
    assert buf.data is data
    buf.validate()
    with pytest.raises(pixels.PixelError, match="expected 24"):
        pixels.krita_to_buffer(data[:-1], 2, 3, "U8")
    b16 = pixels.krita_to_buffer(bytes(2 * 2 * 8), 2, 2, "U16")
    assert b16.dtype == "u16" and b16.nbytes == 32


def test_buffer_to_rgba_handles_bgr_rgb_and_padding():
    bgr = ImageBuffer(1, 1, 4, "u8", bytes([10, 20, 30, 255]), bgr=True)
    assert bytes(pixels.buffer_to_rgba(bgr)) == bytes([30, 20, 10, 255])
    rgb = ImageBuffer(2, 1, 3, "u8", bytes([1, 2, 3, 4, 5, 6]))
    assert bytes(pixels.buffer_to_rgba(rgb)) == bytes([1, 2, 3, 255, 4, 5, 6, 255])
    rgb16 = ImageBuffer(1, 1, 3, "u16", struct.pack("<3H", 7, 8, 9))
    assert struct.unpack("<4H", bytes(pixels.buffer_to_rgba(rgb16))) == (7, 8, 9, 65535)
    padded = ImageBuffer(1, 2, 4, "u8", bytes([1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0]), stride=6)
    assert bytes(pixels.buffer_to_rgba(padded)) == bytes([1, 2, 3, 4, 5, 6, 7, 8])
    with pytest.raises(pixels.PixelError):
        pixels.buffer_to_rgba(ImageBuffer(1, 1, 4, "f32", bytes(16)))


def test_depth_conversion_is_exact_8_to_16_and_back():
    src = bytes(range(256))
    up = pixels.convert_depth(src, 1, 2)
    assert struct.unpack("<256H", up)[255] == 65535 and struct.unpack("<256H", up)[1] == 257
    assert pixels.convert_depth(up, 2, 1) == src


def test_apply_mask_scales_alpha_including_feathering():
    rgba = bytes([10, 20, 30, 255] * 4)
    out = pixels.apply_mask(rgba, bytes([0, 255, 128, 64]), 1)
    assert list(out[3::4]) == [0, 255, 128, 64]
    assert out[0:3] == rgba[0:3]                        # colour kept, only alpha changes
    half_alpha = bytes([1, 1, 1, 100])
    assert pixels.apply_mask(half_alpha, bytes([128]), 1)[3] == round(100 * 128 / 255)
    rgba16 = struct.pack("<8H", 1, 2, 3, 65535, 4, 5, 6, 65535)
    out16 = struct.unpack("<8H", bytes(pixels.apply_mask(rgba16, bytes([0, 128]), 2)))
    assert out16[3] == 0 and out16[7] == round(65535 * 128 / 255)
    assert pixels.apply_mask(rgba, bytes([255] * 4), 1) == bytearray(rgba)
    with pytest.raises(pixels.PixelError):
        pixels.apply_mask(rgba, bytes(3), 1)


def test_wire_depth_and_conversion_policy():
    assert pixels.wire_depth("RGBA", "U8") == "U8"
    for depth in ("U16", "F16", "F32"):
        assert pixels.wire_depth("RGBA", depth) == "U16"
    assert not pixels.needs_conversion("RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc")
    assert pixels.needs_conversion("RGBA", "U16", "sRGB-elle-V2-g10.icc")      # linear 16-bit: convert
    assert pixels.needs_conversion("CMYKA", "U8", "Chemical proof")
    assert pixels.needs_conversion("RGBA", "F32", "sRGB-elle-V2-srgbtrc.icc")


def test_rect_intersection():
    r = pixels.Rect(-5, 10, 20, 20).intersect(pixels.Rect(0, 0, 12, 25))
    assert r == pixels.Rect(0, 10, 12, 15) and r.long_side == 15
    assert pixels.Rect(50, 50, 5, 5).intersect(pixels.Rect(0, 0, 10, 10)).empty
