"""DST's keypoint cleaning (papers.md B.6) and the similarity alignment of style points into the content frame.

Steps for automatic (NBB) correspondences, in a frame where each image's long side is ``im_size`` (256):

1. drop weak pairs (accumulated NBB activation < ``min_activation``);
2. greedy selection: repeatedly take the strongest remaining pair and discard every pair whose content point lies
   within ``min_distance`` px (a (2b+1)² box) of it, up to ``max_points``;
3. fit a similarity (Umeyama: rotation, uniform scale, translation) content → style and map the style points into
   the content frame with its inverse: these *targets* are where the warp should move the content points, so the
   warp captures the shape difference and not the framing;
4. remove crossing pairs: for each pair in order of strength, drop every weaker pair whose segment content point →
   target crosses its segment; done twice, refitting the similarity in between.

Added here (not in DST's code): before step 3, automatic pairs whose aligned target lies more than ``max_shift``
(32 px at 256) from their content point are dropped and the similarity refitted on the rest, a few rounds
(a robust fit): between a photo and a painting NBB also pairs clothes and background across the picture.

Artist-placed pairs ("markers") are never dropped: they go first, automatic pairs near them or crossing them are
removed instead, and crossings between markers are only reported (``CleanedPoints.crossing_markers``).

Targets of markers (not DST's choice): a marker is an instruction, so its target is the style point as placed,
carried into the content frame by the frames' scaling only, (x·Wc/Ws, y·Hc/Hs) (``frame_targets``).  The fitted
similarity would take out any move the markers share with each other: with 4 markers pinning the corners and 5 on a
disk asking it to move 26 px, the fit moved the disk's targets only 11.6 px (``bench/bench_dst_alignment.py``).
When markers are given, the automatic pairs around them get frame targets too, so both agree on one frame
(``target_mapping="auto"``); without markers, automatic pairs keep DST's similarity-aligned targets.  The similarity
is fitted in every case: it drives the robust filter and is reported.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from ..base import CancelCheck, check_cancel, never_cancel

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------------- similarity

@dataclass
class Similarity:
    """y = scale · R x + t for (N, 2) point rows."""

    scale: float
    rotation: torch.Tensor      # (2, 2)
    translation: torch.Tensor   # (2,)

    def apply(self, pts: torch.Tensor) -> torch.Tensor:
        r, t = self.rotation.to(pts), self.translation.to(pts)
        return self.scale * pts @ r.t() + t

    def inverse(self) -> "Similarity":
        r_inv = self.rotation.t()
        return Similarity(1.0 / self.scale, r_inv, -(r_inv @ self.translation) / self.scale)

    @staticmethod
    def identity() -> "Similarity":
        return Similarity(1.0, torch.eye(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))


def umeyama(src: torch.Tensor, dst: torch.Tensor, estimate_scale: bool = True) -> Similarity:
    """Least-squares similarity with dst ≈ s R src + t (Umeyama 1991), R a proper rotation (det +1).

    Fewer than 2 distinct points cannot fix a rotation/scale: then only the translation is fitted."""
    src, dst = src.double(), dst.double()
    n = src.shape[0]
    if n == 0:
        return Similarity.identity()
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    var_s = xs.pow(2).sum() / n
    if n < 2 or var_s < 1e-12:
        return Similarity(1.0, torch.eye(2, dtype=torch.float64), mu_d - mu_s)
    cov = xd.t() @ xs / n
    u, sing, vh = torch.linalg.svd(cov)
    d = torch.ones(2, dtype=torch.float64)
    if torch.det(u) * torch.det(vh) < 0:       # reflection: flip the weakest axis
        d[1] = -1.0
    r = u @ torch.diag(d) @ vh
    scale = float((sing * d).sum() / var_s) if estimate_scale else 1.0
    if scale <= 1e-9:
        scale = 1.0
    t = mu_d - scale * r @ mu_s
    return Similarity(scale, r, t)


def consensus_similarity(content: torch.Tensor, style: torch.Tensor, threshold: float, *, hypotheses: int = 2000,
                         pool: int = 400, seed: int = 0) -> torch.Tensor:
    """Inlier mask of the content → style similarity that the most pairs agree with (RANSAC over 2-pair
    hypotheses, deterministic for a given ``seed``): a pair is an inlier when its style point mapped back by the
    similarity lies within ``threshold`` of its content point.  Hypotheses are drawn from the ``pool`` strongest
    pairs (the rows are expected strongest first).

    Why: across domains (a photo and a painting) NBB pairs the clothes and background as well as the face, and
    a least-squares fit started on all pairs lands between the two; refitting on its near pairs then kept only
    the few that happened to agree (kodim04 × Matisse: 14 of 79, all on one eye and the mouth)."""
    n = content.shape[0]
    if n < 3:
        return torch.ones(n, dtype=torch.bool)
    g = torch.Generator().manual_seed(seed)
    m = min(n, pool)
    i = torch.randint(0, m, (hypotheses,), generator=g)
    j = torch.randint(0, m, (hypotheses,), generator=g)
    ok = i != j
    i, j = i[ok], j[ok]
    ca, cb = torch.view_as_complex(content[i].double().contiguous()), torch.view_as_complex(content[j].double().contiguous())
    sa, sb = torch.view_as_complex(style[i].double().contiguous()), torch.view_as_complex(style[j].double().contiguous())
    dc = cb - ca
    good = dc.abs() > 1e-6
    z = (sb - sa)[good] / dc[good]                     # scale · rotation, content → style
    t = sa[good] - z * ca[good]
    keep = (z.abs() > 0.2) & (z.abs() < 5.0)           # no degenerate or absurd scales
    z, t = z[keep], t[keep]
    if z.numel() == 0:
        return torch.ones(n, dtype=torch.bool)
    cc = torch.view_as_complex(content.double().contiguous())
    ss = torch.view_as_complex(style.double().contiguous())
    best, best_count = None, -1
    for zc, tc in zip(z.split(256), t.split(256)):
        back = (ss.unsqueeze(0) - tc.unsqueeze(1)) / zc.unsqueeze(1)      # (H, N): style points in content frame
        inl = (back - cc.unsqueeze(0)).abs() <= threshold
        cnt = inl.sum(1)
        k = int(cnt.argmax())
        if int(cnt[k]) > best_count:
            best, best_count = inl[k], int(cnt[k])
    for _ in range(3):                                 # refine on the inliers (least squares), re-select
        sim = umeyama(content[best], style[best])
        new = (sim.inverse().apply(style.double()) - content.double()).norm(dim=1) <= threshold
        if new.sum() < 3 or torch.equal(new, best):
            break
        best = new
    return best


# ------------------------------------------------------------------------------------------------ selection

def select_greedy(points: torch.Tensor, strength: torch.Tensor, max_points: int = 80, min_distance: float = 10.0,
                  taken: torch.Tensor | None = None) -> torch.Tensor:
    """Indices of up to ``max_points`` points, strongest first, none within the (2b+1)² box (b = ``min_distance``)
    of an earlier pick or of a point in ``taken`` (M, 2)."""
    order = torch.argsort(strength, descending=True, stable=True)
    alive = torch.ones(points.shape[0], dtype=torch.bool)
    if taken is not None and taken.numel():
        near = ((points.unsqueeze(1) - taken.unsqueeze(0)).abs().amax(-1) <= min_distance).any(1)
        alive &= ~near
    picked: list[int] = []
    for i in order.tolist():
        if len(picked) >= max_points:
            break
        if not alive[i]:
            continue
        picked.append(i)
        alive &= (points - points[i]).abs().amax(-1) > min_distance
    return torch.tensor(picked, dtype=torch.long)


def segments_cross(a0: torch.Tensor, a1: torch.Tensor, b0: torch.Tensor, b1: torch.Tensor) -> torch.Tensor:
    """Whether segment a0→a1 properly crosses each segment b0[k]→b1[k] (shared end points and touching do not
    count).  a0, a1: (2,); b0, b1: (K, 2)."""
    def orient(p, q, r):
        return (q[..., 0] - p[..., 0]) * (r[..., 1] - p[..., 1]) - (q[..., 1] - p[..., 1]) * (r[..., 0] - p[..., 0])
    d1, d2 = orient(b0, b1, a0.expand_as(b0)), orient(b0, b1, a1.expand_as(b0))
    d3, d4 = orient(a0.expand_as(b0), a1.expand_as(b0), b0), orient(a0.expand_as(b0), a1.expand_as(b0), b1)
    return (d1 * d2 < 0) & (d3 * d4 < 0)


def crossing_survivors(starts: torch.Tensor, ends: torch.Tensor, n_fixed: int = 0,
                       cancel: CancelCheck = never_cancel) -> torch.Tensor:
    """Boolean keep-mask: walking in order, a segment is dropped when it crosses an earlier kept one.  The first
    ``n_fixed`` segments are always kept.  Quadratic in the pairs, so ``cancel`` is checked every 32 of them."""
    k = starts.shape[0]
    keep = torch.ones(k, dtype=torch.bool)
    for i in range(k):
        if i % 32 == 31:
            check_cancel(cancel)
        if not keep[i] or i + 1 >= k:
            continue
        later = torch.arange(i + 1, k)
        later = later[keep[later] & (later >= n_fixed)]
        if later.numel() == 0:
            continue
        cross = segments_cross(starts[i], ends[i], starts[later], ends[later])
        keep[later[cross]] = False
    return keep


def count_crossings(starts: torch.Tensor, ends: torch.Tensor) -> int:
    total = 0
    for i in range(starts.shape[0] - 1):
        total += int(segments_cross(starts[i], ends[i], starts[i + 1:], ends[i + 1:]).sum())
    return total


# ------------------------------------------------------------------------------------------------- pipeline

@dataclass
class CleanedPoints:
    """Pairs after cleaning, in the coordinates they were given in (content points, style points), plus the
    targets (style points mapped into the content frame) and the fitted content → style similarity."""

    content: torch.Tensor          # (K, 2)
    style: torch.Tensor            # (K, 2)
    targets: torch.Tensor          # (K, 2), content frame
    strength: torch.Tensor         # (K,), markers get +inf
    similarity: Similarity
    n_markers: int = 0
    counts: dict = field(default_factory=dict)     # how many survived each step, for logs and reports
    crossing_markers: int = 0


def frame_similarity(content_size: tuple[float, float], style_size: tuple[float, float]) -> Similarity:
    """Content → style similarity from the frames alone: scale by the long sides, centres on each other."""
    scale = max(style_size) / max(content_size)
    c_centre = torch.tensor([content_size[0] / 2, content_size[1] / 2], dtype=torch.float64)
    s_centre = torch.tensor([style_size[0] / 2, style_size[1] / 2], dtype=torch.float64)
    return Similarity(scale, torch.eye(2, dtype=torch.float64), s_centre - scale * c_centre)


def frame_targets(style: torch.Tensor, content_size: tuple[float, float],
                  style_size: tuple[float, float]) -> torch.Tensor:
    """Style points (K, 2) carried into the content frame by the frames alone: (x·Wc/Ws, y·Hc/Hs).  This is where
    an artist who placed a pair asked the content point to go: the same place relative to the picture's edges."""
    scale = torch.tensor([content_size[0] / style_size[0], content_size[1] / style_size[1]],
                         dtype=torch.float64, device=style.device)
    return style.double() * scale


