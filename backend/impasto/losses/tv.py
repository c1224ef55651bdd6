"""Total variation of an image or a field: mean squared difference of neighbouring values."""
from __future__ import annotations

import torch


def tv_loss(x: torch.Tensor, diagonals: bool = False) -> torch.Tensor:
    """Mean of squared horizontal and vertical differences (and both diagonals with ``diagonals=True``), averaged
    over the directions.  ``x``: (N, C, H, W).  A constant image has TV 0; a horizontal ramp with step s has
    TV s²/2 (only the horizontal term is non-zero)."""
    dh = (x[:, :, 1:, :] - x[:, :, :-1, :]).pow(2).mean()
    dw = (x[:, :, :, 1:] - x[:, :, :, :-1]).pow(2).mean()
    if not diagonals:
        return (dh + dw) / 2
    d1 = (x[:, :, 1:, 1:] - x[:, :, :-1, :-1]).pow(2).mean()
    d2 = (x[:, :, 1:, :-1] - x[:, :, :-1, 1:]).pow(2).mean()
    return (dh + dw + d1 + d2) / 4
