"""DST engine: jointly optimise a stylised image X and a keypoint-driven warp θ (Kim et al., ECCV 2020).

    L = α_s·L_content(X) + L_style(X) + L_style(W(X, θ)) + β·L_warp + γ·TV(f_θ),    output W(X, θ)

* Keypoints (``keypoints.py``, ``nbb.py``, ``cleaning.py``): artist pairs from ``options.keypoints`` and/or automatic
  Neural-Best-Buddies pairs, cleaned as in DST; the style points are mapped into the content frame by the inverse
  of the fitted similarity, giving targets T.  ``keypoint_mode``: ``markers`` (the given pairs), ``auto`` (NBB),
  ``both``, or ``none`` (the given pairs when there are any, NBB otherwise).
* W(X, θ): thin-plate-spline warp moving content point P_i to P_i + θ_i, with fixed border anchors (``tps.py``).
  L_warp = mean_i ‖T_i − (P_i + θ_i)‖ in working pixels; TV is the 4-direction mean squared difference of the
  dense flow (pixels of the current scale).
* Terms per ``options.variant``: ``strotss`` (self-similarity content, REMD + moments + palette style on sampled
  hypercolumns, ``impasto.losses.strotss``) or ``gatys`` (relu4_2 content, normalised Gram style on relu1_1..5_1,
  ``impasto.losses.gram``/``content``; weights as in ``impasto.engines.optim.gatys``).
* Optimisation as in DST's code: X is a 5-level Laplacian pyramid of the working-size image initialised from the
  content; 3 scales (1/4, 1/2, 1 of the working size) where scale s uses only the coarsest levels; α is scaled by
  4, 2, 1; one SGD (momentum 0.9) over the pyramid and θ (init ~1e-4).  ``options.schedule`` chooses the
  learning rate and steps per scale (``SCHEDULES``: the paper's, or the default fast one that stops a scale early
  once its loss is flat, ``optim/plateau.py``); ``options.steps`` runs exactly that many steps per scale.
* Output: X upsampled to the requested size, then warped there (the field is resolution independent) with the
  same bilinear sampling as in the loop.
* ``artifacts`` gets ``warp_overlay`` (points, targets and backward flow in result pixels, for the editors'
  overlay layers), ``keypoints`` (pairs used, in the coordinates of the tensors given; the registry maps them
  back to the caller's content), ``targets`` and ``warped_points`` ((K, 2) tensors in pixels of the content tensor
  this engine received), ``losses``, ``timings`` and ``debug_images`` (keypoint overlays, the warp grid, the
  unwarped X).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from impasto_protocol.options import KeypointPair, StylizeOptions

from ...host_memory import reusing_freed_memory
from ...precision import autocast, loss_scaler
from ...losses.content import content_loss
from ...losses.gram import gram_style_loss
from ...losses.strotss import FAST, StrotssApprox, StrotssTerms, measure_strotss
from ...losses.tv import tv_loss
from ..base import CancelCheck, EngineError, Progress, ProgressFn, check_cancel, never_cancel, no_progress
from ..optim.common import (OPTIMIZE_SHARE, finish_at_full_resolution, is_large, prepare, preview_of, resize_long_side,
                            scaled_progress)
from ..optim.gatys import CONTENT_LAYERS as GATYS_CONTENT, STYLE_LAYERS as GATYS_STYLE, GatysObjective
from ..optim.plateau import Plateau, PlateauRule
from ..optim.pyramid import laplacian_pyramid, synthesize
from .cleaning import CleanedPoints, Similarity, clean_correspondences, coverage
from .keypoints import KeypointError, pairs_to_tensors, tensors_to_pairs, validate_pairs
from .nbb import NBBConfig, neural_best_buddies
from .tps import BORDER_PER_SIDE, WarpedImage, fit_displacement, sample_backward, smooth_flow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """How long and how hard DST optimizes each scale (SGD, momentum 0.9, on the pyramid of our [0, 1] pixels)."""

    lr: float                             # the pyramid's learning rate, STROTSS terms
    steps_per_scale: int                  # the most a scale runs (``options.steps``: exactly that many)
    plateau: PlateauRule | None           # stop a scale early once its loss is flat (None: never)


# "paper": DST's job script (3 x 150 steps, SGD lr 0.3).  DST's code holds images in [-1, 1]: its 0.3 there is
# 0.3 / 4 on our [0, 1] pixels (half the gradient, twice the range).  "fast" (the default): 4x that step for at
# most 40 steps a scale, chosen on validation pairs to end within 5 % of the paper schedule's final losses
# (figures and how they were chosen: docs/optim.md).
SCHEDULES = {"paper": Schedule(lr=0.075, steps_per_scale=150, plateau=None),
             "fast": Schedule(lr=0.3, steps_per_scale=40, plateau=PlateauRule(window=10, min_fall=0.01, min_steps=30))}


@dataclass(frozen=True)
class DSTDefaults:
    steps_per_scale: int = 150            # the paper schedule's (DST's job script; the notebook uses 250)
    content_weight: float = 8.0           # α, STROTSS terms (× 4, 2, 1 over the scales)
    content_weight_gatys: float = 0.05    # α, Gatys terms (Gatys engine's default)
    warp_weight: float = 0.5              # β
    warp_tv_weight: float = 50.0          # γ
    lr_gatys: float = 0.3                 # the Gatys variant (ours, tuned on [0, 1] pixels), 150 steps a scale
    lr_theta: float = 0.3                 # θ, pixels (DST: warp_lr_fac 1 × 0.3), × K/8 above 8 points
    lr_adaptive: float = 0.01             # Adam / RMSprop on the pyramid (image units)
    lr_theta_adaptive: float = 0.3        # Adam / RMSprop on θ (pixels a step)
    momentum: float = 0.9
    scales: int = 3
    pyramid_levels: int = 5
    samples: int = 1024                   # hypercolumn locations per step (DST: 2048)
    style_samples: int = 5000
    nbb_size: int = 256
    max_points: int = 80
    min_distance: float = 10.0            # px in a 256 frame
    border_per_side: int = BORDER_PER_SIDE
    field_side: int = 64                  # inside the loop the flow is evaluated on a lattice this coarse (<0.1 px)


DEFAULTS = DSTDefaults()


# ------------------------------------------------------------------------------------------------- keypoints

def resolve_keypoints(content: torch.Tensor, style: torch.Tensor, options: StylizeOptions, *, device, vgg,
                      progress: ProgressFn = no_progress, cancel: CancelCheck = never_cancel) -> CleanedPoints:
    """The pairs DST uses, in pixel coordinates of ``content`` and ``style`` as given, with their targets.
    ``cancel`` is checked between NBB and the cleaning and inside the cleaning's quadratic loops."""
    ch, cw = content.shape[2:]
    sh, sw = style.shape[2:]
    mode = options.keypoint_mode
    if mode == "none":
        mode = "markers" if options.keypoints else "auto"
    markers = None
    if mode in ("markers", "both"):
        pairs = validate_pairs(options.keypoints, (cw, ch), (sw, sh), require=(mode == "markers"))
        if pairs:
            markers = pairs_to_tensors(pairs)
    if mode in ("auto", "both"):
        progress(Progress(0.0, "keypoints: neural best buddies"))
        t0 = time.perf_counter()
        found = neural_best_buddies(content, style, NBBConfig(image_size=DEFAULTS.nbb_size), device=device, vgg=vgg,
                                    cancel=cancel)
        log.info("NBB: %d raw pairs in %.1f s", found.content.shape[0], time.perf_counter() - t0)
        auto_c, auto_s, auto_w = found.content, found.style, found.activation
    else:
        auto_c = auto_s = torch.zeros(0, 2, dtype=torch.float64)
        auto_w = torch.zeros(0, dtype=torch.float64)
    check_cancel(cancel)
    cleaned = clean_correspondences(auto_c, auto_s, auto_w, content_size=(cw, ch), style_size=(sw, sh),
                                    markers=markers, im_size=DEFAULTS.nbb_size, max_points=DEFAULTS.max_points,
                                    min_distance=DEFAULTS.min_distance, cancel=cancel)
    cov = coverage(cleaned.content, (cw, ch))
    log.info("keypoints: %d markers, automatic %s; coverage: %.2f of the %dx%d grid's cells, hull %.2f of the image",
             cleaned.n_markers, cleaned.counts, cov.cells, cov.grid, cov.grid, cov.hull)
    return cleaned


