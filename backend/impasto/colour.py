"""Colour: the one home of the BT.601 luma weights, BT.601 YUV and the sRGB transfer functions.

Depends on torch only, so anything may use it -- losses, engines, the daemon's wire conversions.
- ``BT601_LUMA``: ITU-R BT.601 luma weights (MT's L-block input, grey wire images, the Y of YUV).
- ``rgb_to_yuv`` / ``yuv_to_rgb``: BT.601 YUV on (B, 3, H, W) (colour preservation, STROTSS' palette term).
- ``srgb_encode`` / ``srgb_decode``: the sRGB transfer function (linear-light wire images).
"""
from __future__ import annotations

import torch

BT601_LUMA = (0.299, 0.587, 0.114)
LUMA = torch.tensor(BT601_LUMA)                          # float32, for per-pixel luma of a (3, H, W) image
RGB2YUV = torch.tensor([list(BT601_LUMA),
                        [-0.14714119, -0.28886916, 0.43601035],
                        [0.61497538, -0.51496512, -0.10001026]])


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    m = RGB2YUV.to(x.device, x.dtype)
    return torch.einsum("ij,bjhw->bihw", m, x)


def yuv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    m = torch.linalg.inv(RGB2YUV.double()).to(x.device, x.dtype)
    return torch.einsum("ij,bjhw->bihw", m, x)


# The transfer functions run in float64 and round to float32: vectorised and scalar pow() may differ in the last
# float64 bits, which the rounding hides, so converting an image in row bands equals converting it whole.
def srgb_encode(x: torch.Tensor) -> torch.Tensor:
    d = x.double()
    return torch.where(d <= 0.0031308, d * 12.92, 1.055 * d.clamp_min(0.0031308).pow(1 / 2.4) - 0.055).to(x.dtype)


def srgb_decode(x: torch.Tensor) -> torch.Tensor:
    d = x.double()
    return torch.where(d <= 0.04045, d / 12.92, ((d.clamp_min(0.04045) + 0.055) / 1.055).pow(2.4)).to(x.dtype)
