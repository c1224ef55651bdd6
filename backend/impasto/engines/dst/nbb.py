"""Automatic correspondences: Neural Best Buddies (Aberman et al., SIGGRAPH 2018) on VGG19, vectorised.

Coarse to fine over relu5_1 → relu4_1 → relu3_1 → relu2_1 (``fast``, DST's default) [→ relu1_1]:

* Both images are resized to a ``image_size``² square (as NBB does) and run through VGG19 once.
* Deepest level: the features of both images are brought to a *common appearance* (each channel's mean and
  standard deviation set to the average of the two images'), L2-normalised per position, and compared as 3×3
  patches (sum of cosines) over the whole map.  Best buddies are mutual nearest neighbours.
* Each finer level refines every pair found so far: its *receptive regions* -- the 2×2 children of the parent
  position and ``radius`` cells around them, in both images -- get a common appearance of their own (per-region
  mean/std alignment, a closed form instead of the reference code's feature inversion), and the mutual nearest
  neighbours between the two regions (patch correlation) become the pairs of this level.
* A pair survives a level only if both positions have a normalised response (‖F‖ per position, min-max stretched
  to [0, 1] per image and level) of at least ``tau``; a pair's activation is the mean of the two responses,
  accumulated from its ancestors (DST's cleaning keeps pairs with accumulated activation >= 1).
* Duplicates are merged (keeping the strongest), pairs within ``border`` px of an edge are dropped, and positions
  are returned in each image's own pixel coordinates (x, y; pixel centres at +0.5).

Every step is a batched tensor operation over all regions (chunked to bound memory): the reference code loops
over pixels in Python and takes minutes; this takes seconds at 256 px on a CPU (``bench/bench_nbb.py``).
Patch sizes and radii per level follow the reference (patch 5, 5, 3, 3, 3 and radius 3, 3, 2, 2, 2 for
levels 1..5); the deepest level searches globally where the reference searched ±2 cells around the identity.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...vgg import get_vgg
from ..base import CancelCheck, check_cancel, never_cancel

log = logging.getLogger(__name__)

LEVEL_LAYERS = {1: "relu1_1", 2: "relu2_1", 3: "relu3_1", 4: "relu4_1", 5: "relu5_1"}
PATCH = {1: 5, 2: 5, 3: 3, 4: 3, 5: 3}
RADIUS = {1: 3, 2: 3, 3: 2, 4: 2, 5: 2}
REGION_CHUNK_ELEMENTS = 1 << 24      # floats per image per chunk of regions (~64 MB)


@dataclass
class NBBConfig:
    image_size: int = 256        # both images are squashed to this square
    fast: bool = True            # stop at relu2_1 (2 px precision); False: go down to relu1_1
    tau: float = 0.05            # minimum normalised response at each level
    border: float = 7.0          # drop pairs this close to an edge (px in the square frame)
    max_pairs_per_level: int = 4000    # keep the strongest pairs when a level finds more (bounds the time)


@dataclass
class Correspondences:
    """Pairs in each image's pixel coordinates (x, y), with their accumulated activation (strength)."""

    content: torch.Tensor        # (K, 2)
    style: torch.Tensor          # (K, 2)
    activation: torch.Tensor     # (K,)
    per_level: dict = field(default_factory=dict)   # pairs found at each level, for logs


# ------------------------------------------------------------------------------------------------- helpers

def _response(f: torch.Tensor) -> torch.Tensor:
    """(C, H, W) → (H, W) channel norm, min-max stretched to [0, 1]."""
    r = f.norm(dim=0)
    lo, hi = r.min(), r.max()
    return (r - lo) / (hi - lo).clamp(min=1e-12)


