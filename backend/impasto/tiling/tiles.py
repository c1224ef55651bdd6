"""Tile grids with overlap, cosine blend weights, and a band accumulator that emits finished regions tile by tile.

Geometry (one axis; the 2-D grid is the product of a row plan and a column plan):

* the canvas ``[0, length)`` is covered by *write windows* ``[start, stop)`` of (at most) ``tile`` pixels whose
  starts are multiples of ``align`` (the network's total stride, so every tile sees the same down-sampling grid as
  the whole image) and which overlap their neighbours by at least ``overlap`` pixels;
* each window is computed on a *crop* = the window grown by ``context`` pixels each side (clipped to the canvas):
  with ``context`` >= the network's receptive-field radius the window's pixels equal the untiled result;
* across each overlap the two windows are blended with complementary raised-cosine ramps, so the weights of every
  pixel sum to exactly 1 (a partition of unity) and no weight buffer is needed;
* the *owned* intervals ``[start_i, start_{i+1})`` partition the canvas: the owned rectangle of tile (i, j) is touched
  only by tiles (i-1..i, j-1..j), so in raster order it is finished as soon as tile (i, j) is -- that is what
  ``on_tile`` receives, one rectangle per tile, and the rectangles cover the canvas exactly once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator

import torch


def _ceil_to(v: int, m: int) -> int:
    return -(-v // m) * m


@dataclass(frozen=True)
class AxisWindow:
    start: int          # write window [start, stop)
    stop: int
    crop_start: int     # computed crop [crop_start, crop_stop) (window + context, clipped)
    crop_stop: int
    own_start: int      # owned interval [own_start, own_stop): the partition emitted for this window
    own_stop: int
    ramp_in: int        # overlap with the previous window (blend ramp length at the start)
    ramp_out: int       # overlap with the next window


def plan_axis(length: int, tile: int, overlap: int, context: int, align: int = 1) -> list[AxisWindow]:
    """Windows covering ``[0, length)``; ``tile``, ``overlap`` and ``context`` are rounded up to ``align``."""
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    tile, overlap, context = _ceil_to(tile, align), _ceil_to(overlap, align), _ceil_to(context, align)
    if tile <= 2 * overlap:
        raise ValueError(f"tile ({tile}) must be larger than twice the overlap ({overlap})")
    if length <= tile:
        return [AxisWindow(0, length, 0, length, 0, length, 0, 0)]
    n = math.ceil((length - overlap) / (tile - overlap))
    # shrink the windows to what n of them need (equal sizes, overlap close to the minimum, no wasted compute)
    tile = min(tile, _ceil_to(math.ceil((length + (n - 1) * overlap) / n), align))
    while True:
        # spread the starts evenly over [0, length - tile], aligned down (the last one ends exactly at length
        # only when length - tile is aligned; otherwise the last window is shorter)
        starts = [min((round(i * (length - tile) / (n - 1)) // align) * align, length - 1) for i in range(n)]
        stops = [min(s + tile, length) for s in starts]
        stops[-1] = length
        ok = all(stops[i] - starts[i + 1] >= overlap for i in range(n - 1)) and \
            all(starts[i + 2] >= stops[i] for i in range(n - 2))
        if ok:
            break
        n += 1
    wins = []
    for i in range(n):
        ramp_in = stops[i - 1] - starts[i] if i > 0 else 0
        ramp_out = stops[i] - starts[i + 1] if i < n - 1 else 0
        wins.append(AxisWindow(starts[i], stops[i], max(0, starts[i] - context), min(length, stops[i] + context),
                               starts[i], starts[i + 1] if i < n - 1 else length, ramp_in, ramp_out))
    return wins


def ramp_weights(win: AxisWindow, dtype=torch.float32) -> torch.Tensor:
    """1-D blend weight over the window: raised-cosine up over ``ramp_in``, down over ``ramp_out``, 1 between.

    Neighbouring windows' ramps over the same overlap are ``w`` and ``1 - w`` at the same positions."""
    n = win.stop - win.start
    w = torch.ones(n, dtype=torch.float64)
    if win.ramp_in:
        t = (torch.arange(win.ramp_in, dtype=torch.float64) + 0.5) / win.ramp_in
        w[:win.ramp_in] = torch.sin(0.5 * math.pi * t) ** 2
    if win.ramp_out:
        t = (torch.arange(win.ramp_out, dtype=torch.float64) + 0.5) / win.ramp_out
        w[n - win.ramp_out:] = 1.0 - torch.sin(0.5 * math.pi * t) ** 2
    return w.to(dtype)


@dataclass(frozen=True)
class Tile:
    index: int              # raster order
    row: int
    col: int
    ry: AxisWindow
    rx: AxisWindow

    @property
    def crop(self) -> tuple[int, int, int, int]:
        """(y0, y1, x0, x1) of the region the network is run on."""
        return self.ry.crop_start, self.ry.crop_stop, self.rx.crop_start, self.rx.crop_stop

    @property
    def window(self) -> tuple[int, int, int, int]:
        return self.ry.start, self.ry.stop, self.rx.start, self.rx.stop

    @property
    def owned(self) -> tuple[int, int, int, int]:
        return self.ry.own_start, self.ry.own_stop, self.rx.own_start, self.rx.own_stop


