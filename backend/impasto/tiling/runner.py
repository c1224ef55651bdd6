"""Run an image-to-image network with instance norm tile by tile over a canvas, with global IN statistics.

The canvas is never materialised as a network input: ``read(box)`` returns the input pixels of a canvas region
(the MT path computes them on the fly from a low-resolution image).  Two phases:

1. global statistics (``global_norm.collect_global_stats``) over crops whose counted regions partition the canvas --
   or a thumbnail of it (``stats_read``/``stats_size``: URST's "thumbnail instance norm" idea, bounded cost);
2. the output pass: each tile's write window is computed on window + context, blended into a band accumulator,
   and its finished owned rectangle is handed to ``emit(x, y, values)``.

Peak memory = one crop's activations + one band (tile rows x canvas width x channels), independent of the canvas
height; out-of-memory on a crop halves it and retries (``memory.OOMSplitter``).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..engines.base import check_cancel
from ..precision import Precision
from .global_norm import Box, StatsCrop, StopForward, collect_global_stats, global_instance_norm, set_crop_size
from .memory import OOMSplitter
from .tiles import BandAccumulator, TileGrid

log = logging.getLogger(__name__)

ReadFn = Callable[[Box], torch.Tensor]
EmitFn = Callable[[int, int, torch.Tensor], None]


@dataclass
class TiledRunConfig:
    tile: int                 # write-window side
    context: int              # pixels of context each side (>= receptive-field radius)
    overlap: int              # blend overlap between write windows
    align: int = 4            # network's total stride
    single_pass_pixels: int = 0   # statistics canvases up to this area: one whole forward records them all


def grow(box: Box, context: int, height: int, width: int, side: tuple[int, int] = (0, 0)) -> Box:
    """``box`` grown by ``context`` each side, clipped to the canvas.  With ``side``, the crop is instead a
    (``side[0]`` rows, ``side[1]`` columns) interval containing that (shifted inwards at the canvas edges), so every crop of a run has the
    same shape: oneDNN/cuDNN then reuse one kernel plan instead of building one per odd-sized edge tile (measured
    2x slower in bf16 on CPU without this)."""
    y0, y1, x0, x1 = box

    def axis(lo: int, hi: int, length: int, side: int) -> tuple[int, int]:
        a, b = max(0, lo - context), min(length, hi + context)
        n = max(side, b - a)
        if side and length >= n:
            a = min(a, length - n)
            return a, a + n
        return a, b

    (a0, a1), (b0, b1) = axis(y0, y1, height, side[0]), axis(x0, x1, width, side[1])
    return a0, a1, b0, b1


class TiledRunner:
    """``net`` maps (1, C, h, w) -> (1, C_out, h, w) for crops whose sides are multiples of ``config.align``."""

    def __init__(self, net: nn.Module, height: int, width: int, config: TiledRunConfig, *,
                 device: torch.device, precision: Optional[Precision] = None, in_channels: int = 3):
        if height % config.align or width % config.align:
            raise ValueError(f"canvas {width}x{height} must be a multiple of the stride {config.align}")
        self.net = net
        self.height, self.width = height, width
        self.config = config
        self.device = device
        self.precision = precision          # the policy's decision for this run (None: fp32)
        self.in_channels = in_channels
        self.grid = TileGrid.plan(height, width, config.tile, config.overlap, config.context, config.align)
        self.splitter = OOMSplitter(device, config.align)
        self.crop_side = self._crop_side(self.grid)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.precision is None:
            with torch.inference_mode():
                return self.net(x)
        with torch.inference_mode(), self.precision.autocast():
            return self.net(x.contiguous(memory_format=self.precision.memory_format))

    def _crop_side(self, grid: TileGrid) -> tuple[int, int]:
        c = self.config
        return (max(w.stop - w.start for w in grid.rows) + 2 * c.context,
                max(w.stop - w.start for w in grid.cols) + 2 * c.context)

    def stats_crops(self, height: int, width: int) -> list[StatsCrop]:
        """Crops of a (height, width) statistics canvas whose counted regions partition it."""
        c = self.config
        grid = self.grid if (height, width) == (self.height, self.width) else \
            TileGrid.plan(height, width, c.tile, c.overlap, c.context, c.align)
        self.stats_crop_side = self._crop_side(grid)
        return [StatsCrop(grow(t.owned, c.context, height, width, self.stats_crop_side), t.owned) for t in grid]

    def run(self, read: ReadFn, emit: EmitFn, *, out_channels: int = 3,
            cancel: Optional[Callable[[], bool]] = None,
            progress: Optional[Callable[[str, int, int], None]] = None,
            stats_read: Optional[ReadFn] = None, stats_size: Optional[tuple[int, int]] = None) -> None:
        """Statistics over the canvas itself, or -- with ``stats_read``/``stats_size`` -- over another canvas
        (a thumbnail of this one, see ``mt_tiled``); then the output pass over this canvas."""
        c = self.config
        sh, sw = stats_size or (self.height, self.width)
        sread = stats_read or read
        if sh % c.align or sw % c.align:
            raise ValueError(f"statistics canvas {sw}x{sh} must be a multiple of the stride {c.align}")
        check_cancel(cancel)
        with global_instance_norm(self.net, self.in_channels) as norms:
            crops = self.stats_crops(sh, sw)
            n_norms = len(norms)
            log.info("tiled run %dx%d: %d tiles of %d (+%d context, %d overlap), %d IN layers, statistics over "
                     "%dx%d in %d crops", self.width, self.height, len(self.grid), c.tile, c.context, c.overlap,
                     n_norms, sw, sh, len(crops))

            def run_stats(sc: StatsCrop) -> None:
                def compute(count: Box) -> None:
                    crop = grow(count, c.context, sh, sw, self.stats_crop_side if self.splitter.depth == 0 else (0, 0))
                    for m in norms:
                        m.crop_size = (crop[1] - crop[0], crop[3] - crop[2])
                    for m in norms:
                        m.count_box = (count[0] - crop[0], count[1] - crop[0], count[2] - crop[2], count[3] - crop[2])
                    try:
                        self._forward(sread(crop).to(self.device))
                    except StopForward:
                        return
                    raise RuntimeError("the statistics pass ran through the network without reaching its norm")
                self.splitter.run(sc.count, compute)
                raise StopForward()     # every part was counted; tell collect_global_stats this crop is done

            def on_pass(done: int, total: int) -> None:
                check_cancel(cancel)
                if progress is not None:
                    progress("statistics", done, total)

            if n_norms and sh * sw <= c.single_pass_pixels:
                # the statistics canvas fits in one crop's memory: one forward records every layer (exact)
                for m in norms:
                    m.mode = "record"
                self._forward(sread((0, sh, 0, sw)).to(self.device))
                if any(m.mode != "apply" for m in norms):
                    raise RuntimeError("an instance-norm layer was not reached by the statistics forward")
                on_pass(1, 1)
            elif n_norms:
                collect_global_stats(norms, crops, run_stats, on_pass=on_pass)

            acc = BandAccumulator(self.grid, out_channels, torch.float32, "cpu")
            for tile in self.grid:
                check_cancel(cancel)
                wy0, wy1, wx0, wx1 = tile.window
                values = torch.empty(1, out_channels, wy1 - wy0, wx1 - wx0)

                def compute(box: Box) -> None:
                    crop = grow(box, c.context, self.height, self.width,
                                self.crop_side if self.splitter.depth == 0 else (0, 0))
                    set_crop_size(norms, crop[1] - crop[0], crop[3] - crop[2])
                    y = self._forward(read(crop).to(self.device))
                    by0, by1, bx0, bx1 = box
                    values[:, :, by0 - wy0:by1 - wy0, bx0 - wx0:bx1 - wx0] = \
                        y[:, :, by0 - crop[0]:by1 - crop[0], bx0 - crop[2]:bx1 - crop[2]].float().cpu()

                self.splitter.run(tile.window, compute)
                owned = acc.add(tile, values)
                oy0, _, ox0, _ = tile.owned
                emit(ox0, oy0, owned)
                if progress is not None:
                    progress("tiles", tile.index + 1, len(self.grid))

