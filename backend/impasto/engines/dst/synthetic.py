"""A synthetic DST case with known ground truth (tests, benchmarks, docs).

The content is a painting-like picture (``impasto.demo.demo_painting``: brush strokes around bright halos); the
style is the same picture deformed by a known smooth warp (a thin-plate spline that moves ``K`` keypoints and keeps
the border fixed).  The known keypoint pairs are (p_i, s_i); the deformation carries no global similarity (it is
removed from the displacements), so DST's aligned targets are the style points themselves and a perfect warp moves
each content point exactly onto its style point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from impasto_protocol.options import KeypointPair

from .cleaning import umeyama
from .tps import tps_warp


@dataclass
class SyntheticCase:
    content: torch.Tensor          # (1, 3, S, S)
    style: torch.Tensor            # (1, 3, S, S): content deformed
    content_points: torch.Tensor   # (K, 2) pixels
    style_points: torch.Tensor     # (K, 2) pixels: where the deformation moved them

    def pairs(self) -> list[KeypointPair]:
        return [KeypointPair(content=(float(c[0]), float(c[1])), style=(float(s[0]), float(s[1])))
                for c, s in zip(self.content_points.tolist(), self.style_points.tolist())]


def make_case(size: int = 256, points: int = 8, displacement: float = 0.04, seed: int = 3) -> SyntheticCase:
    """``points`` keypoints on a ring (radius 0.3·size) each displaced by up to ``displacement``·size in a random
    direction, minus the best-fitting similarity (so the warp is purely local)."""
    from ...demo import demo_style

    g = torch.Generator().manual_seed(seed)
    content = demo_style(size, seed=seed)
    ang = torch.arange(points, dtype=torch.float64) * (2 * math.pi / points) + 0.3
    centre = size / 2
    p = torch.stack([centre + 0.3 * size * torch.cos(ang), centre + 0.3 * size * torch.sin(ang)], 1)
    d = (torch.rand(points, 2, generator=g, dtype=torch.float64) * 2 - 1) * displacement * size
    s = p + d
    sim = umeyama(p, s)
    s = sim.inverse().apply(s)                 # remove the global similarity: Umeyama(p, s) is now the identity
    style = tps_warp(content.double(), p, s).float().clamp(0, 1)
    return SyntheticCase(content=content, style=style, content_points=p, style_points=s)