@dataclass(frozen=True)
class TileGrid:
    height: int
    width: int
    rows: tuple[AxisWindow, ...]
    cols: tuple[AxisWindow, ...]

    @classmethod
    def plan(cls, height: int, width: int, tile: int, overlap: int, context: int, align: int = 1) -> "TileGrid":
        return cls(height, width, tuple(plan_axis(height, tile, overlap, context, align)),
                   tuple(plan_axis(width, tile, overlap, context, align)))

    def __len__(self) -> int:
        return len(self.rows) * len(self.cols)

    def __iter__(self) -> Iterator[Tile]:
        k = 0
        for i, ry in enumerate(self.rows):
            for j, rx in enumerate(self.cols):
                yield Tile(k, i, j, ry, rx)
                k += 1

    def weights(self, tile: Tile, dtype=torch.float32) -> torch.Tensor:
        """(h, w) blend weights of ``tile``'s write window."""
        return ramp_weights(tile.ry, dtype)[:, None] * ramp_weights(tile.rx, dtype)[None, :]


class BandAccumulator:
    """Blends tiles of one grid row into a band buffer (``tile + overlap`` rows x canvas width, not the canvas).

    ``add(tile, values)`` takes the write-window values (1, C, h, w); it returns the finished owned rectangle of that
    tile ((1, C, oh, ow) view, valid until the next ``add``).  Rows shared with the next grid row are carried over.
    """

    def __init__(self, grid: TileGrid, channels: int, dtype=torch.float32, device=None):
        self.grid = grid
        self.channels = channels
        self.dtype = dtype
        self.device = device
        self.band: torch.Tensor | None = None
        self.band_start = 0
        self.row = -1

    def _start_row(self, row: int) -> None:
        ry = self.grid.rows[row]
        new = torch.zeros(1, self.channels, ry.stop - ry.start, self.grid.width, dtype=self.dtype,
                          device=self.device)
        if self.band is not None:
            # carry the overlap rows [ry.start, previous stop) already accumulated by the previous grid row
            prev_stop = self.band_start + self.band.shape[2]
            keep = prev_stop - ry.start
            if keep > 0:
                new[:, :, :keep] = self.band[:, :, ry.start - self.band_start:]
        self.band, self.band_start, self.row = new, ry.start, row

    def add(self, tile: Tile, values: torch.Tensor) -> torch.Tensor:
        if tile.row != self.row:
            if tile.row != self.row + 1 or tile.col != 0:
                raise ValueError("tiles must be added in raster order")
            self._start_row(tile.row)
        y0, y1, x0, x1 = tile.window
        w = self.grid.weights(tile, self.dtype).to(values.device)
        self.band[:, :, y0 - self.band_start:y1 - self.band_start, x0:x1] += (values.to(self.dtype) * w)
        oy0, oy1, ox0, ox1 = tile.owned
        return self.band[:, :, oy0 - self.band_start:oy1 - self.band_start, ox0:ox1]


def seam_ratio(img: torch.Tensor, grid: TileGrid, period: int = 1) -> float:
    """Mean |gradient| across the lines where tiles meet (owned-interval boundaries) divided by the mean |gradient|
    across all other lines of the same phase modulo ``period``; 1.0 = the borders are statistically invisible.

    ``period``: a network with total stride 4 and nearest upsampling leaves a faint period-4 texture, and tile
    borders always fall on the same phase of it, so compare like with like (``period=4``).
    ``img``: (1, C, H, W) with H, W <= the grid's."""
    H, W = img.shape[-2:]
    gx = (img[..., :, 1:] - img[..., :, :-1]).abs().float().mean(dim=(0, 1))      # (H, W-1)
    gy = (img[..., 1:, :] - img[..., :-1, :]).abs().float().mean(dim=(0, 1))      # (H-1, W)
    cols = [w.own_start - 1 for w in grid.cols[1:] if w.own_start - 1 < W - 1]
    rows = [w.own_start - 1 for w in grid.rows[1:] if w.own_start - 1 < H - 1]
    mx = torch.zeros_like(gx, dtype=torch.bool)
    mx[:, cols] = True
    my = torch.zeros_like(gy, dtype=torch.bool)
    my[rows, :] = True
    # "elsewhere": lines of the same phase as the borders (all borders share one phase when starts are aligned)
    phase_x = torch.zeros_like(mx)
    phase_y = torch.zeros_like(my)
    for c in cols:
        phase_x[:, c % period::period] = True
    for r in rows:
        phase_y[r % period::period, :] = True
    border = torch.cat([gx[mx], gy[my]])
    rest = torch.cat([gx[phase_x & ~mx], gy[phase_y & ~my]])
    if border.numel() == 0:
        return 1.0
    return float(border.mean() / rest.mean())
