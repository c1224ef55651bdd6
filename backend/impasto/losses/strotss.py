"""STROTSS losses (Kolkin et al., CVPR 2019), as used by DST (Kim et al., ECCV 2020).

Images are described by *hypercolumns*: at a set of sampled locations, the VGG features of several layers
(bilinearly sampled, so every layer contributes at the same spot) concatenated with the raw RGB.
The original code used VGG16 (relu1_1, relu1_2, relu2_1, relu2_2, relu3_1, relu3_2, relu3_3, relu4_3, relu5_3);
with our VGG19 we take the analogous layers, the last ReLU of blocks 3–5 standing for VGG16's:
relu1_1, relu1_2, relu2_1, relu2_2, relu3_1, relu3_2, relu3_4, relu4_4, relu5_4 — 2176 feature dims + 3 RGB.

Terms (papers.md B.3), in their exact form:
* ``remd_loss``: relaxed earth mover's distance, max(mean_i min_j C_ij, mean_j min_i C_ij), cosine cost;
* ``moment_loss``: mean |μx − μy| + mean |Σx − Σy| (covariance / (N − 1));
* ``palette_loss``: REMD on the RGB part (in [-1, 1], as the reference code's images) converted to YUV,
  Euclidean cost;
* ``self_similarity_loss``: content term comparing the cosine self-distance matrices of output and content
  (column-normalized), × n.

``StrotssTerms`` evaluates them for the engines (STROTSS, DST) at one scale, in the exact form or in a fast form
chosen by ``StrotssApprox`` (each switch on its own; their effect on the result is measured by
``bench/bench_strotss.py``, figures in ``docs/optim.md``):

* ``nearest_without_grad``: a REMD's value is the mean cost of each point's nearest neighbour, and its gradient
  flows only through those pairs.  The nearest neighbours are found without autograd (the N × M cost matrix is
  never kept for the backward pass), then the costs of the chosen pairs are recomputed exactly, with gradient: the
  same value and gradient as the exact form wherever the low-precision search picks the same neighbour, and within
  its rounding (< 0.5 % of a cost) where it does not.
* ``low_precision``: the N × M, N × N and D × D products (nearest-neighbour search, self-similarity matrices,
  covariances) in the reduced-precision dtype the device policy gives (bf16 on CPUs with bf16 units), with a
  one-product backward for the symmetric products.
Everything that depends only on the style image (its hypercolumn samples, their unit vectors, YUV colours, mean and
covariance) is computed once per scale, in ``StrotssStyle``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from ..precision import autocast, autocast_dtype, memory_format, product_dtype
from ..colour import rgb_to_yuv

# above this many pixels in a batch of images, ``StrotssTerms`` runs VGG on one image at a time with recomputation
# (DST's X and W(X) at 512 px: 2 x 512²), to bound peak memory
BATCH_PIXELS = 2 ** 18

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
    return remd_loss(_yuv_rows(x_rgb), _yuv_rows(y_rgb), cost="euclidean")


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


def _corners(points: torch.Tensor, size: tuple[int, int], frame: tuple[int, int], scale: float):
    """The 4 bilinear corners of pixel ``points`` (N, 2: x, y of a ``frame`` = (H, W) image) in a map of ``size``
    (h, w), as ``F.grid_sample(align_corners=False, padding_mode="zeros")`` takes them: flat indices (4, N) and
    weights (4, N) × ``scale``; corners outside the map get weight 0 (and a valid index)."""
    (h, w), (fh, fw) = size, frame
    ix = (points[:, 0] + 0.5) * (w / fw) - 0.5
    iy = (points[:, 1] + 0.5) * (h / fh) - 0.5
    x0, y0 = ix.floor(), iy.floor()
    ax, ay = ix - x0, iy - y0
    xs, ys = torch.stack([x0, x0 + 1, x0, x0 + 1]), torch.stack([y0, y0, y0 + 1, y0 + 1])
    wts = torch.stack([(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay])
    inside = (xs >= 0) & (xs <= w - 1) & (ys >= 0) & (ys <= h - 1)
    idx = (ys.clamp_(0, h - 1) * w + xs.clamp_(0, w - 1)).long()
    return idx, wts.mul_(inside).mul_(scale)


def hypercolumn_corners(maps: list[torch.Tensor], frame: tuple[int, int], points: torch.Tensor,
                        feature_scale: float) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``_corners`` of every map (the VGG layers, then the image itself, whose values are not scaled): the same for
    all images of one size, so the content's and the output's gathers share them."""
    pts = points.to(maps[0].device, torch.float32)
    return [_corners(pts, tuple(m.shape[2:]), frame, feature_scale if k < len(maps) - 1 else 1.0)
            for k, m in enumerate(maps)]


