"""Enhance subnet (level 2, trained at 512 px): a strided conv for downsampling, the style-subnet structure, a
resize-convolution back up.

Input: the style subnet's output upsampled x2 (bilinear).  Layers: ConvNormReLU 9x9 stride 2 (w1) -- the extra
downsampling, so the body works at the style level's resolution -- then 3x3 stride 2 (w2), 3x3 stride 2 (w3),
``res_blocks`` residual blocks (w3), resize-convs (w2, w1, w0) and a last 3x3 conv to RGB.

Only an RGB branch: the input is already a stylized image, whose luminance the RGB branch sees in full
(FeliMe/URST also use one branch here).  Widths default to (32, 64, 128) + w0=16 with 6 residual blocks -- half
the FeliMe width (256) at the bottleneck, which cut this level's cost ~4x; see docs/mt.md.
``residual=True`` (the default in ``MTConfig``) adds the input to the output, like the refine subnet.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import ConvLayer, ConvNormReLU, ResizeConv, normalize_rgb, pad_to_multiple, residual_stack


class EnhanceSubnet(nn.Module):
    STRIDE = 8

    def __init__(self, widths: tuple[int, int, int] = (32, 64, 128), out_width: int = 16, res_blocks: int = 6,
                 residual: bool = False):
        super().__init__()
        self.residual = residual
        w1, w2, w3 = widths
        self.down = ConvNormReLU(3, w1, 9, 2)
        self.conv2 = ConvNormReLU(w1, w2, 3, 2)
        self.conv3 = ConvNormReLU(w2, w3, 3, 2)
        self.res = residual_stack(w3, res_blocks)
        self.up = nn.Sequential(ResizeConv(w3, w2), ResizeConv(w2, w1), ResizeConv(w1, out_width))
        self.out = ConvLayer(out_width, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp, (h, w) = pad_to_multiple(x, self.STRIDE)
        y = self.res(self.conv3(self.conv2(self.down(normalize_rgb(xp)))))
        y = self.out(self.up(y))[..., :h, :w]
        return x + y if self.residual else y
