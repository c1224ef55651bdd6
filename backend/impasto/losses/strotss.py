"""STROTSS losses (Kolkin et al., CVPR 2019), as used by DST (Kim et al., ECCV 2020).

Images are described by *hypercolumns*: at a set of sampled locations, the VGG features of several layers
(bilinearly sampled, so every layer contributes at the same spot) concatenated with the raw RGB.
The original code used VGG16 (relu1_1, relu1_2, relu2_1, relu2_2, relu3_1, relu3_2, relu3_3, relu4_3, relu5_3);
with our VGG19 we take the analogous layers, the last ReLU of blocks 3–5 standing for VGG16's:
relu1_1, relu1_2, relu2_1, relu2_2, relu3_1, relu3_2, relu3_4, relu4_4, relu5_4 — 2176 feature dims + 3 RGB.

Terms (papers.md B.3):
* ``remd_loss``: relaxed earth mover's distance, max(mean_i min_j C_ij, mean_j min_i C_ij), cosine cost;
* ``moment_loss``: mean |μx − μy| + mean |Σx − Σy| (covariance / (N − 1));
* ``palette_loss``: REMD on the RGB part converted to YUV, Euclidean cost;
* ``self_similarity_loss``: content term comparing the cosine self-distance matrices of output and content
  (column-normalized), × n.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..engines.postprocess import rgb_to_yuv

HYPERCOLUMN_LAYERS = ("relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_4", "relu4_4",
                      "relu5_4")


# ------------------------------------------------------------------------------------------------ cost matrices

def cosine_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) with 1 − cos(x_i, y_j)."""
    x = F.normalize(x.float(), dim=1, eps=1e-8)
    y = F.normalize(y.float(), dim=1, eps=1e-8)
    return 1.0 - x @ y.t()


def euclidean_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N, D), (M, D) -> (N, M) with sqrt(max(|x_i − y_j|², 1e-5) / D) (DST's colour cost)."""
    x, y = x.float(), y.float()
    d2 = (x.pow(2).sum(1, keepdim=True) + y.pow(2).sum(1).unsqueeze(0) - 2 * x @ y.t()).clamp(min=1e-5)
    return (d2 / x.shape[1]).sqrt()


# --------------------------------------------------------------------------------------------------- the terms

def remd_loss(x: torch.Tensor, y: torch.Tensor, cost: str = "cosine") -> torch.Tensor:
    """Relaxed EMD between point sets ``x`` (N, D) and ``y`` (M, D): the larger of the two one-sided mean
    nearest-neighbour costs.  0 for identical sets."""
    c = cosine_distance(x, y) if cost == "cosine" else euclidean_distance(x, y)
    return torch.maximum(c.min(dim=1).values.mean(), c.min(dim=0).values.mean())


def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (1, D) and unbiased covariance (D, D) of an (N, D) sample set."""
    x = x.float()
    m = x.mean(0, keepdim=True)
    return m, (x - m).t() @ (x - m) / max(x.shape[0] - 1, 1)


def moment_loss(x: torch.Tensor, y: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean absolute difference of the means plus of the covariances (unbiased) of two (N, D) sample sets
    (``y`` may be given as precomputed ``moments(y)``)."""
    mx, cx = moments(x)
    my, cy = moments(y) if isinstance(y, torch.Tensor) else y
    return (mx - my).abs().mean() + (cx - cy).abs().mean()


def palette_loss(x_rgb: torch.Tensor, y_rgb: torch.Tensor) -> torch.Tensor:
    """REMD with Euclidean cost between (N, 3) and (M, 3) RGB samples, in YUV."""
    to_yuv = lambda c: rgb_to_yuv(c.float().t().reshape(1, 3, -1, 1)).reshape(3, -1).t()  # noqa: E731
    return remd_loss(to_yuv(x_rgb), to_yuv(y_rgb), cost="euclidean")


def self_similarity_loss(fx: torch.Tensor, fc: torch.Tensor) -> torch.Tensor:
    """STROTSS content loss on (N, D) hypercolumns at the same N locations of output and content."""
    mx, mc = cosine_distance(fx, fx), cosine_distance(fc, fc)
    mx = mx / mx.sum(0, keepdim=True).clamp(min=1e-8)
    mc = mc / mc.sum(0, keepdim=True).clamp(min=1e-8)
    return (mx - mc).abs().mean() * fx.shape[0]


# ------------------------------------------------------------------------------------------- hypercolumns

def grid_candidates(height: int, width: int, max_side_samples: int = 128) -> torch.Tensor:
    """(K, 2) pixel coordinates (x, y) of a regular grid with at most ``max_side_samples``² points."""
    step = max(1, max(height, width) // max_side_samples)
    ys = torch.arange(0, height, step, dtype=torch.float32)
    xs = torch.arange(0, width, step, dtype=torch.float32)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx.flatten(), gy.flatten()], dim=1)