TARGET_MAPPINGS = ("auto", "frame", "similarity")


def align_targets(content: torch.Tensor, style: torch.Tensor, content_size: tuple[float, float],
                  margin: float = 0.0, style_size: tuple[float, float] | None = None,
                  min_fit: int = 3) -> tuple[torch.Tensor, Similarity]:
    """Style points mapped into the content frame by the inverse of the content → style similarity, clamped to
    [margin, W − margin] × [margin, H − margin].  With fewer than ``min_fit`` pairs a fitted similarity would
    absorb every displacement (one or two pairs fit exactly), so the frames' similarity is used instead when
    ``style_size`` is given."""
    if content.shape[0] < min_fit and style_size is not None:
        sim = frame_similarity(content_size, style_size)
    else:
        sim = umeyama(content, style)
    t = sim.inverse().apply(style.double())
    w, h = content_size
    t[:, 0] = t[:, 0].clamp(margin, w - margin)
    t[:, 1] = t[:, 1].clamp(margin, h - margin)
    return t, sim


def clean_correspondences(content: torch.Tensor, style: torch.Tensor, strength: torch.Tensor, *,
                          content_size: tuple[int, int], style_size: tuple[int, int],
                          markers: tuple[torch.Tensor, torch.Tensor] | None = None, im_size: int = 256,
                          min_activation: float = 1.0, max_points: int = 80, min_distance: float = 10.0,
                          target_margin: float = 5.0, max_shift: float | None = 32.0,
                          target_mapping: str = "auto", consensus: bool = True,
                          cancel: CancelCheck = never_cancel) -> CleanedPoints:
    """DST's cleaning of automatic pairs (``content``/``style`` (K, 2) pixel points in each image, ``strength``
    the accumulated NBB activation), merged with optional artist ``markers`` (content, style) that always stay.

    ``target_mapping`` says how style points become targets in the content frame: ``"similarity"`` (DST: the
    inverse of the content → style similarity fitted on all pairs, clamped ``target_margin`` from the edges),
    ``"frame"`` (``frame_targets``: the frames' scaling only; markers are not clamped), or ``"auto"``: ``"frame"``
    when there are markers, ``"similarity"`` otherwise.
    ``consensus`` (with ``max_shift``): before selection keep only the automatic pairs that agree with the
    similarity most pairs agree with (``consensus_similarity``; in the working frame, within ``max_shift``).

    Distances (``min_distance``, ``target_margin``, ``max_shift``) are in pixels of a frame whose long side is
    ``im_size``.  ``max_shift`` (None: off) drops automatic pairs whose aligned target is farther than that from
    their content point, refitting the similarity on the rest (markers always stay and always count).
    Returns points in the input coordinates."""
    if target_mapping not in TARGET_MAPPINGS:
        raise ValueError(f"target_mapping must be one of {TARGET_MAPPINGS}, got {target_mapping!r}")
    content, style, strength = content.double(), style.double(), strength.double()
    cs = im_size / max(content_size)          # content pixels -> working frame
    ss = im_size / max(style_size)
    counts = {"raw": int(content.shape[0])}
    strong = strength >= min_activation
    content, style, strength = content[strong], style[strong], strength[strong]
    counts["strong"] = int(content.shape[0])

    if markers is not None and markers[0].numel():
        mc, ms = markers[0].double().reshape(-1, 2), markers[1].double().reshape(-1, 2)
    else:
        mc, ms = content.new_zeros(0, 2), content.new_zeros(0, 2)
    n_fixed = mc.shape[0]
    use_frame = target_mapping == "frame" or (target_mapping == "auto" and n_fixed > 0)

    if consensus and max_shift is not None and content.shape[0] >= 3:
        # robust alignment before selection (not in DST's code): the selection then spends its 80 picks on pairs
        # that agree with one similarity, instead of on background pairs the later filter throws away
        order = torch.argsort(strength, descending=True, stable=True)
        content, style, strength = content[order], style[order], strength[order]
        agree = consensus_similarity(content * cs, style * ss, max_shift)
        content, style, strength = content[agree], style[agree], strength[agree]
    counts["agreeing"] = int(content.shape[0])
    idx = select_greedy(content * cs, strength, max(0, max_points - n_fixed), min_distance, taken=mc * cs)
    content, style, strength = content[idx], style[idx], strength[idx]
    counts["selected"] = int(content.shape[0])

    c_size = (content_size[0] * cs, content_size[1] * cs)
    s_size = (style_size[0] * ss, style_size[1] * ss)
    if max_shift is not None and content.shape[0] + n_fixed >= 3:
        # robust alignment (not in DST's code): refit on the pairs whose aligned target lies within max_shift of
        # their content point and drop the others -- NBB between a photo and a painting finds pairs on clothes and
        # background whose targets lie across the picture, and one such pair folds the warp
        keep = torch.ones(content.shape[0], dtype=torch.bool)
        for _ in range(4):
            sim = umeyama(torch.cat([mc * cs, content[keep] * cs]), torch.cat([ms * ss, style[keep] * ss]))
            shift = (sim.inverse().apply(style * ss) - content * cs).norm(dim=1)
            new_keep = shift <= max_shift
            if new_keep.sum() + n_fixed < 3 or torch.equal(new_keep, keep):
                break
            keep = new_keep
        content, style, strength = content[keep], style[keep], strength[keep]
    counts["consistent"] = int(content.shape[0])
    all_c = torch.cat([mc, content]) * cs
    all_s = torch.cat([ms, style]) * ss
    all_w = torch.cat([torch.full((n_fixed,), float("inf"), dtype=torch.float64), strength])

    def targets_of(c: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, Similarity]:
        if not c.shape[0]:
            return c.clone(), Similarity.identity()
        t, fitted = align_targets(c, s, c_size, target_margin, s_size)
        if use_frame:
            t = frame_targets(s, c_size, s_size)
            t[n_fixed:, 0] = t[n_fixed:, 0].clamp(target_margin, c_size[0] - target_margin)
            t[n_fixed:, 1] = t[n_fixed:, 1].clamp(target_margin, c_size[1] - target_margin)
        return t, fitted

    for _ in range(2):
        targets, _sim = targets_of(all_c, all_s)
        check_cancel(cancel)
        keep = crossing_survivors(all_c, targets, n_fixed, cancel)
        all_c, all_s, all_w = all_c[keep], all_s[keep], all_w[keep]
    counts["uncrossed"] = int(all_c.shape[0]) - n_fixed
    targets, sim_work = targets_of(all_c, all_s)
    crossing_markers = count_crossings(all_c[:n_fixed], targets[:n_fixed]) if n_fixed > 1 else 0
    if crossing_markers:
        log.warning("%d pair(s) of keypoint markers cross each other (content point → aligned style point); the "
                    "warp will fold there — check the marker numbering", crossing_markers)
    # back to input coordinates; the similarity is re-expressed between the input frames
    sim = Similarity(sim_work.scale * cs / ss, sim_work.rotation, sim_work.translation / ss)
    return CleanedPoints(content=all_c / cs, style=all_s / ss, targets=targets / cs, strength=all_w,
                         similarity=sim, n_markers=n_fixed, counts=counts, crossing_markers=crossing_markers)