# --------------------------------------------------------------------------------------------------- losses

class _StrotssTerms:
    """Content and style terms of one scale, STROTSS flavour (``impasto.losses.strotss.StrotssTerms``): the same
    sample locations for X and W(X)."""

    def __init__(self, vgg, content, style, alpha, gen, samples, style_samples, approx: StrotssApprox = FAST):
        self.terms = StrotssTerms(vgg, content, style, alpha=alpha, generator=gen, samples=samples,
                                  style_samples=style_samples, approx=approx)

    def __call__(self, x: torch.Tensor, wx: torch.Tensor | None):
        if wx is None:
            lc, (ls,) = self.terms(x)
            return lc, ls, None
        lc, (ls, ls_w) = self.terms(x, wx)
        return lc, ls, ls_w


class _GatysTerms:
    """Content and style terms of one scale, Gatys flavour (targets and normalisation from ``GatysObjective``)."""

    def __init__(self, vgg, content, style, options, device, fmt):
        self.vgg, self.device, self.fmt = vgg, device, fmt
        self.ref = GatysObjective(vgg, content, style, options, device, fmt)

    def __call__(self, x: torch.Tensor, wx: torch.Tensor | None):
        # two passes, not one batch of two: slicing a batch's features makes autograd zero-fill and sum full-size
        # gradients for every layer (measured 0.30 -> 0.19 s a step at 256)
        with autocast(self.device):
            fx = self.vgg(x.contiguous(memory_format=self.fmt), GATYS_STYLE + GATYS_CONTENT)
        lc = content_loss(fx, self.ref.content_targets, GATYS_CONTENT) * self.ref.content_norm
        ls = gram_style_loss(fx, self.ref.gram, self.ref.style_norm) / len(GATYS_STYLE)
        if wx is None:
            return lc, ls, None
        with autocast(self.device):
            fw = self.vgg(wx.contiguous(memory_format=self.fmt), GATYS_STYLE)
        return lc, ls, gram_style_loss(fw, self.ref.gram, self.ref.style_norm) / len(GATYS_STYLE)


