"""Run an image-to-image network with instance norm tile by tile over a canvas, with global IN statistics.

The canvas is never materialised as a network input: ``read(box)`` returns the input pixels of a canvas region
(the MT path computes them on the fly from a low-resolution image).  Two phases:

1. global statistics (``global_norm.collect_global_stats``) over crops whose counted regions partition the canvas --
   or a thumbnail of it (``stats_read``/``stats_size``: URST's "thumbnail instance norm" idea, bounded cost);
2. the output pass: each tile's write window is computed on window + context, blended into a band accumulator,
   and its finished owned rectangle is handed to ``emit(x, y, values)``.

Peak memory = one crop's activations + one band (tile rows x canvas width x channels), independent of the canvas
height; out-of-memory on a crop halves it and retries (``memory.OOMSplitter``).

Other devices (``helpers``: a list, or a ``devices.DeviceLender`` that lends idle devices tile by tile) compute
output tiles too, each on a thread of its own, while this thread computes tiles on the run's own device.  Tiles are
still blended, emitted and reported in raster order, from the calling thread only (``emit`` and ``progress`` never
run on a helper thread).  Each device has at most one crop in flight, at most ``max_ahead`` computed write windows
wait for their turn to be blended, and a borrowed device is given back after every tile.  The statistics phase runs
on the run's own device only.  A tile's values do not depend on which device computed it beyond that device's
kernels: on CPU they are bit-identical; on another GPU of the same kind they are the same up to the kernel choice
(cuDNN may pick another algorithm), i.e. float rounding of the precision in force.
"""
from __future__ import annotations

import logging
import threading
from collections import Counter
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn as nn

