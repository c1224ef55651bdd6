"""Laplacian pyramid: an image as band-pass levels whose sum (each upsampled) is the image.

Optimizing the levels instead of the pixels lets coarse structure move quickly (STROTSS, DST).
Levels are ordered finest first; the last one is the low-pass residual.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _down(x: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[2:]
    return F.interpolate(x, size=(max(1, (h + 1) // 2), max(1, (w + 1) // 2)), mode="bilinear",
                         align_corners=False, antialias=True)


def _up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    pyr, cur = [], x
    for _ in range(levels - 1):
        low = _down(cur)
        pyr.append(cur - _up(low, cur.shape[2:]))
        cur = low
    pyr.append(cur)
    return pyr


def synthesize(pyr: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of ``laplacian_pyramid`` (exact)."""
    cur = pyr[-1]
    for band in reversed(pyr[:-1]):
        cur = band + _up(cur, band.shape[2:])
    return cur