# --------------------------------------------------------------------------------------------------- engine

def num_scales(content_short_side: int, style_short_side: int, wanted: int = DEFAULTS.scales,
               min_content: int = 32, min_style: int = 16) -> int:
    """DST's 3 scales (1/4, 1/2, 1), fewer when the coarsest would be under ``min_content`` px (content) or
    ``min_style`` px (style) on its short side: VGG's relu5 layers need 16 px."""
    n = wanted
    while n > 1 and (content_short_side / 2 ** (n - 1) < min_content or style_short_side / 2 ** (n - 1) < min_style):
        n -= 1
    return n


def _resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


@reusing_freed_memory
def stylize(content: torch.Tensor, style: torch.Tensor | None, options: StylizeOptions, *,
            progress: ProgressFn = no_progress, cancel: CancelCheck = never_cancel, device=None, on_tile=None,
            artifacts: dict | None = None, approx: StrotssApprox = FAST) -> torch.Tensor:
    """DST of ``content`` towards ``style`` (module docstring): keypoints -> objective -> schedule -> output.
    ``approx`` chooses the fast or the exact form of the STROTSS terms (benchmarks compare both)."""
    if style is None:
        raise EngineError("DST needs a style image")
    opt_name = options.optimizer or "sgd"
    if opt_name not in ("sgd", "adam", "rmsprop"):
        raise EngineError(f"DST optimizes with 'sgd' (default), 'adam' or 'rmsprop', not {opt_name!r}")
    device, fmt, vgg = prepare(device)
    gen = torch.Generator().manual_seed(options.seed)
    out_size = tuple(content.shape[2:])
    large = is_large(out_size)      # then the tiled full-resolution pass follows (impasto.tiling.optim_tiled)
    final_progress = progress
    if large:
        progress = scaled_progress(progress, 0.0, OPTIMIZE_SHARE)
    content, style = content[:, :3].float(), style[:, :3].float()

    kp, t_kp = _keypoints(content, style, options, device=device, vgg=vgg, progress=progress, cancel=cancel)
    obj = _objective(content, style, kp, options, device)
    run = _optimize(obj, options, opt_name, device=device, fmt=fmt, vgg=vgg, gen=gen, progress=progress,
                    cancel=cancel, approx=approx)
    out = _output(obj, run, out_size, large)
    log.info("DST %s: %d keypoints, keypoints %.1f s, optimisation %.1f s (%s steps), final %s",
             options.variant, obj.k, t_kp, run.seconds, " + ".join(map(str, run.steps_run)), run.last)
    if artifacts is not None:
        _fill_artifacts(artifacts, content, style, kp, obj, run, out, t_kp, large)
    if large:
        return finish_at_full_resolution(out.x.cpu(), out_size, style, options, progress=final_progress,
                                         cancel=cancel, on_tile=on_tile, device=device, read=out.warped.read)
    return out.result.cpu().contiguous()


