"""Per-pixel post-processing shared by every engine: colour preservation and strength.

Both are pointwise, so they can be applied to a whole image or to one tile of it with the matching content crop.
"""
from __future__ import annotations

import torch

from impasto_protocol.options import StylizeOptions

from ..colour import rgb_to_yuv, yuv_to_rgb

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
