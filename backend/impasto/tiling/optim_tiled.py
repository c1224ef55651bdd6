"""Full-resolution pass for the optimization engines (Gatys, STROTSS, DST) on large canvases.

The engine optimizes at a working resolution (<= 1024); its result is brought to the output size (upsampled, or
-- for DST -- sampled through the TPS warp evaluated at full resolution by the caller's ``read``), and this pass adds
fine brushwork at full size, tile by tile, while matching the style statistics of the **whole canvas**:

* the global Gram matrices G_l = sum over tiles of F F^T / (C N) are accumulated over the tile grid (owned regions,
  VGG run on crops with context >= its receptive field up to ``relu3_1``, so each tile's features are exact);
* the global error E_l = G_l − G_l,style is taken once, and each tile then moves its own (normalized) Gram by −E_l:
  it minimizes || G_l,tile(x) − (G_l,tile(before) − E_l) ||² + a content term keeping it close to its input.  If
  every tile reaches its target, the canvas's Gram moves by exactly −E_l (the pixel-weighted mean of the tiles'
  moves).  Every tile is asked for the same move, so neighbours change alike and no tone step appears at their
  border (why not Gauss-Seidel on the global loss: docs/large_canvases.md).
* tiles are blended and emitted exactly as in the MT path (``TileGrid``, ``BandAccumulator``, ``on_tile``).
"""
from __future__ import annotations

import logging
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..precision import autocast, loss_scaler, memory_format
from ..engines.base import Progress, check_cancel, never_cancel, no_progress
from .memory import OOMSplitter, choose_tile_size
from .mt_tiled import upsample_region
from .runner import grow
from .tiles import BandAccumulator, TileGrid

log = logging.getLogger(__name__)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1")    # the fine-scale layers: brushwork, not composition
CONTENT_LAYER = "relu2_1"
VGG_CONTEXT = 24          # receptive-field radius of relu3_1 is 12 px (+ pooling alignment)
VGG_ALIGN = 4             # two poolings before relu3_1
OVERLAP = 32
HOLD_RAMP = 16            # px inside the finished/new border over which a tile's hold fades out
BYTES_PER_PIXEL = 3000    # VGG up to relu3_1 with gradients, fp32
STYLE_LONG_SIDE = 1024


def _owned_features(feats: dict[str, torch.Tensor], crop, own) -> dict[str, torch.Tensor]:
    """Each layer's activations restricted to the owned box (crop coordinates scaled to the layer's resolution)."""
    y0, y1, x0, x1 = crop
    oy0, oy1, ox0, ox1 = own
    out = {}
    for name, f in feats.items():
        s = f.shape[2] / (y1 - y0)
        out[name] = f[:, :, round((oy0 - y0) * s):round((oy1 - y0) * s), round((ox0 - x0) * s):round((ox1 - x0) * s)]
    return out


def _gram_sum(f: torch.Tensor) -> tuple[torch.Tensor, int]:
    """(sum of F F^T in fp32, pixel count) of an (1, C, h, w) activation."""
    c = f.shape[1]
    m = f.float().reshape(c, -1)
    return m @ m.t(), m.shape[1]


def global_grams(vgg, read: Callable, height: int, width: int, grid: TileGrid,
                 layers=STYLE_LAYERS, device=torch.device("cpu")) -> tuple[dict, dict]:
    """Gram matrices (normalized by C x pixels, as ``vgg.gram_matrix``) of the whole canvas, accumulated over the
    grid's owned regions; also the pixel counts per layer."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    for t in grid:
        crop = grow(t.owned, VGG_CONTEXT, height, width)
        with torch.inference_mode():
            feats = vgg(read(crop).to(device), list(layers))
        for name, f in _owned_features(feats, crop, t.owned).items():
            g, n = _gram_sum(f)
            sums[name] = sums.get(name, 0) + g
            counts[name] = counts.get(name, 0) + n
    grams = {n: (sums[n] / (sums[n].shape[0] * counts[n])) for n in sums}
    return grams, counts


class FinishedBand:
    """The pixels earlier tiles have finished, for the rows the current grid row's crops can see.

    Tiles are optimized in raster order, and each one starts from -- and holds -- every pixel of its crop that an
    earlier tile already finished (its write window), optimizing the rest; the hold fades out over a few pixels
    across the border (``HOLD_RAMP``).  The texture therefore continues across tile borders instead of two
    independent textures being cross-faded (which shows as a low-contrast band along every border at 100 %), and
    in the blend overlap both tiles hold nearly the same values.
    Memory: (tile + overlap + 2 * context) rows x canvas width, not the canvas."""

    def __init__(self, grid: TileGrid, context: int, channels: int = 3):
        self.grid, self.context, self.channels = grid, context, channels
        self.row = -1
        self.start = 0
        self.values = torch.zeros(1, channels, 0, grid.width)
        self.done = torch.zeros(0, grid.width, dtype=torch.bool)

    def begin_row(self, row: int) -> None:
        ry = self.grid.rows[row]
        start = max(0, ry.start - self.context)
        stop = min(self.grid.height, ry.stop + self.context)
        values = torch.zeros(1, self.channels, stop - start, self.grid.width)
        done = torch.zeros(stop - start, self.grid.width, dtype=torch.bool)
        lo, hi = max(start, self.start), min(stop, self.start + self.done.shape[0])
        if hi > lo:                                  # rows the previous grid row finished
            values[:, :, lo - start:hi - start] = self.values[:, :, lo - self.start:hi - self.start]
            done[lo - start:hi - start] = self.done[lo - self.start:hi - self.start]
        self.values, self.done, self.start, self.row = values, done, start, row

    def read(self, box) -> tuple[torch.Tensor, torch.Tensor]:
        """(values (1, C, h, w), done mask (h, w)) of a box whose rows lie in the band."""
        y0, y1, x0, x1 = box
        return (self.values[:, :, y0 - self.start:y1 - self.start, x0:x1],
                self.done[y0 - self.start:y1 - self.start, x0:x1])

    def finish(self, box, values: torch.Tensor) -> None:
        """Record ``values`` (1, C, h, w) as the box's latest finished pixels."""
        y0, y1, x0, x1 = box
        self.values[:, :, y0 - self.start:y1 - self.start, x0:x1] = values.to(self.values.dtype)
        self.done[y0 - self.start:y1 - self.start, x0:x1] = True


