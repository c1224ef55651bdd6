"""``MultimodalTransferNet``: style subnet -> x2 bilinear -> enhance subnet -> x2 bilinear -> refine subnet.

Levels scale with the output size: for an output of H x W the style subnet runs at H/4 x W/4, the enhance subnet at
H/2 x W/2 and the refine subnet at H x W (so a 1024 output runs the levels at 256/512/1024, the sizes they were
trained for).  In training (``upsample_refine=False``) the refine subnet sees the enhance output without the last
upsampling, as in the paper: the content is 512, the levels run at 256/512/512 -- unless ``refine_window`` is
given: then the enhance output is upsampled x2 (as at test time) and the refine subnet runs on a window of it the
size of the enhance output, so it learns at the scale it will see (docs/mt.md, "The refine recipe").

``forward`` returns the three outputs (unclamped RGB, roughly [0, 1]); ``stylize`` returns only the last, clamped.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .enhance_subnet import EnhanceSubnet
from .refine_subnet import RefineSubnet
from .style_subnet import StyleSubnet

LEVELS = ("style", "enhance", "refine")


@dataclass
class MTConfig:
    """Channel widths and residual-block counts of the three subnets (stored in every model file)."""

    style_widths: tuple[int, int, int] = (16, 32, 64)
    style_res_blocks: int = 3
    enhance_widths: tuple[int, int, int] = (32, 64, 128)
    enhance_out_width: int = 16
    enhance_res_blocks: int = 6
    refine_widths: tuple[int, int, int] = (16, 32, 64)
    refine_res_blocks: int = 3
    # Deviation from the paper (see docs/mt.md): the enhance subnet also adds its input (the refine subnet does in
    # the paper), and both upper levels' last convs start at zero, so they start as the identity and a short
    # training schedule can only add to the style level's result.
    enhance_residual: bool = True

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "MTConfig":
        known = {f: d[f] for f in cls.__dataclass_fields__ if f in d}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in known.items()})

    @classmethod
    def tiny(cls) -> "MTConfig":
        """A very small net for tests (same structure, 4-8-16 channels, one residual block)."""
        return cls((4, 8, 16), 1, (4, 8, 16), 4, 1, (4, 8, 16), 1, True)


def resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize (antialiased when shrinking)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=shrink)


def window_of(x: torch.Tensor, origin: tuple[int, int]) -> torch.Tensor:
    """The window at ``origin`` (top, left) of ``x`` upsampled x2, the size of ``x``: what the refine level sees
    of an image at test time, at the size it is trained on.  ``origin`` lies in [0, H] x [0, W]."""
    h, w = x.shape[-2:]
    top, left = origin
    if not (0 <= top <= h and 0 <= left <= w):
        raise ValueError(f"refine window origin {origin} outside [0, {h}] x [0, {w}]")
    return resize(x, (2 * h, 2 * w))[..., top:top + h, left:left + w]


class MultimodalTransferNet(nn.Module):
    def __init__(self, config: MTConfig | None = None):
        super().__init__()
        self.config = config or MTConfig()
        c = self.config
        self.style = StyleSubnet(c.style_widths, c.style_res_blocks)
        self.enhance = EnhanceSubnet(c.enhance_widths, c.enhance_out_width, c.enhance_res_blocks,
                                     residual=c.enhance_residual)
        self.refine = RefineSubnet(c.refine_widths, c.refine_res_blocks)
        if c.enhance_residual:
            for last in (self.enhance.out.conv, self.refine.out.conv):
                nn.init.zeros_(last.weight)
                nn.init.zeros_(last.bias)

    @staticmethod
    def level_sizes(h: int, w: int, upsample_refine: bool = True) -> list[tuple[int, int]]:
        """Sizes the style / enhance / refine levels run at for an (h, w) content."""
        f = 4 if upsample_refine else 2
        s = (max(1, round(h / f)), max(1, round(w / f)))
        e = (max(1, round(2 * h / f)), max(1, round(2 * w / f)))
        return [s, e, (h, w) if upsample_refine else e]

    def forward(self, content: torch.Tensor, levels: int = 3, upsample_refine: bool = True,
                out_size: tuple[int, int] | None = None,
                refine_window: tuple[int, int] | None = None) -> list[torch.Tensor]:
        """content: (N,3,H,W) RGB [0,1]; ``out_size`` (default: the content's size) is the final output size.

        Returns the outputs of the first ``levels`` levels, e.g. a 256 content with ``out_size=(1024, 1024)`` gives
        256, 512 and 1024 outputs.  ``refine_window=(top, left)`` (training, with ``upsample_refine=False``): the
        refine level runs on the window at (top, left) of the x2-upsampled enhance output, of the enhance output's
        size (``window_of`` cuts the matching content target)."""
        h, w = out_size or content.shape[-2:]
        sizes = self.level_sizes(h, w, upsample_refine)
        outs = [self.style(resize(content, sizes[0]))]
        if levels >= 2:
            outs.append(self.enhance(resize(outs[-1], sizes[1])))
        if levels >= 3:
            if refine_window is not None:
                outs.append(self.refine(window_of(outs[-1], refine_window)))
            else:
                outs.append(self.refine(resize(outs[-1], sizes[2])))
        return outs

    @torch.inference_mode()
    def stylize(self, content: torch.Tensor) -> torch.Tensor:
        return self.forward(content)[-1].clamp(0, 1)