# ---------------------------------------------------------------------------------------------- the phases

def _keypoints(content: torch.Tensor, style: torch.Tensor, options: StylizeOptions, *, device, vgg,
               progress: ProgressFn, cancel: CancelCheck) -> tuple[CleanedPoints, float]:
    """The cleaned pairs and their targets in the given images' pixels, and the seconds they took."""
    check_cancel(cancel)
    t0 = time.perf_counter()
    if options.warp_weight == 0 and not options.keypoints:
        # β = 0 is plain STROTSS/Gatys with DST's schedule: no keypoints needed, don't spend NBB's seconds
        kp = CleanedPoints(*(torch.zeros(0, 2, dtype=torch.float64),) * 3, torch.zeros(0, dtype=torch.float64),
                           Similarity.identity())
    else:
        kp = resolve_keypoints(content, style, options, device=device, vgg=vgg, progress=progress, cancel=cancel)
    t_kp = time.perf_counter() - t0
    check_cancel(cancel)
    return kp, t_kp


@dataclass
class _Objective:
    """The joint objective in the working frame: images at the working size, P and T there, and the weights."""

    c_full: torch.Tensor                  # content and style at the working size, on the device
    s_full: torch.Tensor
    frame: tuple[int, int]                # (w, h) of the working frame
    to_work: torch.Tensor                 # (sx, sy): given content pixels -> working pixels (float64)
    p_src: torch.Tensor                   # (K, 2) content points P, working pixels
    targets: torch.Tensor                 # (K, 2) targets T, working pixels
    k: int
    alpha: float                          # α (content), β (L_warp), γ (TV of the flow), style weight
    beta: float
    gamma: float
    sw: float
    use_warp: bool
    variant: str


def _objective(content: torch.Tensor, style: torch.Tensor, kp: CleanedPoints, options: StylizeOptions,
               device) -> _Objective:
    variant = options.variant
    c_full = resize_long_side(content, options.size).to(device)
    s_full = resize_long_side(style, options.size).to(device)
    h, w = c_full.shape[2:]
    to_work = torch.tensor([w / content.shape[3], h / content.shape[2]], dtype=torch.float64)
    p_src = (kp.content * to_work).float().to(device)
    targets = (kp.targets * to_work).float().to(device)
    k = p_src.shape[0]
    if k == 0 and options.warp_weight != 0:
        log.warning("DST: no keypoint pairs survived; the result is not warped")
    alpha = options.content_weight if options.content_weight is not None else (
        DEFAULTS.content_weight if variant == "strotss" else DEFAULTS.content_weight_gatys)
    beta = DEFAULTS.warp_weight if options.warp_weight is None else options.warp_weight
    gamma = DEFAULTS.warp_tv_weight if options.warp_tv_weight is None else options.warp_tv_weight
    sw = 1.0 if options.style_weight is None else options.style_weight
    return _Objective(c_full, s_full, (w, h), to_work, p_src, targets, k, alpha, beta, gamma, sw,
                      k > 0 and beta > 0, variant)