from ..engines.base import Cancelled, check_cancel
from ..precision import Precision
from .devices import DeviceLender, Helpers, Loan, as_lender, replicate, same_device
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
        self.tile_devices: list[str] = []   # per tile (raster order): "home" or the name of the loan that computed it
        self._sites: dict[str, _Site] = {}  # helper devices' networks and splitters, by device
        self._sites_lock = threading.Lock()

    @property
    def tiles_by_device(self) -> dict[str, int]:
        """How many output tiles each device computed in the last run ("home": the run's own device)."""
        return dict(Counter(d for d in self.tile_devices if d))

    def _forward(self, x: torch.Tensor, net: Optional[nn.Module] = None) -> torch.Tensor:
        net = self.net if net is None else net
        if self.precision is None:
            with torch.inference_mode():
                return net(x)
        with torch.inference_mode(), self.precision.autocast():
            return net(x.contiguous(memory_format=self.precision.memory_format))

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
            stats_read: Optional[ReadFn] = None, stats_size: Optional[tuple[int, int]] = None,
            helpers: Helpers = None, max_ahead: Optional[int] = None) -> None:
        """Statistics over the canvas itself, or -- with ``stats_read``/``stats_size`` -- over another canvas
        (a thumbnail of this one, see ``mt_tiled``); then the output pass over this canvas, its tiles also computed
        on ``helpers`` (devices of this run's device type; module docstring).  ``max_ahead``: computed tiles that
        may wait to be blended (default: twice the devices)."""
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

            self._output_pass(read, emit, norms, out_channels, cancel, progress, helpers, max_ahead)

    # -- the output pass --------------------------------------------------------------------------------------------
    def _compute_tile(self, tile, read: ReadFn, out_channels: int, site: "_Site",
                      norms: Optional[list] = None) -> torch.Tensor:
        """The write-window values (1, C, h, w) float32 on the CPU of ``tile``, computed on ``site``'s device."""
        c = self.config
        wy0, wy1, wx0, wx1 = tile.window
        values = torch.empty(1, out_channels, wy1 - wy0, wx1 - wx0)

        def compute(box: Box) -> None:
            crop = grow(box, c.context, self.height, self.width,
                        self.crop_side if site.splitter.depth == 0 else (0, 0))
            if norms is not None:
                set_crop_size(norms, crop[1] - crop[0], crop[3] - crop[2])
            y = self._forward(read(crop).to(site.device), site.net)
            by0, by1, bx0, bx1 = box
            values[:, :, by0 - wy0:by1 - wy0, bx0 - wx0:bx1 - wx0] = \
                y[:, :, by0 - crop[0]:by1 - crop[0], bx0 - crop[2]:bx1 - crop[2]].float().cpu()

        site.splitter.run(tile.window, compute)
        return values

    def _site(self, loan: Loan) -> "_Site":
        """The network and splitter for a borrowed device: the run's own modules when it is this run's device (they
        hold no per-crop state in the output pass), else a copy on that device, made once per run and device."""
        key = str(loan.device)
        with self._sites_lock:
            site = self._sites.get(key)
            if site is None:
                net = self.net if same_device(loan.device, self.device) else replicate(self.net, loan.device)
                site = self._sites[key] = _Site(loan.device, net, OOMSplitter(loan.device, self.config.align))
            return site

    def _helper_tile(self, tile, read: ReadFn, out_channels: int, loan: Loan, stop: threading.Event) -> torch.Tensor:
        """One tile on a borrowed device (a helper thread); the loan is given back however it ends."""
        try:
            if stop.is_set():
                raise Cancelled()
            return self._compute_tile(tile, read, out_channels, self._site(loan))
        finally:
            loan.give_back()

    def _output_pass(self, read: ReadFn, emit: EmitFn, norms: list, out_channels: int,
                     cancel: Optional[Callable[[], bool]],
                     progress: Optional[Callable[[str, int, int], None]], helpers: Helpers,
                     max_ahead: Optional[int]) -> None:
        """Every tile computed (here, or on a borrowed device), then blended and emitted in raster order."""
        tiles = list(self.grid)
        n = len(tiles)
        self.tile_devices = [""] * n
        self._sites = {}
        lender: Optional[DeviceLender] = as_lender(helpers)
        home = _Site(self.device, self.net, self.splitter)
        acc = BandAccumulator(self.grid, out_channels, torch.float32, "cpu")
        ahead = max(1, max_ahead or 2 * (1 + (lender.size if lender else 0)))
        done: dict[int, torch.Tensor] = {}
        pending: dict[Future, int] = {}
        stop = threading.Event()
        pool = ThreadPoolExecutor(max_workers=lender.size, thread_name_prefix="impasto-tile") \
            if lender is not None and lender.size > 0 else None
        next_tile = next_emit = 0
        try:
            while next_emit < n:
                check_cancel(cancel)
                # hand the next tiles to the devices free now ...
                while pool is not None and lender is not None and next_tile < n and next_tile - next_emit < ahead \
                        and len(pending) < lender.size:
                    loan = lender.borrow()
                    if loan is None:
                        break
                    if loan.device.type != self.device.type:
                        loan.give_back()
                        log.warning("tiled run on %s: ignoring lent device %s of another type", self.device,
                                    loan.device)
                        lender = None
                        break
                    pending[pool.submit(self._helper_tile, tiles[next_tile], read, out_channels, loan, stop)] = \
                        next_tile
                    self.tile_devices[next_tile] = loan.name
                    next_tile += 1
                # ... and compute the next one here, or wait for a helper when enough tiles are ahead already
                if next_tile < n and next_tile - next_emit < ahead:
                    i = next_tile
                    next_tile += 1
                    self.tile_devices[i] = "home"
                    done[i] = self._compute_tile(tiles[i], read, out_channels, home, norms)
                elif pending:
                    wait(list(pending), return_when=FIRST_COMPLETED)
                for f in [f for f in pending if f.done()]:
                    done[pending.pop(f)] = f.result()          # a helper's error is this run's error
                while next_emit in done:
                    check_cancel(cancel)                       # nothing more is emitted once cancelled
                    tile = tiles[next_emit]
                    owned = acc.add(tile, done.pop(next_emit))
                    oy0, _, ox0, _ = tile.owned
                    emit(ox0, oy0, owned)
                    next_emit += 1
                    if progress is not None:
                        progress("tiles", next_emit, n)
        finally:
            stop.set()                       # helpers not started yet stop; running ones finish their one tile
            if pool is not None:
                pool.shutdown(wait=True)
        if any(d != "home" for d in self.tile_devices):
            log.info("tiled run: tiles by device %s", self.tiles_by_device)


@dataclass
class _Site:
    """Where a tile is computed: a device, the network on it, and that device's out-of-memory splitter."""

    device: torch.device
    net: nn.Module
    splitter: OOMSplitter