class _Hypercolumns(torch.autograd.Function):
    """Bilinear samples of several (B, C, H, W) maps at the same points, written into one (B, N, ΣC) fp32 tensor.

    Each map is read as its (B·H·W, C) row view, which is free for channels_last maps (what VGG gives under
    autocast), so neither pass converts or copies a whole map; the four corners are one gather forward and one
    scatter backward, into one gradient of the map's own layout and dtype for the whole batch (summed in fp32 over
    the touched rows), so that autograd's accumulation inside VGG stays contiguous and no per-image slice is
    zero-filled to full size."""

    @staticmethod
    def forward(ctx, corners: list, *maps: torch.Tensor) -> torch.Tensor:
        b, n = maps[0].shape[0], corners[0][0].shape[1]
        out = torch.empty(b, n, sum(m.shape[1] for m in maps), device=maps[0].device, dtype=torch.float32)
        col = 0
        for (idx, wts), m in zip(corners, maps):
            c, hw = m.shape[1], m.shape[2] * m.shape[3]
            rows = m.permute(0, 2, 3, 1).reshape(-1, c)
            for i in range(b):
                four = rows[(idx + i * hw).flatten()].view(4, n, c).float()
                torch.sum(four.mul_(wts[:, :, None]), 0, out=out[i, :, col:col + c])
            col += c
        ctx.corners = corners
        ctx.shapes = [(m.shape, m.dtype, m.is_contiguous(memory_format=torch.channels_last)) for m in maps]
        return out

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        grads, col = [], 0
        for (idx, wts), (shape, dtype, channels_last) in zip(ctx.corners, ctx.shapes):
            b, c, h, w = shape
            # the sums in fp32 over the rows the samples touch only, then one rounding into a zero map of the map's
            # dtype: no full-size fp32 map to fill and convert
            flat = torch.cat([(idx + i * h * w).flatten() for i in range(b)])
            touched, where = torch.unique(flat, return_inverse=True)
            four = (g[:, None, :, col:col + c] * wts[None, :, :, None]).reshape(-1, c)
            sums = torch.zeros(touched.shape[0], c, device=g.device, dtype=torch.float32).index_add_(0, where, four)
            rows = torch.zeros(b * h * w, c, device=g.device, dtype=dtype)
            rows[touched] = sums.to(dtype)
            grad = rows.reshape(b, h, w, c).permute(0, 3, 1, 2)
            grads.append(grad if channels_last else grad.contiguous())
            col += c
        return (None, *grads)


def batch_hypercolumns(features: dict[str, torch.Tensor], images: torch.Tensor, points: torch.Tensor,
                       layers: tuple[str, ...] = HYPERCOLUMN_LAYERS, feature_scale: float = 1.0,
                       corners: list | None = None) -> torch.Tensor:
    """(B, N, D) fp32 hypercolumns at pixel ``points`` (N, 2: x, y) of each of the (B, 3, H, W) ``images``;
    ``features`` from one VGG pass over the batch.

    Each layer is bilinearly sampled at the same relative position (as ``F.grid_sample`` with
    ``align_corners=False`` and zero padding) and multiplied by ``feature_scale`` (pass ``vgg.feature_scale`` so
    that moments see torchvision-scale activations); the RGB values come last (3 dims).  ``corners``: the
    ``hypercolumn_corners`` of these maps and points, when already made for another image of the same size."""
    maps = [features[layer] for layer in layers] + [images]
    if corners is None:
        corners = hypercolumn_corners(maps, tuple(images.shape[2:]), points, feature_scale)
    return _Hypercolumns.apply(corners, *maps)


