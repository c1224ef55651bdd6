"""Engine registry: one entry point, ``stylize``, that every caller (CLI, daemon, benchmarks) uses.

It does what is common to all engines -- validate options, split off alpha, resize the content to the output size,
call the engine, apply colour preservation and strength, put alpha back -- and dispatches to the engine module
named in ``ENGINE_MODULES``.  Each engine module exposes ``stylize(content, style, options, *, progress, cancel,
device, on_tile, artifacts)`` returning a (1, 3, H, W) tensor in [0, 1] of the same size as the content it was
given.  ``artifacts``, when a dict is passed, receives named side products for callers that want them, e.g.
``"keypoints"`` (list of ``KeypointPair`` a DST run used) and ``"debug_images"`` ({name: (1,3,h,w) tensor}).
An engine module with ``TILE_HELPERS = True`` (MT) also takes ``helpers``: other devices it may run tiles on.
"""
from __future__ import annotations

import dataclasses
import importlib
import logging
from typing import Optional

import torch
import torch.nn.functional as F

from impasto_protocol.options import StylizeOptions, scale_pairs

from .base import CancelCheck, Cancelled, EngineError, Progress, ProgressFn, TileFn, never_cancel, no_progress
from .postprocess import apply_strength_and_color

log = logging.getLogger(__name__)

ENGINE_MODULES = {
    "gatys": "impasto.engines.optim.gatys",
    "strotss": "impasto.engines.optim.strotss",
    "dst": "impasto.engines.dst.engine",
    "mt": "impasto.engines.mt.engine",
}

__all__ = ["stylize", "output_size", "Cancelled", "EngineError", "Progress", "ENGINE_MODULES"]


def output_size(height: int, width: int, options: StylizeOptions) -> tuple[int, int]:
    """(H, W) of the result for a content of (height, width): long side = ``max_side`` or ``size``."""
    long_side = options.max_side or options.size
    scale = long_side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def load_engine(name: str):
    try:
        module_name = ENGINE_MODULES[name]
    except KeyError:
        raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINE_MODULES)}") from None
    return importlib.import_module(module_name)


def stylize(content: torch.Tensor, style: Optional[torch.Tensor], options: StylizeOptions, *,
            progress: ProgressFn = no_progress, cancel: CancelCheck = never_cancel,
            device: Optional[torch.device] = None, on_tile: Optional[TileFn] = None,
            artifacts: Optional[dict] = None, helpers=None) -> torch.Tensor:
    """Stylize ``content`` ((1,3|4,H,W) float in [0,1]) and return the result at ``output_size``.

    A 4th (alpha) channel is carried through unchanged (resized with the image).  ``on_tile`` receives finished
    tiles (already colour-preserved and strength-blended) for engines that produce tiles.  ``helpers``: other
    devices of ``device``'s type, or a ``tiling.devices.DeviceLender``, that engines with tiles spread over
    devices (``TILE_HELPERS``) may use; the others ignore it.
    """
    options.validate()
    if content.dim() != 4 or content.shape[0] != 1 or content.shape[1] not in (3, 4):
        raise EngineError(f"content must be a (1, 3|4, H, W) tensor, got {tuple(content.shape)}")
    if style is not None and (style.dim() != 4 or style.shape[1] not in (3, 4)):
        raise EngineError(f"style must be a (1, 3|4, H, W) tensor, got {tuple(style.shape)}")
    if style is not None:
        style = style[:, :3]
    if options.engine != "mt" and style is None:
        raise EngineError(f"engine {options.engine!r} needs a style image")
    engine = load_engine(options.engine)

    out_h, out_w = output_size(content.shape[2], content.shape[3], options)
    kp_scale = (out_w / content.shape[3], out_h / content.shape[2])
    if options.keypoints and kp_scale != (1.0, 1.0):
        # keypoints refer to the content as given: follow it to the output size (and back in the artifacts below)
        options = dataclasses.replace(options, keypoints=scale_pairs(options.keypoints, kp_scale))
    if (out_h, out_w) != tuple(content.shape[2:]):
        content = F.interpolate(content, size=(out_h, out_w), mode="bicubic", align_corners=False,
                                antialias=True).clamp_(0, 1)
    rgb, alpha = content[:, :3], (content[:, 3:] if content.shape[1] == 4 else None)

    tile_cb = None
    if on_tile is not None:
        def tile_cb(x: int, y: int, tile: torch.Tensor) -> None:
            h, w = tile.shape[2:]
            src = rgb[:, :, y:y + h, x:x + w].to(tile.device, tile.dtype)
            on_tile(x, y, apply_strength_and_color(tile, src, options))

    log.info("stylize engine=%s out=%dx%d size=%d", options.engine, out_w, out_h, options.size)
    extra = {"helpers": helpers} if helpers is not None and getattr(engine, "TILE_HELPERS", False) else {}
    result = engine.stylize(rgb, style, options, progress=progress, cancel=cancel, device=device, on_tile=tile_cb,
                            artifacts=artifacts, **extra)
    result = result.to(rgb.device, torch.float32)
    if artifacts is not None and artifacts.get("keypoints") and kp_scale != (1.0, 1.0):
        artifacts["keypoints"] = scale_pairs(artifacts["keypoints"], (1 / kp_scale[0], 1 / kp_scale[1]))
    if tuple(result.shape[2:]) != (out_h, out_w):
        result = F.interpolate(result, size=(out_h, out_w), mode="bicubic", align_corners=False).clamp_(0, 1)
    result = apply_strength_and_color(result, rgb, options)
    if alpha is not None:
        result = torch.cat([result, alpha], dim=1)
    return result
