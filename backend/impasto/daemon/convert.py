"""Wire images <-> engine tensors, vectorised (no per-pixel Python), without copying more than the conversion needs.

Engines take (1, 3|4, H, W) float32 sRGB in [0, 1].  A wire image may be 1..4 channels, u8/u16/f16/f32, RGB or BGR
order, sRGB or linear; results go back in the content's own format, so an editor gets what it sent.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from impasto_protocol.images import ImageBuffer, as_bytes_view

from ..colour import LUMA, srgb_decode, srgb_encode

NP_DTYPES = {"u8": np.dtype(np.uint8), "u16": np.dtype("<u2"), "f16": np.dtype("<f2"), "f32": np.dtype("<f4")}
SCALE = {"u8": 255.0, "u16": 65535.0}


@dataclass(frozen=True)
class PixelFormat:
    """How a result is encoded: the content's channels, dtype, colour space and channel order."""

    channels: int
    dtype: str
    colorspace: str = "srgb"
    bgr: bool = False

    @classmethod
    def of(cls, img: ImageBuffer) -> "PixelFormat":
        return cls(img.channels, img.dtype, img.colorspace, img.bgr)


def buffer_to_array(img: ImageBuffer) -> np.ndarray:
    """(H, W, C) numpy view of the buffer (read-only, strided when rows are padded; no copy)."""
    dt = NP_DTYPES[img.dtype]
    raw = np.frombuffer(as_bytes_view(img.data), dtype=np.uint8, count=img.stride * img.height)
    rows = raw.reshape(img.height, img.stride)[:, :img.row_bytes]
    return rows.view(dt).reshape(img.height, img.width, img.channels)


def decoded_channels(channels: int, color: bool = True) -> int:
    return channels + 2 if color and channels in (1, 2) else channels


def decode_into(img: ImageBuffer, out: torch.Tensor, *, color: bool = True) -> torch.Tensor:
    """Decode ``img`` into ``out`` ((1, C', H, W) float32, possibly a row slice of a bigger tensor).

    Every step is per pixel, so decoding an image in row bands gives exactly the whole-image result."""
    a = buffer_to_array(img)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)          # read-only buffer: we never write into it
        src = torch.from_numpy(a).permute(2, 0, 1)            # (C, H, W) view
    c, h, w = img.channels, img.height, img.width
    if img.bgr and c >= 3:
        src = src[[2, 1, 0, 3][:c]]
    o = out[0]
    if color and c in (1, 2):
        o[:3].copy_(src[:1].expand(3, h, w))
        if c == 2:
            o[3].copy_(src[1])
    else:
        o.copy_(src)
    if img.dtype in SCALE:
        o.div_(SCALE[img.dtype])
    else:
        o.nan_to_num_(0.0, 1.0, 0.0).clamp_(0, 1)
    if img.colorspace == "linear":
        k = 3 if o.shape[0] >= 3 else 1
        o[:k] = srgb_encode(o[:k])
    return out


def buffer_to_tensor(img: ImageBuffer, *, color: bool = True) -> torch.Tensor:
    """(1, C', H, W) float32 in [0, 1], RGB order, sRGB.  ``color``: expand grey (1 → 3, 2 → 4 channels)."""
    out = torch.empty((1, decoded_channels(img.channels, color), img.height, img.width), dtype=torch.float32)
    return decode_into(img, out, color=color)


def tensor_to_array(t: torch.Tensor, fmt: PixelFormat) -> np.ndarray:
    """(1, 3|4, H, W) float sRGB RGB -> contiguous (H, W, C) numpy array in ``fmt``."""
    t = t.detach().to("cpu", torch.float32)
    if t.dim() == 4:
        t = t[0]
    rgb, alpha = t[:3], (t[3:4] if t.shape[0] >= 4 else None)
    if fmt.colorspace == "linear":
        rgb = srgb_decode(rgb.clamp(0, 1))
    if fmt.channels in (1, 2):
        color = torch.einsum("c,chw->hw", LUMA, rgb).unsqueeze(0)
    else:
        color = rgb[[2, 1, 0]] if fmt.bgr else rgb
    parts = [color]
    if fmt.channels in (2, 4):
        parts.append(alpha if alpha is not None else torch.ones_like(color[:1]))
    x = torch.cat(parts, 0) if len(parts) > 1 else color
    x = x.clamp(0, 1)                      # a fresh (C, H, W) tensor: the in-place steps below are safe
    c, h, w = x.shape
    if fmt.dtype in ("u8", "u16"):
        x.mul_(SCALE[fmt.dtype]).add_(0.5)
        y = torch.empty((h, w, c), dtype=torch.uint8 if fmt.dtype == "u8" else torch.int32)
        y.copy_(x.permute(1, 2, 0))        # one strided pass: CHW float -> HWC integer (truncation = rounding)
        return y.numpy() if fmt.dtype == "u8" else np.ascontiguousarray(y.numpy().astype("<u2"))
    y = torch.empty((h, w, c), dtype=torch.float16 if fmt.dtype == "f16" else torch.float32)
    y.copy_(x.permute(1, 2, 0))
    return y.numpy()


def tensor_to_buffer(t: torch.Tensor, fmt: PixelFormat) -> ImageBuffer:
    """Encode a result; the ImageBuffer's data is a memoryview of a fresh numpy array (sent without a copy)."""
    arr = tensor_to_array(t, fmt)
    h, w, c = arr.shape
    return ImageBuffer(width=w, height=h, channels=c, dtype=fmt.dtype, data=memoryview(arr).cast("B"),
                       colorspace=fmt.colorspace, bgr=fmt.bgr)


def array_tile(arr: np.ndarray, x: int, y: int, w: int, h: int, fmt: PixelFormat) -> ImageBuffer:
    tile = np.ascontiguousarray(arr[y:y + h, x:x + w])
    th, tw, c = tile.shape
    return ImageBuffer(width=tw, height=th, channels=c, dtype=fmt.dtype, data=memoryview(tile).cast("B"),
                       colorspace=fmt.colorspace, bgr=fmt.bgr)


def preview_buffer(t: torch.Tensor, max_side: int = 256) -> ImageBuffer:
    """A small u8 RGB sRGB preview of an engine's intermediate image."""
    t = t.detach().float()[:, :3]
    h, w = t.shape[2:]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        t = torch.nn.functional.interpolate(t, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
    return tensor_to_buffer(t, PixelFormat(3, "u8"))
