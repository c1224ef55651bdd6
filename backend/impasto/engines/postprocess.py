"""Per-pixel post-processing shared by every engine: colour preservation and strength.

Both are pointwise, so they can be applied to a whole image or to one tile of it with the matching content crop.
"""
from __future__ import annotations

import torch

from impasto_protocol.options import StylizeOptions

# BT.601 YUV (the luminance used by MT's L-block and by STROTSS' palette term)
_RGB2YUV = torch.tensor([[0.299, 0.587, 0.114],
                         [-0.14714119, -0.28886916, 0.43601035],
                         [0.61497538, -0.51496512, -0.10001026]])


def rgb_to_yuv(x: torch.Tensor) -> torch.Tensor:
    m = _RGB2YUV.to(x.device, x.dtype)
    return torch.einsum("ij,bjhw->bihw", m, x)


def yuv_to_rgb(x: torch.Tensor) -> torch.Tensor:
    m = torch.linalg.inv(_RGB2YUV.double()).to(x.device, x.dtype)
    return torch.einsum("ij,bjhw->bihw", m, x)


def preserve_content_color(stylized: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Luminance of ``stylized`` with the chroma (U, V) of ``content`` ("luminance-only transfer")."""
    s, c = rgb_to_yuv(stylized), rgb_to_yuv(content)
    return yuv_to_rgb(torch.cat([s[:, :1], c[:, 1:]], dim=1)).clamp(0, 1)


def apply_strength_and_color(stylized: torch.Tensor, content: torch.Tensor, options: StylizeOptions) -> torch.Tensor:
    out = stylized
    if options.preserve_color:
        out = preserve_content_color(out, content)
    if options.strength < 1.0:
        out = torch.lerp(content.to(out.dtype), out, float(options.strength))
    return out.clamp(0, 1)