def hypercolumns(features: dict[str, torch.Tensor], image: torch.Tensor, points: torch.Tensor,
                 layers: tuple[str, ...] = HYPERCOLUMN_LAYERS, feature_scale: float = 1.0,
                 corners: list | None = None) -> torch.Tensor:
    """(N, D) fp32 hypercolumns of one (1, 3, H, W) ``image`` (``batch_hypercolumns``)."""
    return batch_hypercolumns(features, image, points, layers, feature_scale, corners)[0]


# ------------------------------------------------------------------------------------------- fast forms

@dataclass(frozen=True)
class StrotssApprox:
    """Which of the fast forms of the STROTSS terms are on (module docstring); ``EXACT`` turns all off."""

    nearest_without_grad: bool = True
    low_precision: bool = True


FAST = StrotssApprox()
EXACT = StrotssApprox(nearest_without_grad=False, low_precision=False)


class _RowGram(torch.autograd.Function):
    """A Aᵀ for an (N, D) matrix A, multiplied in ``dtype`` (fp32 result), with a one-product backward
    dA = (dG + dGᵀ) A instead of autograd's two products and a sum."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        low = a.to(dtype)
        ctx.save_for_backward(low)
        return (low @ low.t()).float()

    @staticmethod
    def backward(ctx, dg: torch.Tensor):
        (low,) = ctx.saved_tensors
        return ((dg + dg.t()).to(low.dtype) @ low).float(), None


def row_gram(a: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """A Aᵀ (fp32 result), in ``dtype`` when given (see ``_RowGram``), else plain fp32 autograd."""
    if dtype is None:
        a = a.float()
        return a @ a.t()
    return _RowGram.apply(a, dtype)


def _product_dtype(device: torch.device) -> torch.dtype | None:
    """The dtype of the fast forms' large products, as the precision policy has it for long reductions (bf16 where
    bf16 is in force; the unnormalised covariance sums reach ~1e6, past fp16's range); None for fp32."""
    dtype = product_dtype(autocast_dtype(device) or torch.float32)
    return None if dtype == torch.float32 else dtype


def _unit(x: torch.Tensor) -> torch.Tensor:
    return F.normalize(x.float(), dim=1, eps=1e-8)


def _nearest(matrix: torch.Tensor, largest: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Index of each row's and each column's best entry of an (N, M) matrix, reduced in the matrix's own dtype and
    layout (a bf16 product's rounding is already in its entries: an fp32 copy chooses the same ones, 2.5x slower
    here with its transposed copy)."""
    if largest:
        return matrix.max(1).indices, matrix.max(0).indices
    return matrix.min(1).indices, matrix.min(0).indices


def _sum_rows_into(index: torch.Tensor, rows: torch.Tensor, n: int) -> torch.Tensor:
    """(n, D): row i is the sum of the ``rows`` whose ``index`` is i (a constant, no autograd)."""
    return torch.zeros(n, rows.shape[1], dtype=rows.dtype, device=rows.device).index_add_(0, index, rows)


class _CosineREMD(torch.autograd.Function):
    """The cosine REMD of (N, D) samples x once the nearest neighbours are known: the larger of
    1 − mean_i x̂_i·y_j(i) and 1 − (1/M) Σ_i x̂_i·Y_i (Y_i: the sum of the unit style rows whose nearest output row
    is i).  Both sides are linear in the unit rows x̂, so the backward is one projection, dx = (a − x̂ (x̂·a)) / |x|
    with a = −∂L/∂x̂ of the larger side: autograd's value and gradient through ``F.normalize`` in a third of the
    passes over x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, unit: torch.Tensor, norm: torch.Tensor, rows_y: torch.Tensor,
                y_into_x: torch.Tensor, m: int) -> torch.Tensor:
        rows = 1.0 - (unit * rows_y).sum() / x.shape[0]
        cols = 1.0 - (unit * y_into_x).sum() / m
        if rows >= cols:
            ctx.save_for_backward(unit, norm, rows_y)
            ctx.weight = -1.0 / x.shape[0]
            return rows
        ctx.save_for_backward(unit, norm, y_into_x)
        ctx.weight = -1.0 / m
        return cols

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        unit, norm, a = ctx.saved_tensors
        ga = a * (g * ctx.weight)                                      # ∂L/∂x̂
        dx = torch.addcmul(ga, unit, (unit * ga).sum(1, keepdim=True), value=-1.0)
        eps = norm <= 1e-8                                             # F.normalize's clamp: x̂ = x / 1e-8 there
        dx = torch.where(eps, ga, dx).div_(norm.clamp(min=1e-8))
        return dx, None, None, None, None, None


