"""STROTSS (Kolkin, Salavon, Shakhnarovich, CVPR 2019): style transfer by relaxed optimal transport and
self-similarity, optimized coarse to fine.

Per scale (long side 64, 128, … up to ``options.size``): the image is a Laplacian pyramid (5 levels) optimized with
RMSprop (``SCHEDULES``: the paper's rates and 200 steps a scale, or the default fast schedule).  Each step samples
1024 locations, takes hypercolumns of the output and of the content there, and minimizes
(α·L_selfsim + L_remd + L_moment + L_palette/max(α,1)) / (α + 2); α starts at 16 × ``content_weight`` (default 1;
× the schedule's ``content_scale``) and halves every scale.  A scale starts from the previous result upsampled plus
the content's detail band (the finest band is left to the optimizer at the last scale), as in the original.
The fast schedule stops a coarse scale early once its loss is flat (``plateau.py``) and gives the last scale a
budget of its own; ``options.steps`` runs exactly that many per scale.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from impasto_protocol.options import StylizeOptions

from ...host_memory import reusing_freed_memory
from ...precision import loss_scaler
from ...losses.strotss import FAST, StrotssApprox, StrotssTerms
from ..base import CancelCheck, EngineError, Progress, ProgressFn, check_cancel, never_cancel, no_progress
from .common import OPTIMIZE_SHARE, finish_at_full_resolution, is_large, prepare, preview_of, resize_long_side, scaled_progress
from .plateau import Plateau, PlateauRule
from .pyramid import laplacian_pyramid, synthesize

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    """How long and how hard STROTSS optimizes each scale (RMSprop on the pyramid of our [0, 1] pixels)."""

    lr: float
    lr_last: float                  # at the last (finest) scale
    steps_per_scale: int            # the most a scale runs (``options.steps``: exactly that many)
    plateau: PlateauRule | None     # stop a scale early once its loss is flat (None: never)
    last_steps: int | None = None   # the last scale's budget when it differs from the others'
    content_scale: float = 1.0      # α × this: larger steps move the content further, a schedule may hold it
    plateau_last: bool = True       # whether the plateau stop applies at the last scale too

    def steps_at(self, is_last: bool) -> int:
        return self.last_steps if is_last and self.last_steps else self.steps_per_scale


# "paper": futscdav/strotss (200 steps a scale, RMSprop 2e-3, 1e-3 at the last scale).  RMSprop steps are ~lr per
# pixel in the image's units: those rates on its [-1, 1] images are 1e-3 (5e-4) on our [0, 1] pixels.  "fast"
# (the default): twice the step, at most 40 steps a coarse scale (plateau stop) and 100 at the last, with α × 1.1
# (the larger steps move the content further): chosen on two validation pairs to end within 5 % of the paper
# schedule's final losses (docs/optim.md).
SCHEDULES = {"paper": Schedule(lr=1e-3, lr_last=5e-4, steps_per_scale=200, plateau=None),
             "fast": Schedule(lr=2e-3, lr_last=1e-3, steps_per_scale=40,
                              plateau=PlateauRule(window=10, min_fall=0.01, min_steps=30),
                              last_steps=100, plateau_last=False, content_scale=1.1)}


@dataclass(frozen=True)
class StrotssDefaults:
    content_weight: float = 1.0      # × 16, halved per scale
    min_side: int = 64
    samples: int = 1024
    style_samples: int = 5000
    pyramid_levels: int = 5


DEFAULTS = StrotssDefaults()


def scale_sizes(size: int, min_side: int = DEFAULTS.min_side) -> list[int]:
    """Long sides of the scales, coarse to fine, ending at ``size``: e.g. 512 -> [64, 128, 256, 512]."""
    n = max(1, int(math.floor(math.log2(max(size, min_side) / min_side))) + 1)
    return [max(16, round(size / 2 ** (n - 1 - i))) for i in range(n)]


class StrotssObjective:
    """The STROTSS loss at one scale, (α·L_selfsim + L_style) / (α + 2), on the shared terms of
    ``impasto.losses.strotss``."""

    def __init__(self, vgg, content: torch.Tensor, style: torch.Tensor, alpha: float, generator: torch.Generator,
                 samples: int | None = None, approx: StrotssApprox = FAST):
        self.alpha = alpha
        self.terms = StrotssTerms(vgg, content, style, alpha=alpha, generator=generator,
                                  samples=samples or DEFAULTS.samples, style_samples=DEFAULTS.style_samples,
                                  approx=approx)

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        l_content, (l_style,) = self.terms(x)
        total = (self.alpha * l_content + l_style) / (self.alpha + 2)
        return total, {"content": l_content.detach().item(), "style": l_style.detach().item(),
                       "total": total.detach().item()}


@reusing_freed_memory
def stylize(content: torch.Tensor, style: torch.Tensor | None, options: StylizeOptions, *,
            progress: ProgressFn = no_progress, cancel: CancelCheck = never_cancel, device=None, on_tile=None,
            artifacts: dict | None = None, approx: StrotssApprox = FAST) -> torch.Tensor:
    """STROTSS of ``content`` towards ``style`` (module docstring); ``approx`` chooses the fast or the exact form
    of the terms (benchmarks compare both)."""
    if style is None:
        raise EngineError("STROTSS needs a style image")
    if options.optimizer not in (None, "rmsprop", "adam"):
        raise EngineError(f"STROTSS optimizes with 'rmsprop' (default) or 'adam', not {options.optimizer!r}")
    device, fmt, vgg = prepare(device)
    scaler = loss_scaler(device)
    out_size = tuple(content.shape[2:])
    large = is_large(out_size)      # then the tiled full-resolution pass follows (impasto.tiling.optim_tiled)
    report = scaled_progress(progress, 0.0, OPTIMIZE_SHARE) if large else progress
    gen = torch.Generator().manual_seed(options.seed)
    sizes = scale_sizes(options.size)
    schedule = SCHEDULES[options.schedule]
    budgets = [options.steps or schedule.steps_at(i == len(sizes) - 1) for i in range(len(sizes))]
    alpha = 16.0 * schedule.content_scale * (DEFAULTS.content_weight if options.content_weight is None
                                             else options.content_weight)
    total_steps, done = sum(budgets), 0
    steps_run: list[int] = []
    x: torch.Tensor | None = None
    last: dict[str, float] = {}
    for si, long_side in enumerate(sizes):
        is_last, steps = si == len(sizes) - 1, budgets[si]
        c = resize_long_side(content[:, :3].float(), long_side).to(device)
        s = resize_long_side(style[:, :3].float(), long_side).to(device)
        if x is None:
            if options.init == "noise":
                start = torch.rand(c.shape, generator=gen).to(device)
            else:
                # the content's structure with the style's mean colour at the coarsest band (STROTSS' init)
                c_pyr = laplacian_pyramid(c, DEFAULTS.pyramid_levels)
                c_pyr[-1] = c_pyr[-1] - c.mean((2, 3), keepdim=True) + s.mean((2, 3), keepdim=True)
                start = synthesize(c_pyr)
        else:
            start = F.interpolate(x, size=c.shape[2:], mode="bilinear", align_corners=False)
            if not is_last:
                c_detail = c - F.interpolate(F.interpolate(c, size=x.shape[2:], mode="bilinear", align_corners=False,
                                                           antialias=True),
                                             size=c.shape[2:], mode="bilinear", align_corners=False)
                start = start + c_detail
        objective = None    # the last scale's features go before this scale's are made (peak memory)
        objective = StrotssObjective(vgg, c, s, alpha, gen, approx=approx)
        pyr = [p.detach().clone().requires_grad_(True) for p in laplacian_pyramid(start.clamp(0, 1),
                                                                                   DEFAULTS.pyramid_levels)]
        lr = options.learning_rate or (schedule.lr_last if is_last else schedule.lr)
        opt = (torch.optim.Adam(pyr, lr=lr) if options.optimizer == "adam" else torch.optim.RMSprop(pyr, lr=lr))
        plateau = (None if options.steps or schedule.plateau is None or (is_last and not schedule.plateau_last)
                   else Plateau(schedule.plateau))
        for step in range(1, steps + 1):
            check_cancel(cancel)
            opt.zero_grad(set_to_none=True)
            img = synthesize(pyr)
            loss, last = objective(img)
            scaler.backward(loss)
            scaler.step(opt)
            done += 1
            preview = (preview_of(synthesize(pyr)) if options.preview_every and done % options.preview_every == 0
                       else None)
            report(Progress(done / total_steps, f"scale {si + 1}/{len(sizes)} step {step}/{steps}", preview,
                            dict(last)))
            if plateau is not None and plateau.add(last["total"]):
                break
        steps_run.append(step)
        done = sum(budgets[:si + 1])
        with torch.no_grad():
            x = synthesize(pyr).clamp(0, 1)
        alpha /= 2
    log.info("STROTSS: %s steps, final %s", " + ".join(map(str, steps_run)), last)
    if artifacts is not None:
        artifacts["losses"] = dict(last)
        artifacts["steps"] = steps_run
    result = x.detach().float()
    if large:
        return finish_at_full_resolution(result.cpu(), out_size, style, options, progress=progress, cancel=cancel,
                                         on_tile=on_tile, device=device)
    if tuple(result.shape[2:]) != out_size:
        result = F.interpolate(result, size=out_size, mode="bicubic", align_corners=False).clamp(0, 1)
    return result.cpu().contiguous()
