"""Building blocks shared by the three MT subnets.

* ``ConvLayer``: reflection padding + convolution (no zero padding, so no border artefacts).
* ``ConvNormReLU``: ``ConvLayer`` + ``nn.InstanceNorm2d(affine=True)`` + ReLU -- the paper puts instance norm and
  ReLU after every non-residual convolution.
* ``ResidualBlock``: two 3x3 ``ConvLayer``s with instance norm (ReLU after the first) plus the identity.
* ``ResizeConv``: x2 nearest-neighbour upsampling, then ``ConvNormReLU`` (no transposed convolution, hence no
  checkerboard artefacts).

Instance norm layers are plain ``nn.InstanceNorm2d`` modules so tiled inference (``impasto.tiling``) can find them
and swap in statistics computed over the whole image.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...colour import BT601_LUMA


class ConvLayer(nn.Module):
    """Reflection pad (kernel // 2) + Conv2d."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.pad(x))


class ConvNormReLU(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__()
        self.conv = ConvLayer(c_in, c_out, kernel, stride)
        self.norm = nn.InstanceNorm2d(c_out, affine=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm(self.conv(x)))


class ResidualBlock(nn.Module):
    """x + IN(conv(ReLU(IN(conv(x))))) (He et al.; the layout Johnson et al. use)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvLayer(channels, channels, 3)
        self.norm1 = nn.InstanceNorm2d(channels, affine=True)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = ConvLayer(channels, channels, 3)
        self.norm2 = nn.InstanceNorm2d(channels, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.norm1(self.conv1(x)))
        return x + self.norm2(self.conv2(y))


class ResizeConv(nn.Module):
    """x2 nearest upsampling then 3x3 conv + IN + ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__()
        self.conv = ConvNormReLU(c_in, c_out, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


def residual_stack(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock(channels) for _ in range(count)])


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad bottom/right so H and W are multiples of ``multiple`` and at least ``2 * multiple`` (so every padded conv
    still has room), with reflection (replicate when the image is too small to reflect).

    Returns the padded tensor and the original (H, W) to crop back to."""
    h, w = x.shape[-2:]
    ph = max((-h) % multiple, 2 * multiple - h)
    pw = max((-w) % multiple, 2 * multiple - w)
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


# ImageNet statistics: the network sees normalised RGB, and luminance normalised the same way.
RGB_MEAN = (0.485, 0.456, 0.406)
RGB_STD = (0.229, 0.224, 0.225)
LUMA_WEIGHTS = BT601_LUMA


def normalize_rgb(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(RGB_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(RGB_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def normalized_luminance(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luminance of RGB [0,1], centred and scaled like the RGB input: (L - 0.45) / 0.225."""
    w = torch.tensor(LUMA_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * w).sum(dim=1, keepdim=True) - 0.45) / 0.225