def _style_grams(vgg, style: torch.Tensor, layers: list[str], device: torch.device) -> dict[str, torch.Tensor]:
    """The style image's Gram matrices G_l,style (long side at most ``STYLE_LONG_SIDE``)."""
    from ..vgg import gram_matrix
    s = style[:, :3].float()
    if max(s.shape[-2:]) > STYLE_LONG_SIDE:
        f = STYLE_LONG_SIDE / max(s.shape[-2:])
        s = F.interpolate(s, scale_factor=f, mode="bilinear", antialias=True, align_corners=False)
    with torch.inference_mode():
        return {n: gram_matrix(v)[0] for n, v in vgg(s.to(device), layers).items()}


class _BoxRefiner:
    """Refines one box of the canvas (a tile's write window, or a part of it when split): starts from ``read`` and
    the pixels earlier tiles finished, moves the box's Gram matrices by −E_l while a content term holds it near its
    start, and records the result as finished."""

    def __init__(self, vgg, fmt, read: Callable, size: tuple[int, int], error: dict[str, torch.Tensor],
                 finished: FinishedBand, device: torch.device, *, steps: int, style_weight: float,
                 content_weight: float, learning_rate: float):
        self.vgg, self.fmt, self.read, self.size, self.error = vgg, fmt, read, size, error
        self.finished, self.device, self.steps = finished, device, steps
        self.style_weight, self.content_weight, self.learning_rate = style_weight, content_weight, learning_rate
        self.layers = list(STYLE_LAYERS)

    def __call__(self, box) -> torch.Tensor:
        """The refined pixels of ``box`` (1, 3, h, w) on the CPU."""
        H, W = self.size
        crop = grow(box, VGG_CONTEXT, H, W)
        # the style term covers the whole box (the write window, or a part of it when split), not only the
        # owned part: pixels outside the owned box but inside the window get no Gram gradient otherwise,
        # stay as smooth as the start image and show as a plain band along every tile border
        start, hold = self._start(crop)
        x = self._optimize(start, hold, crop, box)
        by0, by1, bx0, bx1 = box
        mine = x[:, :, by0 - crop[0]:by1 - crop[0], bx0 - crop[2]:bx1 - crop[2]].cpu()
        self.finished.finish(box, mine)
        return mine

    def _start(self, crop) -> tuple[torch.Tensor, torch.Tensor]:
        """(start image, hold) of a crop: how much each pixel is held is 1 inside what earlier tiles finished,
        falling linearly to 0 over the last HOLD_RAMP px before the border, 0 in the new part."""
        device = self.device
        start = self.read(crop).to(device).float()
        fixed_values, fixed = self.finished.read(crop)
        # The start image cross-fades from the finished pixels to the new start over that ramp, and this tile's
        # change fades in over it: any hard step between finished and new pixels showed as a 1-px line at 100 %
        # (2x the mean gradient on those lines)
        blur = F.avg_pool2d(fixed.to(device)[None, None].float(), 2 * HOLD_RAMP + 1, stride=1,
                            padding=HOLD_RAMP, count_include_pad=False)
        # (zero outside the finished pixels: near the inside corner of an L-shaped finished region the blur
        # passes 0.5 on unfinished pixels, whose band values are empty -- dark marks at tile corners)
        hold = (2 * blur - 1).clamp(0, 1) * fixed.to(device)
        start = hold * fixed_values.to(device) + (1 - hold) * start
        return start, hold

    def _optimize(self, start: torch.Tensor, hold: torch.Tensor, crop, box) -> torch.Tensor:
        """Adam on the unheld pixels: || G_l,box(x) − (G_l,box(start) − E_l) ||² + a content term."""
        from ..vgg import gram_matrix
        vgg, fmt, layers, device = self.vgg, self.fmt, self.layers, self.device
        with torch.inference_mode(), autocast(device):
            f0 = vgg(start.contiguous(memory_format=fmt), layers + [CONTENT_LAYER])
        content_target = f0[CONTENT_LAYER].float().clone()
        goal = {name: gram_matrix(f)[0] - self.error[name]
                for name, f in _owned_features({n: f0[n] for n in layers}, crop, box).items()}
        free = start.clone().requires_grad_(True)
        opt = torch.optim.Adam([free], lr=self.learning_rate)
        scaler = loss_scaler(device)
        for _ in range(self.steps):
            opt.zero_grad(set_to_none=True)
            x = hold * start + (1 - hold) * free
            with autocast(device):
                feats = vgg(x.contiguous(memory_format=fmt), layers + [CONTENT_LAYER])
            loss = self.content_weight * F.mse_loss(feats[CONTENT_LAYER].float(), content_target)
            for name, f in _owned_features({n: feats[n] for n in layers}, crop, box).items():
                loss = loss + self.style_weight * (gram_matrix(f)[0] - goal[name]).pow(2).mean()
            scaler.backward(loss)
            scaler.step(opt)
            with torch.no_grad():
                free.clamp_(0, 1)
        with torch.no_grad():
            return (hold * start + (1 - hold) * free).clamp(0, 1)