def remd_cosine_fast(x: torch.Tensor, y_unit: torch.Tensor, y_low: torch.Tensor | None) -> torch.Tensor:
    """``remd_loss(x, y, "cosine")`` with the nearest neighbours found without autograd (module docstring).

    ``y_unit``: the (M, D) unit vectors of y in fp32; ``y_low``: the same in the search dtype (None: fp32)."""
    x = x.float()
    with torch.no_grad():
        norm = x.norm(dim=1, keepdim=True)
        unit = x / norm.clamp(min=1e-8)
        search = y_unit if y_low is None else y_low
        j, i = _nearest(unit.to(search.dtype) @ search.t(), largest=True)
        # Σ_j cos(x_i(j), y_j) = Σ_i x̂_i · (Σ_{j: i(j)=i} y_j): no (M, D) gather whose backward is a scatter
        y_into_x = _sum_rows_into(i, y_unit, x.shape[0])
    return _CosineREMD.apply(x, unit, norm, y_unit[j], y_into_x, y_unit.shape[0])


def remd_euclidean_fast(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``remd_loss(x, y, "euclidean")`` with the nearest neighbours found without autograd (fp32: D is small)."""
    x = x.float()
    with torch.no_grad():
        d2 = torch.addmm(y.pow(2).sum(1).unsqueeze(0), x, y.t(), alpha=-2).add_(x.pow(2).sum(1, keepdim=True))
        j, i = _nearest(d2, largest=False)
    d = x.shape[1]
    rows = ((x - y[j]).pow(2).sum(1).clamp(min=1e-5) / d).sqrt()
    cols = ((x[i] - y).pow(2).sum(1).clamp(min=1e-5) / d).sqrt()
    return torch.maximum(rows.mean(), cols.mean())


class _CovarianceL1(torch.autograd.Function):
    """mean |Xcᵀ Xc / (N − 1) − Σ| for centred (N, D) samples Xc, the product in ``dtype``, fused: one product
    forward, one backward (dXc = 2 Xc sign(·) / ((N − 1) D²): the sign matrix is symmetric)."""

    @staticmethod
    def forward(ctx, xc: torch.Tensor, target: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        n, d = xc.shape
        low = xc.to(dtype)
        diff = (low.t() @ low).float().sub_(target, alpha=max(n - 1, 1))     # (N − 1)·(cov − Σ)
        loss = diff.abs().sum() / (max(n - 1, 1) * d * d)
        ctx.save_for_backward(low, diff.sign_().to(dtype))
        return loss

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        low, sign = ctx.saved_tensors
        n, d = low.shape
        return (low @ sign).float() * (2 * g / (max(n - 1, 1) * d * d)), None, None


def moment_loss_fast(x: torch.Tensor, y_moments: tuple[torch.Tensor, torch.Tensor],
                     dtype: torch.dtype | None) -> torch.Tensor:
    """``moment_loss`` with the covariance term fused and multiplied in ``dtype`` (``_CovarianceL1``)."""
    if dtype is None:
        return moment_loss(x, y_moments)
    x = x.float()
    mx = x.mean(0, keepdim=True)
    my, cy = y_moments
    return (mx - my).abs().mean() + _CovarianceL1.apply(x - mx, cy, dtype)


def self_similarity_loss_fast(fx: torch.Tensor, fc: torch.Tensor, dtype: torch.dtype | None) -> torch.Tensor:
    """``self_similarity_loss`` with the two N × N cosine matrices in ``dtype`` (see ``row_gram``)."""
    mx = 1.0 - row_gram(_unit(fx), dtype)
    with torch.no_grad():
        mc = 1.0 - row_gram(_unit(fc), dtype)
    mx = mx / mx.sum(0, keepdim=True).clamp(min=1e-8)
    mc = mc / mc.sum(0, keepdim=True).clamp(min=1e-8)
    return (mx - mc).abs().mean() * fx.shape[0]


def _yuv_rows(rgb: torch.Tensor) -> torch.Tensor:
    """(N, 3) RGB rows in [0, 1] -> (N, 3) YUV rows of the colours in [-1, 1], the range STROTSS' and DST's code
    hold images in: their palette costs are twice those of [0, 1] colours, and the palette weight is theirs."""
    return rgb_to_yuv((2 * rgb.float() - 1).t().reshape(1, 3, -1, 1)).reshape(3, -1).t()


# ------------------------------------------------------------------------------------------- style and terms

class StrotssStyle:
    """The style side of STROTSS, precomputed once per scale: random hypercolumn samples of the style image and
    everything the terms need of them (unit vectors, YUV colours, mean and covariance).

    ``loss(hyper, α)`` = REMD_cos + moments + palette / max(α, 1) for (N, D) hypercolumns of the output.
    """

    def __init__(self, vgg, style: torch.Tensor, samples: int = 5000, generator: torch.Generator | None = None,
                 layers: tuple[str, ...] = HYPERCOLUMN_LAYERS, approx: StrotssApprox = FAST,
                 fp32_features: bool = False):
        self.layers, self.approx = layers, approx
        self.low_dtype = _product_dtype(style.device) if approx.low_precision else None
        with torch.no_grad():
            # VGG under the device's autocast (unless fp32_features); the statistics below always in fp32
            with autocast(style.device, enabled=not fp32_features):
                feats = vgg(style, list(layers))
            h, w = style.shape[2:]
            n = min(samples, h * w)
            pts = torch.stack([torch.rand(n, generator=generator) * (w - 1),
                               torch.rand(n, generator=generator) * (h - 1)], dim=1)
            self.samples = hypercolumns(feats, style, pts, layers, getattr(vgg, "feature_scale", 1.0)).detach()
            self.feature_moments = moments(self.samples[:, :-3])
            self.unit = _unit(self.samples[:, :-3])
            self.unit_low = self.unit.to(self.low_dtype) if self.low_dtype is not None else None
            self.yuv = _yuv_rows(self.samples[:, -3:])

    def loss(self, hyper: torch.Tensor, content_weight: float = 1.0) -> torch.Tensor:
        feats, rgb = hyper[:, :-3], hyper[:, -3:]
        if not self.approx.nearest_without_grad:
            remd = remd_loss(feats, self.samples[:, :-3], "cosine")
            palette = remd_loss(_yuv_rows(rgb), self.yuv, "euclidean")
        else:
            remd = remd_cosine_fast(feats, self.unit, self.unit_low)
            palette = remd_euclidean_fast(_yuv_rows(rgb), self.yuv)
        moment = (moment_loss_fast(feats, self.feature_moments, self.low_dtype) if self.approx.low_precision
                  else moment_loss(feats, self.feature_moments))
        return remd + moment + palette / max(content_weight, 1.0)


class StrotssTerms:
    """STROTSS's content and style terms at one scale, for the STROTSS engine and DST.

    Fixed per scale: the style samples (``StrotssStyle``) and the content's VGG features.  Each call draws fresh
    sample locations, shared by every image of the call, and returns the self-similarity content loss of the first
    image and the style loss of each image (DST passes X and its warp W(X)).
    """

    def __init__(self, vgg, content: torch.Tensor, style: torch.Tensor, *, alpha: float, generator: torch.Generator,
                 samples: int, style_samples: int, approx: StrotssApprox = FAST):
        self.vgg, self.alpha, self.gen, self.samples, self.approx = vgg, alpha, generator, samples, approx
        self.device = content.device
        self.fmt = memory_format(self.device)
        self.low_dtype = _product_dtype(self.device) if approx.low_precision else None
        self.content = content
        self.scale = getattr(vgg, "feature_scale", 1.0)
        self.style = StrotssStyle(vgg, style.contiguous(memory_format=self.fmt), style_samples, generator,
                                  approx=approx)
        with torch.no_grad(), autocast(self.device):
            # kept in VGG's output dtype: the gather reads them in fp32, so this is exact and half the memory
            self.content_feats = vgg(content.contiguous(memory_format=self.fmt), list(HYPERCOLUMN_LAYERS))

    def _hypercolumns(self, batch: torch.Tensor, corners: list) -> torch.Tensor:
        with autocast(self.device):
            feats = self.vgg(batch.contiguous(memory_format=self.fmt), list(HYPERCOLUMN_LAYERS))
        return batch_hypercolumns(feats, batch, None, corners=corners)

    def __call__(self, *images: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h, w = images[0].shape[2:]
        pts = sample_locations(h, w, self.samples, self.gen)
        maps = [self.content_feats[layer] for layer in HYPERCOLUMN_LAYERS] + [self.content]
        corners = hypercolumn_corners(maps, (h, w), pts, self.scale)       # the same for every image of the call
        hc = hypercolumns(self.content_feats, self.content, pts, corners=corners)
        content_loss, style_losses = None, []
        if len(images) > 1 and len(images) * h * w > BATCH_PIXELS:
            # large images: one VGG pass each, its activations recomputed in the backward pass instead of kept,
            # so that only one image's are alive at a time (the same gradients; one more forward pass each)
            hyper = [checkpoint(self._hypercolumns, image, corners, use_reentrant=False)[0] for image in images]
        else:
            # one VGG pass over all the images (the gather's backward fills the batch's gradient at once)
            hyper = self._hypercolumns(torch.cat(images) if len(images) > 1 else images[0], corners)
        for k, hx in enumerate(hyper):
            if k == 0:
                content_loss = (self_similarity_loss_fast(hx[:, :-3], hc[:, :-3], self.low_dtype)
                                if self.approx.low_precision else self_similarity_loss(hx[:, :-3], hc[:, :-3]))
            style_losses.append(self.style.loss(hx, self.alpha))
        return content_loss, style_losses


@torch.no_grad()
def measure_strotss(vgg, image: torch.Tensor, content: torch.Tensor, style: torch.Tensor, *, samples: int = 4096,
                    style_samples: int = 5000, seed: int = 0) -> dict[str, float]:
    """The exact STROTSS losses of ``image`` against ``content`` and ``style`` (all (1, 3, H, W) at the size to
    measure at), in fp32 with fixed sample locations: the one shared yardstick of benchmarks and tests.

    Returns ``style`` (REMD + moments + palette, palette weight 1), its parts ``remd``, ``moment``, ``palette``,
    and ``content`` (self-similarity against ``content``, which must have ``image``'s size)."""
    gen = torch.Generator().manual_seed(seed)
    ref = StrotssStyle(vgg, style.float(), style_samples, gen, approx=EXACT, fp32_features=True)
    h, w = image.shape[2:]
    pts = sample_locations(h, w, samples, gen)
    scale = getattr(vgg, "feature_scale", 1.0)
    hx = hypercolumns({k: v.float() for k, v in vgg(image.float(), list(HYPERCOLUMN_LAYERS)).items()}, image, pts,
                      feature_scale=scale)
    hc = hypercolumns({k: v.float() for k, v in vgg(content.float(), list(HYPERCOLUMN_LAYERS)).items()}, content,
                      pts, feature_scale=scale)
    remd = remd_loss(hx[:, :-3], ref.samples[:, :-3], "cosine").item()
    moment = moment_loss(hx[:, :-3], ref.feature_moments).item()
    palette = remd_loss(_yuv_rows(hx[:, -3:]), ref.yuv, "euclidean").item()
    return {"style": remd + moment + palette, "remd": remd, "moment": moment, "palette": palette,
            "content": self_similarity_loss(hx[:, :-3], hc[:, :-3]).item()}
