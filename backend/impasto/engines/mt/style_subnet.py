"""Style subnet (level 1, trained at 256 px): RGB-block + L-block, concatenated, then the conv-block.

* RGB-block: ConvNormReLU 9x9 (w1), 3x3 stride 2 (w2), 3x3 stride 2 (w3), then three residual blocks (w3), on
  normalised RGB.
* L-block: the same structure on the BT.601 luminance channel, so the net gets a faithful luminance
  representation of its own (the "multimodal" of the paper's title).
* Conv-block: three residual blocks on the concatenation (2·w3 channels), two resize-convolutions (w2, w1) and a
  last 3x3 conv to RGB (no norm, no activation).

Widths default to (16, 32, 64) per branch (128 after concatenation), the m990130/FeliMe choice; the paper gives
none.  See docs/mt.md for the measurements behind every width choice.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import ConvLayer, ConvNormReLU, ResizeConv, normalize_rgb, normalized_luminance, pad_to_multiple, \
    residual_stack


class EncoderBlock(nn.Module):
    """9x9 conv, two strided 3x3 convs, residual blocks: the RGB-block and L-block structure."""

    def __init__(self, c_in: int, widths: tuple[int, int, int], res_blocks: int = 3):
        super().__init__()
        w1, w2, w3 = widths
        self.conv1 = ConvNormReLU(c_in, w1, 9, 1)
        self.conv2 = ConvNormReLU(w1, w2, 3, 2)
        self.conv3 = ConvNormReLU(w2, w3, 3, 2)
        self.res = residual_stack(w3, res_blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(self.conv3(self.conv2(self.conv1(x))))


class StyleSubnet(nn.Module):
    STRIDE = 4   # total downsampling; inputs are padded to a multiple of this

    def __init__(self, widths: tuple[int, int, int] = (16, 32, 64), res_blocks: int = 3):
        super().__init__()
        w1, w2, w3 = widths
        self.rgb_block = EncoderBlock(3, widths, res_blocks)
        self.l_block = EncoderBlock(1, widths, res_blocks)
        self.conv_block = nn.Sequential(
            residual_stack(2 * w3, res_blocks),
            ResizeConv(2 * w3, w2),
            ResizeConv(w2, w1),
            ConvLayer(w1, 3, 3),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N,3,H,W) RGB in [0,1] -> stylized RGB (roughly [0,1], unclamped), same H, W."""
        x, (h, w) = pad_to_multiple(x, self.STRIDE)
        feats = torch.cat([self.rgb_block(normalize_rgb(x)), self.l_block(normalized_luminance(x))], dim=1)
        return self.conv_block(feats)[..., :h, :w]