def sample_locations(height: int, width: int, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``n`` pixel locations (x, y): a random subset of the strided grid, jittered within a grid cell."""
    cand = grid_candidates(height, width)
    idx = torch.randperm(cand.shape[0], generator=generator)[:n]
    pts = cand[idx]
    step = max(1, max(height, width) // 128)
    if step > 1:
        pts = pts + torch.rand(pts.shape, generator=generator) * step
    pts[:, 0].clamp_(0, width - 1)
    pts[:, 1].clamp_(0, height - 1)
    return pts


def hypercolumns(features: dict[str, torch.Tensor], image: torch.Tensor, points: torch.Tensor,
                 layers: tuple[str, ...] = HYPERCOLUMN_LAYERS, feature_scale: float = 1.0) -> torch.Tensor:
    """(N, D) hypercolumns at pixel ``points`` (N, 2: x, y) of ``image`` (1,3,H,W); ``features`` from the VGG.

    Each layer is bilinearly sampled at the same relative position and multiplied by ``feature_scale`` (pass
    ``vgg.feature_scale`` so that moments see torchvision-scale activations); the RGB values come last (3 dims)."""
    h, w = image.shape[2:]
    grid = torch.empty(1, 1, points.shape[0], 2, device=image.device, dtype=torch.float32)
    grid[0, 0, :, 0] = (points[:, 0].to(image.device) + 0.5) / w * 2 - 1
    grid[0, 0, :, 1] = (points[:, 1].to(image.device) + 0.5) / h * 2 - 1
    cols = []
    for layer in layers:
        f = features[layer].float()
        cols.append(F.grid_sample(f, grid, mode="bilinear", align_corners=False)[0, :, 0].t() * feature_scale)
    cols.append(F.grid_sample(image.float(), grid, mode="bilinear", align_corners=False)[0, :, 0].t())
    return torch.cat(cols, dim=1)


class StrotssStyle:
    """The style side of STROTSS, precomputed once per scale: random hypercolumn samples of the style image.

    ``loss(hyper)`` = REMD_cos + moments + palette / max(α, 1) for (N, D) hypercolumns of the output.
    """

    def __init__(self, vgg, style: torch.Tensor, samples: int = 5000, generator: torch.Generator | None = None,
                 layers: tuple[str, ...] = HYPERCOLUMN_LAYERS):
        self.layers = layers
        with torch.no_grad():
            feats = vgg(style, list(layers))
            h, w = style.shape[2:]
            n = min(samples, h * w)
            pts = torch.stack([torch.rand(n, generator=generator) * (w - 1),
                               torch.rand(n, generator=generator) * (h - 1)], dim=1)
            self.samples = hypercolumns(feats, style, pts, layers, getattr(vgg, "feature_scale", 1.0)).detach()
            self.feature_moments = moments(self.samples[:, :-3])

    def loss(self, hyper: torch.Tensor, content_weight: float = 1.0) -> torch.Tensor:
        s = self.samples
        return (remd_loss(hyper[:, :-3], s[:, :-3], "cosine")
                + moment_loss(hyper[:, :-3], self.feature_moments)
                + palette_loss(hyper[:, -3:], s[:, -3:]) / max(content_weight, 1.0))