# -------------------------------------------------------------------------------------------------- coverage

def _hull_area(points: torch.Tensor) -> float:
    """Area of the convex hull of (N, 2) points (monotone chain); 0 for fewer than 3 or collinear points."""
    pts = sorted(set(map(tuple, points.double().tolist())))
    if len(pts) < 3:
        return 0.0

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
    lower: list = []
    upper: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = lower[:-1] + upper[:-1]
    return abs(sum(hull[i][0] * hull[i - 1][1] - hull[i - 1][0] * hull[i][1] for i in range(len(hull)))) / 2


@dataclass
class Coverage:
    """How well keypoints spread over a picture, so a warp can reshape all of it and not one corner.

    ``cells``: the fraction of the cells of a k × k grid over the image (k = ``grid``, 4 by default: 16 cells)
    holding at least one point.  ``hull``: the area of the points' convex hull ÷ the image's area.  Both are over
    the whole frame: a portrait's background holds nothing both pictures share, so neither reaches 1 there; compare
    figures of the same pair of images."""

    cells: float
    hull: float
    grid: int = 4


def coverage(points: torch.Tensor, size: tuple[float, float], grid: int = 4) -> Coverage:
    """``Coverage`` of (N, 2) pixel points (x, y) in an image of ``size`` = (W, H)."""
    w, h = float(size[0]), float(size[1])
    if points.numel() == 0:
        return Coverage(0.0, 0.0, grid)
    p = points.double().reshape(-1, 2)
    gx = (p[:, 0] / w * grid).floor().clamp(0, grid - 1).long()
    gy = (p[:, 1] / h * grid).floor().clamp(0, grid - 1).long()
    cells = torch.unique(gy * grid + gx).numel() / grid ** 2
    return Coverage(cells, _hull_area(p) / (w * h), grid)