@dataclass
class _Run:
    """What the optimisation leaves: the pyramid of X, the displacements θ, per-scale steps, the last losses."""

    pyr: list[torch.Tensor]
    theta: torch.Tensor
    steps_run: list[int]
    last: dict[str, float]
    seconds: float


def _optimize(obj: _Objective, options: StylizeOptions, opt_name: str, *, device, fmt, vgg, gen: torch.Generator,
              progress: ProgressFn, cancel: CancelCheck, approx: StrotssApprox) -> _Run:
    """The schedule: X as a Laplacian pyramid and θ, optimised together scale by scale, coarse to fine."""
    scaler = loss_scaler(device)
    schedule = SCHEDULES[options.schedule] if obj.variant == "strotss" else Schedule(DEFAULTS.lr_gatys,
                                                                                       DEFAULTS.steps_per_scale, None)
    steps = options.steps or schedule.steps_per_scale
    n_scales = num_scales(min(obj.c_full.shape[2:]), min(obj.s_full.shape[2:]))
    start = obj.c_full if options.init == "content" else torch.rand(obj.c_full.shape, generator=gen).to(device)
    pyr = [p.detach().clone().requires_grad_(True) for p in laplacian_pyramid(start, DEFAULTS.pyramid_levels)]
    theta = (torch.rand(obj.k, 2, generator=gen) * 1e-4).to(device).requires_grad_(True)
    adaptive = opt_name in ("adam", "rmsprop")
    lr = options.learning_rate or (DEFAULTS.lr_adaptive if adaptive else schedule.lr)
    opt = _optimizer(opt_name, pyr, theta, obj, lr, adaptive)

    total_steps, done = steps * n_scales, 0
    steps_run: list[int] = []
    last: dict[str, float] = {}
    t_opt = time.perf_counter()
    for si in range(n_scales):
        begin = n_scales - 1 - si
        down = 2 ** begin
        with torch.no_grad():
            size_s = tuple(synthesize(pyr[begin:]).shape[2:])
        c_s = _resize_to(obj.c_full, size_s)
        s_s = resize_long_side(obj.s_full, max(16, round(max(obj.s_full.shape[2:]) / down)))
        alpha_s = obj.alpha * down
        terms = None        # the last scale's features go before this scale's are made (peak memory)
        if obj.variant == "strotss":
            terms = _StrotssTerms(vgg, c_s, s_s, alpha_s, gen, DEFAULTS.samples, DEFAULTS.style_samples, approx)
            # every sampled location adds its gradient to its pixels: in images with fewer than 2 pixels per
            # sample (a scale under ~45 px) each pixel's gradient grows as the pixels get fewer, and SGD at the
            # schedule's rate diverged (style loss 8 -> 1e6 in 8 steps at a 32 px scale); keep the step per pixel
            if not options.learning_rate and not adaptive:
                opt.param_groups[0]["lr"] = lr * min(1.0, size_s[0] * size_s[1] / (2 * DEFAULTS.samples))
        else:
            terms = _GatysTerms(vgg, c_s, s_s, options, device, fmt)
        plateau = None if options.steps or schedule.plateau is None else Plateau(schedule.plateau)
        for step in range(1, steps + 1):
            check_cancel(cancel)
            opt.zero_grad(set_to_none=True)
            x = synthesize(pyr[begin:])
            loss, wx, last = _loss(obj, terms, x, theta, alpha_s, size_s)
            if not torch.isfinite(loss):
                raise EngineError(f"DST diverged at scale {si + 1} step {step} (loss {last['total']:g}); lower the "
                                  f"learning rate (now {lr:g}) or the warp weights")
            scaler.backward(loss)
            scaler.step(opt)
            done += 1
            preview = None
            if options.preview_every and done % options.preview_every == 0:
                with torch.no_grad():
                    preview = preview_of(wx if wx is not None else x)
            progress(Progress(done / total_steps, f"scale {si + 1}/{n_scales} step {step}/{steps}", preview,
                              dict(last)))
            if plateau is not None and plateau.add(last["total"]):
                break
        steps_run.append(step)
        done = steps * (si + 1)
        log.debug("DST scale %d/%d (%dx%d), %d steps: %s", si + 1, n_scales, size_s[1], size_s[0], step, last)
    return _Run(pyr, theta, steps_run, last, time.perf_counter() - t_opt)


