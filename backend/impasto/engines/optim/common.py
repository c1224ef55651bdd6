"""Helpers shared by the optimization engines."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ...device import default_device, memory_format
from ...vgg import get_vgg


def resize_long_side(x: torch.Tensor, long_side: int) -> torch.Tensor:
    h, w = x.shape[2:]
    s = long_side / max(h, w)
    size = (max(8, round(h * s)), max(8, round(w * s)))
    if size == (h, w):
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=s < 1).clamp(0, 1)


def preview_of(x: torch.Tensor, long_side: int = 128) -> torch.Tensor:
    return resize_long_side(x.detach().float().clamp(0, 1), min(long_side, max(x.shape[2:]))).cpu()


def prepare(device: torch.device | None):
    """(device, memory format, shared VGG in that format) for an engine run."""
    device = torch.device(device) if device is not None else default_device()
    fmt = memory_format(device)
    vgg = get_vgg(device)
    vgg.to(memory_format=fmt)
    return device, fmt, vgg