def _common_appearance(fa: torch.Tensor, fb: torch.Tensor, ma: torch.Tensor, mb: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Per region and channel, move both regions' mean/std to their average.  f: (P, C, h, w); m: (P, 1, h, w)
    validity masks (positions outside the image are 0 and stay 0)."""
    def stats(f, m):   # f is already 0 where m is 0
        n = m.sum((2, 3), keepdim=True).clamp(min=1.0)
        mu = f.sum((2, 3), keepdim=True) / n
        var = f.pow(2).sum((2, 3), keepdim=True) / n - mu.pow(2)
        return mu, var.clamp(min=1e-10).sqrt()
    mu_a, sd_a = stats(fa, ma)
    mu_b, sd_b = stats(fb, mb)
    mu, sd = (mu_a + mu_b) / 2, (sd_a + sd_b) / 2
    gain_a, gain_b = sd / sd_a, sd / sd_b
    return torch.addcmul(mu - mu_a * gain_a, fa, gain_a) * ma, torch.addcmul(mu - mu_b * gain_b, fb, gain_b) * mb


def _patch_scores(fa: torch.Tensor, fb: torch.Tensor, k: int, n: int) -> torch.Tensor:
    """Patch correlation of every k×k patch of window A with every one of window B: (P, C, m, m) windows
    (m = n + k − 1) → (P, n², n²), the sum over the k² patch offsets of the cosine of the features there.

    Computed from the position-to-position dot products (P, m², m²) and k² shifted slice sums, which is
    ~C·k²·n⁴ / (C·m⁴ + k²·n⁴) times cheaper than comparing flattened patch vectors."""
    p, c, m, _ = fa.shape
    ua = F.normalize(fa, dim=1, eps=1e-8).reshape(p, c, m * m)
    ub = F.normalize(fb, dim=1, eps=1e-8).reshape(p, c, m * m)
    d = (ua.transpose(1, 2) @ ub).reshape(p, m, m, m, m)
    s = d.new_zeros(p, n, n, n, n)
    for dy in range(k):
        for dx in range(k):
            s += d[:, dy:dy + n, dx:dx + n, dy:dy + n, dx:dx + n]
    return s.reshape(p, n * n, n * n)


def _mutual(scores: torch.Tensor, valid_a: torch.Tensor, valid_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mutual nearest neighbours in (P, Na, Nb) scores → (P, Na) bool mask and the matched b index per a."""
    scores = scores.masked_fill(~valid_a.unsqueeze(2), float("-inf")).masked_fill(~valid_b.unsqueeze(1),
                                                                                  float("-inf"))
    a2b = scores.argmax(2)                       # (P, Na)
    b2a = scores.argmax(1)                       # (P, Nb)
    back = torch.gather(b2a, 1, a2b)
    idx = torch.arange(scores.shape[1], device=scores.device).unsqueeze(0)
    ok = (back == idx) & valid_a & torch.gather(valid_b, 1, a2b)
    return ok, a2b


def _windows(f: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int, pad: int
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Square windows of ``size`` starting at (top, left) (may lie partly outside) from (C, H, W) ``f`` →
    (P, C, size, size) features and (P, 1, size, size) validity mask."""
    c, h, w = f.shape
    fp = F.pad(f, (pad, pad, pad, pad))
    ar = torch.arange(size, device=f.device)
    rows = top.unsqueeze(1) + ar                 # (P, size)
    cols = left.unsqueeze(1) + ar
    win = fp[:, (rows + pad).unsqueeze(2), (cols + pad).unsqueeze(1)]      # (C, P, size, size)
    valid = ((rows >= 0) & (rows < h)).unsqueeze(2) & ((cols >= 0) & (cols < w)).unsqueeze(1)
    return win.permute(1, 0, 2, 3), valid.unsqueeze(1).to(f.dtype)


# -------------------------------------------------------------------------------------------------- levels

def _deepest_level(fa: torch.Tensor, fb: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Global mutual nearest neighbours on (C, H, W) maps → positions (K, 2) (row, col) in A and in B."""
    c, h, w = fa.shape
    ma = torch.ones(1, 1, h, w, dtype=fa.dtype, device=fa.device)
    pad = k // 2
    a, b = _common_appearance(fa.unsqueeze(0), fb.unsqueeze(0), ma, ma)
    if h != w:
        raise ValueError(f"NBB works on square feature maps, got {h}x{w}")
    scores = _patch_scores(F.pad(a, (pad,) * 4), F.pad(b, (pad,) * 4), k, h)    # (1, HW, HW)
    valid = torch.ones(1, h * w, dtype=torch.bool, device=fa.device)
    ok, a2b = _mutual(scores, valid, valid)
    ia = torch.nonzero(ok[0]).squeeze(1)
    ib = a2b[0, ia]
    return torch.stack([ia // w, ia % w], 1), torch.stack([ib // w, ib % w], 1)


def _refine_level(fa: torch.Tensor, fb: torch.Tensor, parents_a: torch.Tensor, parents_b: torch.Tensor,
                  k: int, radius: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Children of each parent pair: mutual NNs between the two receptive regions at this level.

    Returns (row, col) positions in A and B and the index of the parent of each child."""
    c, h, w = fa.shape
    n = 2 + 2 * radius                      # region side: the 2x2 children ± radius
    m = n + k - 1                           # plus the patch margin
    pad = radius + k
    out_a, out_b, out_parent = [], [], []
    per_region = c * m * m
    chunk = max(1, REGION_CHUNK_ELEMENTS // per_region)
    for start in range(0, parents_a.shape[0], chunk):
        pa_, pb_ = parents_a[start:start + chunk], parents_b[start:start + chunk]
        top_a, left_a = 2 * pa_[:, 0] - radius, 2 * pa_[:, 1] - radius
        top_b, left_b = 2 * pb_[:, 0] - radius, 2 * pb_[:, 1] - radius
        wa, va = _windows(fa, top_a - k // 2, left_a - k // 2, m, pad)
        wb, vb = _windows(fb, top_b - k // 2, left_b - k // 2, m, pad)
        ca, cb = _common_appearance(wa, wb, va, vb)
        scores = _patch_scores(ca, cb, k, n)                   # (P, n², n²)
        core_a = va[:, 0, k // 2:k // 2 + n, k // 2:k // 2 + n].reshape(-1, n * n) > 0
        core_b = vb[:, 0, k // 2:k // 2 + n, k // 2:k // 2 + n].reshape(-1, n * n) > 0
        ok, a2b = _mutual(scores, core_a, core_b)
        p_idx, ia = torch.nonzero(ok, as_tuple=True)
        ib = a2b[p_idx, ia]
        out_a.append(torch.stack([top_a[p_idx] + ia // n, left_a[p_idx] + ia % n], 1))
        out_b.append(torch.stack([top_b[p_idx] + ib // n, left_b[p_idx] + ib % n], 1))
        out_parent.append(p_idx + start)
    if not out_a:
        empty = torch.zeros(0, 2, dtype=torch.long, device=fa.device)
        return empty, empty, torch.zeros(0, dtype=torch.long, device=fa.device)
    return torch.cat(out_a), torch.cat(out_b), torch.cat(out_parent)


def _dedup(pos_a: torch.Tensor, pos_b: torch.Tensor, act: torch.Tensor, h: int, w: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Merge identical pairs, keeping the strongest activation."""
    key = ((pos_a[:, 0] * w + pos_a[:, 1]) * (h * w) + pos_b[:, 0] * w + pos_b[:, 1])
    order = torch.argsort(act, descending=True, stable=True)
    key, pos_a, pos_b, act = key[order], pos_a[order], pos_b[order], act[order]
    uniq, inverse = torch.unique(key, return_inverse=True)
    first = torch.full((uniq.shape[0],), key.shape[0], dtype=torch.long, device=key.device)
    first.scatter_reduce_(0, inverse, torch.arange(key.shape[0], device=key.device), reduce="amin")
    first = first.sort().values
    return pos_a[first], pos_b[first], act[first]


# ------------------------------------------------------------------------------------------------ pipeline

def _square(x: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(x[:, :3].float(), size=(size, size), mode="bicubic", align_corners=False,
                         antialias=True).clamp(0, 1)


@torch.no_grad()
def neural_best_buddies(content: torch.Tensor, style: torch.Tensor, config: NBBConfig | None = None, *,
                        device: torch.device | str | None = None, vgg=None,
                        cancel: CancelCheck = never_cancel) -> Correspondences:
    """Best-buddy pairs between ``content`` and ``style`` ((1, 3, H, W) in [0, 1], any sizes).  Seconds of work
    before DST's first step: ``cancel`` is checked after the VGG pass and before each level."""
    cfg = config or NBBConfig()
    device = torch.device(device) if device is not None else content.device
    vgg = vgg if vgg is not None else get_vgg(device)
    s = cfg.image_size
    final = 2 if cfg.fast else 1
    layers = [LEVEL_LAYERS[lv] for lv in range(final, 6)]
    a = _square(content.to(device), s)
    b = _square(style.to(device), s)
    feats = vgg(torch.cat([a, b]).contiguous(), layers)
    check_cancel(cancel)
    per_level: dict[str, int] = {}

    lv = 5
    fa, fb = feats[LEVEL_LAYERS[lv]][0].float(), feats[LEVEL_LAYERS[lv]][1].float()
    pos_a, pos_b = _deepest_level(fa, fb, PATCH[lv])
    act = torch.zeros(pos_a.shape[0], device=device)
    pos_a, pos_b, act = _threshold(fa, fb, pos_a, pos_b, act, cfg.tau)
    per_level[LEVEL_LAYERS[lv]] = int(pos_a.shape[0])
    for lv in range(4, final - 1, -1):
        check_cancel(cancel)
        fa, fb = feats[LEVEL_LAYERS[lv]][0].float(), feats[LEVEL_LAYERS[lv]][1].float()
        ca, cb, parent = _refine_level(fa, fb, pos_a, pos_b, PATCH[lv], RADIUS[lv])
        pos_a, pos_b, act = _threshold(fa, fb, ca, cb, act[parent], cfg.tau)
        pos_a, pos_b, act = _dedup(pos_a, pos_b, act, fa.shape[1], fa.shape[2])
        if pos_a.shape[0] > cfg.max_pairs_per_level:
            keep = torch.argsort(act, descending=True)[:cfg.max_pairs_per_level]
            pos_a, pos_b, act = pos_a[keep], pos_b[keep], act[keep]
        per_level[LEVEL_LAYERS[lv]] = int(pos_a.shape[0])

    stride = s / fa.shape[1]
    xy_a = (pos_a.flip(1).double() + 0.5) * stride          # (x, y) in the square frame
    xy_b = (pos_b.flip(1).double() + 0.5) * stride
    inside = ((xy_a >= cfg.border) & (xy_a <= s - cfg.border)).all(1) & \
             ((xy_b >= cfg.border) & (xy_b <= s - cfg.border)).all(1)
    xy_a, xy_b, act = xy_a[inside], xy_b[inside], act[inside]
    ch, cw = content.shape[2:]
    sh, sw = style.shape[2:]
    scale_a = torch.tensor([cw / s, ch / s], dtype=torch.float64, device=xy_a.device)
    scale_b = torch.tensor([sw / s, sh / s], dtype=torch.float64, device=xy_b.device)
    log.info("NBB pairs per level %s; %d after border removal", per_level, int(act.shape[0]))
    return Correspondences(content=(xy_a * scale_a).cpu(), style=(xy_b * scale_b).cpu(),
                           activation=act.double().cpu(), per_level=per_level)


def _threshold(fa, fb, pos_a, pos_b, act, tau):
    ra, rb = _response(fa), _response(fb)
    va = ra[pos_a[:, 0], pos_a[:, 1]]
    vb = rb[pos_b[:, 0], pos_b[:, 1]]
    keep = (va >= tau) & (vb >= tau)
    return pos_a[keep], pos_b[keep], act[keep] + ((va + vb) / 2)[keep]