def _optimizer(opt_name: str, pyr: list[torch.Tensor], theta: torch.Tensor, obj: _Objective, lr: float,
               adaptive: bool) -> torch.optim.Optimizer:
    # SGD: L_warp is a mean over the K points, so each θ_i gets 1/K of the pull: with DST's lr a point moves at most
    # ~1.5/K px a step.  Scaling θ's lr by K/8 keeps that speed for any K (unchanged up to 8 points).  Adam and
    # RMSprop normalise each coordinate's step, so θ's lr is a step length in pixels of its own.
    lr_theta = DEFAULTS.lr_theta_adaptive if adaptive else DEFAULTS.lr_theta * max(1.0, obj.k / 8)
    params = [{"params": pyr}] + ([{"params": [theta], "lr": lr_theta}] if obj.use_warp else [])
    if opt_name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=DEFAULTS.momentum)
    if opt_name == "adam":
        return torch.optim.Adam(params, lr=lr)
    return torch.optim.RMSprop(params, lr=lr)


def _loss(obj: _Objective, terms, x: torch.Tensor, theta: torch.Tensor, alpha_s: float, size_s: tuple[int, int]
          ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, float]]:
    """L at one step (module docstring), W(X, θ) (None without a warp) and the terms' values."""
    if obj.use_warp:
        tps = fit_displacement(obj.p_src, obj.p_src + theta, obj.frame, DEFAULTS.border_per_side)
        flow = smooth_flow(tps, size_s, obj.frame, DEFAULTS.field_side)
        wx = sample_backward(x, flow)
    else:
        wx = None
    lc, ls_x, ls_w = terms(x, wx)
    loss = alpha_s * lc + obj.sw * ls_x
    last = {"content": lc.item(), "style": ls_x.item()}
    if obj.use_warp:
        l_warp = (obj.targets - (obj.p_src + theta)).norm(dim=1).mean()
        l_tv = tv_loss(flow, diagonals=True)
        loss = loss + obj.sw * ls_w + obj.beta * l_warp + obj.gamma * l_tv
        last.update({"style_warped": ls_w.item(), "warp": l_warp.item(), "flow_tv": l_tv.item()})
    last["total"] = loss.item()
    return loss, wx, last


@dataclass
class _Output:
    x: torch.Tensor                       # X at the working size (clamped)
    dst_pts: torch.Tensor                 # P + θ, working pixels
    unwarped: torch.Tensor                # X at the debug size (the result's, or the working size when large)
    flow: torch.Tensor                    # the backward flow at the debug size
    shown: torch.Tensor                   # W(X, θ) at the debug size
    result: torch.Tensor | None           # the result (not large), else None
    warped: WarpedImage | None            # large: the warp for the tiled full-resolution pass to read box by box


def _output(obj: _Objective, run: _Run, out_size: tuple[int, int], large: bool) -> _Output:
    """X upsampled to the requested size and warped there with the loop's bilinear sampling (or, for a large
    output, the warp handed to the tiled full-resolution pass)."""
    k, frame = obj.k, obj.frame
    warped = None
    with torch.no_grad():
        x = synthesize(run.pyr).clamp(0, 1).float()
        dst_pts = obj.p_src + run.theta.detach()
        tps = fit_displacement(obj.p_src.double(), dst_pts.double(), frame, DEFAULTS.border_per_side) if k > 0 else None
        if large:
            # never a full-size float image of X or a full-size field: the warp is read box by box by the tiled
            # full-resolution pass (the field is resolution independent); debug images at the working size
            field = tps if tps is not None else fit_displacement(obj.p_src.double(), obj.p_src.double(), frame)
            warped = WarpedImage(x.cpu(), field, frame, out_size)
            debug_size = tuple(x.shape[2:])
        else:
            debug_size = out_size
        unwarped = F.interpolate(x, size=debug_size, mode="bicubic", align_corners=False).clamp(0, 1)
        if k > 0:
            # exact up to 1024 px; above, on a 1025-point lattice (< 0.1 px off, 16x fewer kernel evaluations at 4096)
            flow = smooth_flow(tps, debug_size, frame, max_side=1024).float()
            # bilinear, as inside the loop: X was optimised through a bilinear warp, and bicubic resampling brings
            # back high frequencies the optimiser left for it to filter (3x the Gram style loss, measured)
            shown = sample_backward(unwarped, flow, mode="bilinear").clamp(0, 1)
        else:
            flow = torch.zeros(1, 2, *debug_size, device=x.device)
            shown = unwarped
    return _Output(x, dst_pts, unwarped, flow, shown, None if large else shown, warped)


