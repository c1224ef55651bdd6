"""Deterministic engines that need no weights, for tests and benchmarks of the daemon.

They exist so the daemon's transport, queue, cancel and liveness behaviour can be tested and benchmarked without
VGG or trained models.  They are not part of the product: ``tests/support/serve.py`` registers ``TEST_ENGINES``
into a daemon through ``DaemonConfig.extra_engines`` (the hook is described in ``impasto/daemon/config.py``).

- ``identity``: returns the content at the output size (alpha kept), like the registry does before an engine runs;
  with ``tile_size`` set it also reports its result tile by tile (``on_tile``), like a tiled engine.
- ``sleep``: ``steps`` steps (default 20) of ``learning_rate`` seconds each (default 0.05), reporting progress and
  checking cancel after every step (a preview every ``preview_every`` steps), then returns like ``identity``.
- ``invert``: returns 1 − the content's colour (alpha kept): a stylized image that differs from the content
  everywhere and is exactly known, for the feathered-selection tests.
- ``fail``: raises RuntimeError (an engine bug).   ``oom``: raises MemoryError (out of memory).
"""
from __future__ import annotations

import time
from typing import Optional

import torch
import torch.nn.functional as F

from impasto.engines import output_size
from impasto.engines.base import CancelCheck, Progress, ProgressFn, TileFn, check_cancel, never_cancel, no_progress


def _resized(content: torch.Tensor, options) -> torch.Tensor:
    out_h, out_w = output_size(content.shape[2], content.shape[3], options)
    if (out_h, out_w) != tuple(content.shape[2:]):
        content = F.interpolate(content, size=(out_h, out_w), mode="bicubic", align_corners=False,
                                antialias=True).clamp_(0, 1)
    return content


def stylize(name: str, content: torch.Tensor, style: Optional[torch.Tensor], options, *,
            progress: ProgressFn = no_progress, cancel: CancelCheck = never_cancel,
            on_tile: Optional[TileFn] = None, **_: object) -> torch.Tensor:
    if name == "identity":
        check_cancel(cancel)
        out = _resized(content, options)
        if on_tile is not None and options.tile_size:       # behave like a tiled engine: RGB tiles as they finish
            ts = options.tile_size
            for y in range(0, out.shape[2], ts):
                for x in range(0, out.shape[3], ts):
                    on_tile(x, y, out[:, :3, y:y + ts, x:x + ts])
        progress(Progress(1.0, "identity"))
        return out
    if name == "sleep":
        steps = options.steps or 20
        dt = options.learning_rate if options.learning_rate is not None else 0.05
        for i in range(steps):
            check_cancel(cancel)
            time.sleep(dt)
            preview = None
            if options.preview_every and (i + 1) % options.preview_every == 0:
                preview = content[:, :3]
            progress(Progress((i + 1) / steps, f"step {i + 1}/{steps}", preview=preview,
                              losses={"step": float(i + 1)}))
        check_cancel(cancel)
        return _resized(content, options)
    if name == "invert":
        check_cancel(cancel)
        out = _resized(content, options)
        progress(Progress(1.0, "invert"))
        return torch.cat([1.0 - out[:, :3], out[:, 3:]], dim=1)
    if name == "fail":
        raise RuntimeError("the 'fail' test engine always fails")
    if name == "oom":
        raise MemoryError("the 'oom' test engine pretends to run out of memory")
    raise KeyError(name)


def _engine(name: str):
    def run(content: torch.Tensor, style: Optional[torch.Tensor], options, **kw: object) -> torch.Tensor:
        return stylize(name, content, style, options, **kw)          # type: ignore[arg-type]
    run.__name__ = f"{name}_engine"
    return run


# name -> stylize(content, style, options, *, progress, cancel, on_tile): what DaemonConfig.extra_engines takes
TEST_ENGINES = {name: _engine(name) for name in ("identity", "sleep", "invert", "fail", "oom")}
