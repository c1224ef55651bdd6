"""Helpers shared by the optimization engines."""
from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from ...device import default_device
from ...precision import memory_format
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


# --- large canvases (impasto.tiling.optim_tiled, issue 5) ------------------------------------------------------------
FULL_RESOLUTION_ABOVE = 2048    # output long side above which the result gets the tiled full-resolution pass
OPTIMIZE_SHARE = 0.5            # progress fraction of the optimization when that pass follows


def is_large(out_size: tuple[int, int]) -> bool:
    return max(out_size) > FULL_RESOLUTION_ABOVE


def scaled_progress(progress, start: float, share: float):
    """A progress callback that maps 0..1 onto start..start + share of the job."""
    def report(p):
        progress(dataclasses.replace(p, fraction=start + share * p.fraction))
    return report


def finish_at_full_resolution(small: torch.Tensor, out_size: tuple[int, int], style: torch.Tensor, options, *,
                              progress, cancel, on_tile, device, read=None) -> torch.Tensor:
    """The working-size result brought to ``out_size`` by the tiled full-resolution pass: the start image (``read``,
    default: the upsampled result) gets full-size brushwork against the whole canvas's Gram statistics, tile by
    tile, with bounded memory; finished tiles go to ``on_tile`` as they are done."""
    from ...tiling.optim_tiled import refine_full_resolution
    return refine_full_resolution(small, out_size, style, options, read=read, device=device, on_tile=on_tile,
                                  progress=scaled_progress(progress, OPTIMIZE_SHARE, 1 - OPTIMIZE_SHARE),
                                  cancel=cancel)