def _fill_artifacts(artifacts: dict, content: torch.Tensor, style: torch.Tensor, kp: CleanedPoints,
                    obj: _Objective, run: _Run, out: _Output, t_kp: float, large: bool) -> None:
    from_work = (1.0 / obj.to_work).float().to(out.dst_pts.device)
    artifacts["keypoints"] = tensors_to_pairs(kp.content, kp.style)
    artifacts["targets"] = (kp.targets.float()).cpu()
    artifacts["warped_points"] = (out.dst_pts * from_work).cpu()
    artifacts["losses"] = dict(run.last)
    artifacts["timings"] = {"keypoints": t_kp, "optimization": run.seconds}
    artifacts["steps"] = run.steps_run
    # for the editors' warp overlay: points, targets and the backward flow, in pixels of the result
    artifacts["warp_overlay"] = {"points": kp.content.float().cpu(), "targets": kp.targets.float().cpu(),
                                 "flow": out.flow.float().cpu()}
    shown_points = out.dst_pts if large else out.dst_pts * from_work
    artifacts["debug_images"] = _debug_images(content if not large else resize_long_side(content, max(obj.frame)),
                                              style, kp if not large else _scaled_points(kp, obj.to_work),
                                              out.shown, out.unwarped, out.flow, shown_points.cpu())


def _scaled_points(kp: CleanedPoints, scale: torch.Tensor) -> CleanedPoints:
    """``kp`` with its content-frame points (content, targets) scaled by ``scale`` (x, y), for debug overlays."""
    return dataclasses.replace(kp, content=kp.content * scale, targets=kp.targets * scale)


@torch.no_grad()
def style_distance(image: torch.Tensor, style: torch.Tensor, variant: str = "gatys", *, size: int | None = None,
                   device=None, seed: int = 0) -> float:
    """A fixed measure of how far ``image`` is from ``style`` in the terms of ``variant`` (for benchmarks and
    tests): the normalised Gram loss (gatys) or REMD + moments + palette on hypercolumns (strotss, fixed samples).
    Both images are resized to long side ``size`` (default: the image's)."""
    device, fmt, vgg = prepare(device)
    size = size or max(image.shape[2:])
    x = resize_long_side(image[:, :3].float(), size).to(device)
    s = resize_long_side(style[:, :3].float(), size).to(device)
    if variant == "gatys":
        opts = StylizeOptions(engine="dst", variant="gatys")
        _, ls, _ = _GatysTerms(vgg, x, s, opts, device, fmt)(x, None)
        return float(ls)
    return measure_strotss(vgg, x, x, s, samples=4096, style_samples=DEFAULTS.style_samples, seed=seed)["style"]


def _debug_images(content, style, kp: CleanedPoints, result, unwarped, flow, warped_points) -> dict:
    from .debug import draw_keypoints, draw_warp_grid
    return {
        "keypoints_content": draw_keypoints(content.cpu(), kp.content, kp.targets),
        "keypoints_style": draw_keypoints(style.cpu(), kp.style),
        "keypoints_result": draw_keypoints(result.cpu(), warped_points),
        "warp_grid": draw_warp_grid(result.cpu(), flow.cpu()),
        "unwarped": unwarped.cpu(),
    }


__all__ = ["stylize", "resolve_keypoints", "style_distance", "DEFAULTS", "KeypointError", "KeypointPair"]
