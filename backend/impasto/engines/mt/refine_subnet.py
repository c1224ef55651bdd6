"""Refine subnet (level 3, trained at 512 px, run at 1024 px and above): three convs, three residual blocks, two
resize-convolutions, a last conv, and a residual connection to its input (it only adds detail).

Layers: ConvNormReLU 3x3 (w1), 3x3 stride 2 (w2), 3x3 stride 2 (w3), 3 residual blocks (w3), resize-convs (w2, w1),
ConvLayer 3x3 -> RGB; output = input + that.

This level runs at the full output size, so it dominates inference cost.  Widths (16, 32, 64) and a 3x3 first conv
(instead of Johnson's 32/64/128 with 9x9) keep it ~4x cheaper than a Johnson net at the same size; see docs/mt.md.

For tiled inference (impasto.tiling) the structure is: ``conv1``, ``conv2``, ``conv3`` (each ``ConvNormReLU`` with a
``.norm`` ``nn.InstanceNorm2d``), ``res`` (``ResidualBlock``s with ``norm1``/``norm2``), ``up`` (``ResizeConv``s),
``out`` (``ConvLayer``, no norm).  ``forward`` pads to a multiple of ``STRIDE`` itself.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import ConvLayer, ConvNormReLU, ResizeConv, normalize_rgb, pad_to_multiple, residual_stack


class RefineSubnet(nn.Module):
    STRIDE = 4

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64), res_blocks: int = 3):
        super().__init__()
        w1, w2, w3 = widths
        self.conv1 = ConvNormReLU(3, w1, 3, 1)
        self.conv2 = ConvNormReLU(w1, w2, 3, 2)
        self.conv3 = ConvNormReLU(w2, w3, 3, 2)
        self.res = residual_stack(w3, res_blocks)
        self.up = nn.Sequential(ResizeConv(w3, w2), ResizeConv(w2, w1))
        self.out = ConvLayer(w1, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp, (h, w) = pad_to_multiple(x, self.STRIDE)
        y = self.res(self.conv3(self.conv2(self.conv1(normalize_rgb(xp)))))
        return x + self.out(self.up(y))[..., :h, :w]