def refine_full_resolution(stylized: torch.Tensor, out_size: tuple[int, int], style: torch.Tensor, options=None, *,
                           progress=no_progress, cancel=never_cancel,
                           on_tile: Optional[Callable[[int, int, torch.Tensor], None]] = None,
                           device: Optional[torch.device] = None, read: Optional[Callable] = None,
                           steps: int = 12, tile_size: Optional[int] = None, style_weight: float = 1e3,
                           content_weight: float = 1.0, learning_rate: float = 0.01,
                           assemble: bool = True) -> Optional[torch.Tensor]:
    """Bring a working-resolution result ``stylized`` (1, 3, h, w) to ``out_size`` with full-size brushwork.

    ``read(box)`` (optional) returns the full-resolution starting image for a canvas box (y0, y1, x0, x1) -- DST
    passes one that samples its texture through the TPS warp evaluated at full resolution; the default is the
    bilinear upsampling of ``stylized``.  ``style``: the style image (1, 3, H, W) [0, 1].  Returns (1, 3, H, W)
    float32 on the CPU, or None with ``assemble=False`` (the result then exists only as ``on_tile`` rectangles)."""
    from ..vgg import get_vgg
    device = device or torch.device("cpu")
    H, W = out_size
    if read is None:
        small = stylized.float()

        def read(box):
            return upsample_region(small, (H, W), box, reflect=False)

    tile = tile_size or getattr(options, "tile_size", None) or choose_tile_size(device, BYTES_PER_PIXEL, VGG_CONTEXT)
    tile = max(4 * OVERLAP, tile // VGG_ALIGN * VGG_ALIGN)
    grid = TileGrid.plan(H, W, tile, OVERLAP, VGG_CONTEXT, VGG_ALIGN)
    vgg = get_vgg(device)
    fmt = memory_format(device)
    vgg.to(memory_format=fmt)
    layers = list(STYLE_LAYERS)
    targets = _style_grams(vgg, style, layers, device)

    progress(Progress(0.0, "global style statistics"))
    grams, counts = global_grams(vgg, read, H, W, grid, layers, device)
    error = {n: grams[n] - targets[n] for n in layers}       # E_l, fixed for the whole pass
    log.info("full-resolution pass: %d tiles of %d px, global Gram error %s", len(grid), tile,
             {n: f"{e.pow(2).mean().item():.3g}" for n, e in error.items()})
    check_cancel(cancel)
    acc = BandAccumulator(grid, 3, torch.float32, "cpu")
    result = torch.empty(1, 3, H, W) if assemble else None
    splitter = OOMSplitter(device, VGG_ALIGN)
    finished = FinishedBand(grid, VGG_CONTEXT)
    refine = _BoxRefiner(vgg, fmt, read, (H, W), error, finished, device, steps=steps, style_weight=style_weight,
                         content_weight=content_weight, learning_rate=learning_rate)
    n_tiles = len(grid)

    for t in grid:
        check_cancel(cancel)
        if t.row != finished.row:
            finished.begin_row(t.row)
        wy0, wy1, wx0, wx1 = t.window
        values = torch.empty(1, 3, wy1 - wy0, wx1 - wx0)

        def compute(box):
            by0, by1, bx0, bx1 = box
            values[:, :, by0 - wy0:by1 - wy0, bx0 - wx0:bx1 - wx0] = refine(box)

        splitter.run(t.window, compute)
        owned = acc.add(t, values)
        oy0, oy1, ox0, ox1 = t.owned
        piece = owned.clamp(0, 1)
        if result is not None:
            result[:, :, oy0:oy1, ox0:ox1] = piece
        if on_tile is not None:
            on_tile(ox0, oy0, piece)
        progress(Progress(0.1 + 0.9 * (t.index + 1) / n_tiles, f"tile {t.index + 1}/{n_tiles}"))
    return result
