"""MT inference: the ``mt`` engine behind ``impasto.engines.stylize``.

The content arrives already at the output size; the style model is named by ``options.style_name`` (a shipped or
user-trained style, see ``styles``).  One pass runs the levels at the sizes ``level_plan`` chooses for the output
(the style subnet near the 256 px it was trained at, the refine level only where there is room).
``--strength`` and ``--preserve-color`` are applied by the registry, as for every engine.  Very large outputs are
the tiling module's job (it reuses ``load_style_model`` and the subnets).

Precision: the net runs in the dtype ``impasto.precision`` gives inference on the device (``IMPASTO_PRECISION``
overrides, docs/gpu.md).  ``IMPASTO_MT_COMPILE=1`` wraps the subnets in ``torch.compile(dynamic=True)``, which pays
only in a long-lived daemon (compiling takes far longer than one forward; figures and ``bench/bench_mt_speed.py``:
docs/mt.md, "Speed").
"""
from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Optional

import torch

from ...device import default_device
from ...precision import policy
from ..base import EngineError, Progress, check_cancel, never_cancel, no_progress
from .model_file import ModelFileError, StyleMetadata, load_model
from .level_plan import level_plan
from .network import MultimodalTransferNet, resize
from .styles import find_style, style_names

log = logging.getLogger(__name__)

_cache: dict[tuple, tuple[MultimodalTransferNet, StyleMetadata]] = {}
TILED_ABOVE = 2048      # output long side above which the refine level is tiled (impasto.tiling.mt_tiled);
                        # up to here the one-piece pass is faster (tiling needs exact streamed IN statistics)
_cache_lock = threading.Lock()


def load_style_model(name: str, device: torch.device) -> tuple[MultimodalTransferNet, StyleMetadata]:
    """The network for style ``name`` on ``device`` (cached per file, modification time and device; one model is
    kept resident per device, so workers on two devices do not evict each other's).  Callers may run the returned
    net from several threads at once: nothing in a forward pass mutates it (the tiled path works on module objects
    of its own, ``tiling.devices.replicate``)."""
    info = find_style(name)
    if info is None:
        known = ", ".join(style_names()) or "none installed"
        raise EngineError(f"no MT style called {name!r}; available styles: {known} (see `impasto styles`)")
    if not info.ok:
        raise ModelFileError(info.error)
    path = Path(info.path)
    key = (str(path.resolve()), path.stat().st_mtime_ns, str(device))
    with _cache_lock:
        if key not in _cache:
            net, meta = load_model(path, device)
            net = net.to(memory_format=policy(device, "inference").memory_format)
            if os.environ.get("IMPASTO_MT_COMPILE", "") == "1":
                for level in ("style", "enhance", "refine"):
                    setattr(net, level, torch.compile(getattr(net, level), dynamic=True))
            for old in [k for k in _cache if k[2] == str(device)]:
                del _cache[old]                 # keep one model resident per device
            _cache[key] = (net, meta)
        return _cache[key]


@torch.inference_mode()
def run_levels(net: MultimodalTransferNet, content: torch.Tensor, device: torch.device, *,
               progress=no_progress, cancel=never_cancel) -> list[torch.Tensor]:
    """The level outputs for ``content`` (1,3,H,W) [0,1] at output size, fp32 on ``device``, at the sizes
    ``level_plan`` gives (two outputs when the plan stops after the enhance level); the last is clamped to [0, 1]
    and resized to the output size (clamped first, as the tiled path's tiles are: the two then agree)."""
    prec = policy(device, "inference")
    x = content.to(device, torch.float32).contiguous(memory_format=prec.memory_format)
    plan = level_plan(x.shape[-2], x.shape[-1])
    steps = [(net.style, plan.style), (net.enhance, plan.enhance)]
    if plan.refine is not None:
        steps.append((net.refine, plan.refine))
    outs: list[torch.Tensor] = []
    with prec.autocast():
        y = x
        for k, (sub, size) in enumerate(steps):
            check_cancel(cancel)
            y = sub(resize(y, size))
            outs.append(y.float())
            progress(Progress((k + 1) / len(steps), f"level {k + 1}/{len(steps)}"))
    outs[-1] = resize(outs[-1].clamp(0, 1), plan.output)
    return outs


TILE_HELPERS = True     # the registry passes ``helpers`` (other devices for refine tiles) to this engine


def stylize(content: torch.Tensor, style: Optional[torch.Tensor], options, *, progress=no_progress,
            cancel=never_cancel, device: Optional[torch.device] = None, on_tile=None,
            artifacts: Optional[dict] = None, helpers=None) -> torch.Tensor:
    """MT-stylize ``content`` (module docstring).  ``helpers``: other devices (or a ``tiling.devices.DeviceLender``)
    the tiled path may also run refine tiles on; the untiled pass ignores them.  With ``artifacts``, a tiled run
    records ``tiles_by_device`` there."""
    if style is not None:
        log.info("mt: ignoring the style image; the style is the trained model %r", options.style_name)
    if not options.style_name:
        raise EngineError("engine 'mt' needs a style name (see `impasto styles`)")
    device = device or default_device()
    net, meta = load_style_model(options.style_name, device)
    # --- large canvases (impasto.tiling, issue 5): above TILED_ABOVE px, or when a tile size is given, the refine
    # level runs tile by tile with whole-canvas instance-norm statistics.  Up to TILED_ABOVE the tiles follow the
    # level plan, so a tile size changes the memory used, not the picture; a plan without a refine level (outputs
    # up to 724 px) has nothing to tile and runs in one piece.
    long_side = max(content.shape[-2:])
    plan = level_plan(*content.shape[-2:])
    if long_side > TILED_ABOVE or (options.tile_size and plan.refine is not None):
        from ...tiling.mt_tiled import stylize_tiled
        report: dict = {}
        planned = long_side <= TILED_ABOVE
        resized = planned and plan.refine != plan.output
        out = stylize_tiled(net, content, options, progress, cancel, None if resized else on_tile, device=device,
                            helpers=helpers, report=report, levels=plan if planned else None)
        if resized:
            out = resize(out, plan.output).clamp(0, 1)
            if on_tile is not None:
                on_tile(0, 0, out)
        if artifacts is not None:
            artifacts["style"] = meta.name
            artifacts["tiles_by_device"] = report["tiles_by_device"]
        return out
    # --- end large canvases
    outs = run_levels(net, content, device, progress=progress, cancel=cancel)
    result = outs[-1].clamp(0, 1)
    if artifacts is not None:
        artifacts["debug_images"] = {f"mt_{name}": o.clamp(0, 1).cpu()
                                     for name, o in zip(("style", "enhance", "refine"), outs)}
        artifacts["style"] = meta.name
    if on_tile is not None:
        on_tile(0, 0, result)
    return result
