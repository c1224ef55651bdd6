"""MT at any output size: coarse levels on a downscaled copy, the refine subnet tile by tile at full resolution.

1. The content is downscaled (in row bands, so the full-size canvas is never converted to float at once) to the
   style level's size; the style and enhance subnets run there exactly as in an untiled 2048-px MT pass (style at
   <= 512, enhance at <= 1024 on the long side: the scales they were trained for).
2. The refine subnet's input -- the enhance output bilinearly upsampled to the output size and reflection-padded to
   a multiple of its stride, as ``RefineSubnet.forward`` does -- is computed per crop from the small enhance output,
   never for the whole canvas.
3. ``TiledRunner`` gathers every refine IN layer's statistics over the whole canvas, streamed tile by tile (one
   pass per IN layer) -- exactly when the output's long side is <= ``stats_side`` (default 2048), otherwise over
   the same refine input rendered at ``stats_side`` (a thumbnail: the refine input is an upsampled 1024-px image,
   so its statistics hardly change with the output size; bench/bench_tiling_stats.py measures the difference) --
   then runs the refine tiles with context >= its receptive field, blends them and hands each finished rectangle
   to ``on_tile(x, y, tile)``.

For outputs up to 2048 px the result equals ``net(content)[-1]`` up to float rounding (tests/test_tiling_mt.py,
bench/bench_tiling_2048.py).  With ``levels`` (a ``LevelPlan``) the levels run at the plan's sizes instead: the MT
engine passes one when a tile size is asked for on an output of at most 2048 px, so that asking for tiles does not
change the picture (``engines.mt.engine``).

``helpers`` (other devices, or a ``devices.DeviceLender`` that lends idle ones tile by tile) compute refine tiles
too; steps 1 and 2's coarse levels and the statistics stay on ``device`` (``runner`` has the rules).  The run works
on its own module objects (``devices.replicate``: the weights shared), so several runs may use one network at once.
"""
from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from ..device import default_device
from ..precision import Precision, policy
from ..engines.base import Progress, check_cancel, never_cancel, no_progress
from ..engines.mt.level_plan import LevelPlan
from .devices import Helpers, replicate
from .memory import choose_tile_size
from .runner import TiledRunConfig, TiledRunner

log = logging.getLogger(__name__)

COARSE_OUTPUT_SIDE = 2048        # the coarse levels run as for an output of this long side (style 512, enhance 1024)
REFINE_CONTEXT = 40              # refine receptive-field radius: 32 px (65-px field) measured; + 8 px margin
REFINE_OVERLAP = 32              # blend ramp between neighbouring tiles
REFINE_BYTES_PER_PIXEL = 700     # peak working memory of the refine subnet per crop pixel (fp32; bench_tiling_memory)
DEFAULT_STATS_SIDE = 2048        # IN statistics over the whole canvas up to this long side, over a thumbnail above


def downscale(content: torch.Tensor, size: tuple[int, int], band_rows: int = 512) -> torch.Tensor:
    """Antialiased bilinear resize of (1, C>=3, H, W) (float [0,1] or uint8) to ``size``, RGB only, in row bands.

    Separable: each band is resized along the width (the height untouched: an exact identity pass), then the
    narrow (H, w) intermediate along the height -- the same two passes ``F.interpolate(antialias=True)`` makes."""
    h, w = size
    H, W = content.shape[-2:]
    bands = []
    for r in range(0, H, band_rows):
        band = content[:, :3, r:r + band_rows]
        band = band.float() / 255.0 if band.dtype == torch.uint8 else band.float()
        if W != w:
            band = F.interpolate(band, size=(band.shape[2], w), mode="bilinear", align_corners=False,
                                 antialias=w < W)
        bands.append(band)
    mid = torch.cat(bands, dim=2)
    if H != h:
        mid = F.interpolate(mid, size=(h, w), mode="bilinear", align_corners=False, antialias=h < H)
    return mid


def _source_axis(idx: torch.Tensor, in_len: int, out_len: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Bilinear (align_corners=False) source taps for output indices ``idx``, as F.interpolate computes them."""
    src = ((idx.double() + 0.5) * (in_len / out_len) - 0.5).clamp(min=0)
    i0 = src.floor().long().clamp(max=in_len - 1)
    i1 = (i0 + 1).clamp(max=in_len - 1)
    lam = (src - i0.double()).float()
    return i0, i1, lam


def _padded_index(start: int, stop: int, length: int, reflect: bool) -> torch.Tensor:
    """Canvas indices of padded positions [start, stop): reflect (or replicate) beyond ``length``."""
    idx = torch.arange(start, stop)
    beyond = idx >= length
    if reflect:
        idx = torch.where(beyond, 2 * (length - 1) - idx, idx)
    else:
        idx = idx.clamp(max=length - 1)
    return idx


def upsample_region(small: torch.Tensor, out_size: tuple[int, int], box: tuple[int, int, int, int],
                    reflect: bool = True) -> torch.Tensor:
    """The region ``box`` (y0, y1, x0, x1) of ``F.interpolate(small, out_size, bilinear)`` padded bottom/right by
    reflection (the refine subnet's ``pad_to_multiple``), without computing the rest of it."""
    H, W = out_size
    h, w = small.shape[-2:]
    y0, y1, x0, x1 = box
    ry0, ry1, rl = _source_axis(_padded_index(y0, y1, H, reflect), h, H)
    cx0, cx1, cl = _source_axis(_padded_index(x0, x1, W, reflect), w, W)
    s = small.float()
    rows = s[:, :, ry0] * (1 - rl).view(1, 1, -1, 1) + s[:, :, ry1] * rl.view(1, 1, -1, 1)
    return rows[..., cx0] * (1 - cl) + rows[..., cx1] * cl


def coarse_sizes(net, height: int, width: int) -> list[tuple[int, int]]:
    """Sizes of the style and enhance levels for an output of (height, width), by the network's own sizing."""
    long_side = max(height, width)
    if long_side > COARSE_OUTPUT_SIDE:
        s = COARSE_OUTPUT_SIDE / long_side
        height, width = max(1, round(height * s)), max(1, round(width * s))
    return net.level_sizes(height, width)[:2]


@torch.inference_mode()
def coarse_levels(net, content: torch.Tensor, out_size: tuple[int, int], device: torch.device,
                  precision: Precision, sizes: Optional[Sequence[tuple[int, int]]] = None) -> torch.Tensor:
    """Enhance-level output (1, 3, h, w) float32 for a full-size ``content``; ``sizes`` (style, enhance) default to
    ``coarse_sizes``."""
    from ..engines.mt.network import resize
    sizes = sizes or coarse_sizes(net, *out_size)
    x = downscale(content, sizes[0]).to(device)
    with precision.autocast():
        y = net.style(x)
        y = net.enhance(resize(y, sizes[1]))
    return y.float()


def plan_config(options, device: torch.device, tile_size: Optional[int] = None) -> TiledRunConfig:
    tile = tile_size or getattr(options, "tile_size", None)
    if not tile:
        tile = choose_tile_size(device, REFINE_BYTES_PER_PIXEL, REFINE_CONTEXT)
    tile = max(4 * REFINE_OVERLAP, tile // 4 * 4)
    # a statistics canvas that fits the memory of one crop is done in one forward instead of one pass per IN layer
    crop_pixels = (tile + 2 * REFINE_CONTEXT) ** 2
    return TiledRunConfig(tile=tile, context=REFINE_CONTEXT, overlap=REFINE_OVERLAP, align=4,
                          single_pass_pixels=crop_pixels)


def stylize_tiled(net, content: torch.Tensor, options=None, progress=no_progress, cancel=never_cancel,
                  on_tile: Optional[Callable[[int, int, torch.Tensor], None]] = None, *,
                  device: Optional[torch.device] = None, tile_size: Optional[int] = None,
                  stats_side: int = DEFAULT_STATS_SIDE, precision: Optional[str] = None,
                  assemble: bool = True, helpers: Helpers = None, report: Optional[dict] = None,
                  levels: Optional[LevelPlan] = None) -> Optional[torch.Tensor]:
    """MT-stylize ``content`` (1, 3|4, H, W), float [0,1] or uint8, at its own size; returns (1, 3, H, W) float32
    on the CPU (``assemble=False``: returns None and the result exists only as the ``on_tile`` rectangles, which
    then cover the canvas exactly once -- the way to stay within a few hundred MB at 8192 px and beyond).

    ``net``: a ``MultimodalTransferNet``. ``precision``: None = the policy for inference on ``device``
    (``impasto.precision``), or a mode that overrides it ("fp32", "bf16", "fp16", ...).  ``helpers``: other
    devices of ``device``'s type that refine tiles may run on (module docstring).  ``report``, when given, receives
    ``tiles`` (their number) and ``tiles_by_device`` ({"home" or a lent device's name: tiles it computed}).

    ``levels``: run the levels at a ``LevelPlan``'s sizes instead of the network's own sizing -- the style and
    enhance levels at ``levels.style`` / ``levels.enhance`` (downscaled from the full ``content``), the refine level
    tiled at ``levels.refine``, which is then the size of the result (the plan's resize to ``levels.output`` is the
    caller's); the result equals ``engines.mt.engine.run_levels`` before that resize."""
    device = device or default_device()
    prec = policy(device, "inference", mode=precision)
    H, W = content.shape[-2:]
    coarse = None
    if levels is not None:
        if levels.refine is None:
            raise ValueError(f"level plan {levels.describe()} has no refine level to tile")
        coarse = (levels.style, levels.enhance)
        H, W = levels.refine
    progress(Progress(0.0, "coarse levels"))
    small = coarse_levels(net, content, (H, W), device, prec, sizes=coarse)
    check_cancel(cancel)

    stride = getattr(net.refine, "_orig_mod", net.refine).STRIDE
    Hp, Wp = max(-(-H // stride) * stride, 2 * stride), max(-(-W // stride) * stride, 2 * stride)
    reflect = (Hp - H) < H and (Wp - W) < W          # as blocks.pad_to_multiple
    config = plan_config(options, device, tile_size)
    # not a torch.compile wrapper, and module objects of this run's own: its IN layers get swapped (weights shared)
    refine = replicate(getattr(net.refine, "_orig_mod", net.refine))
    runner = TiledRunner(refine, Hp, Wp, config, device=device, precision=prec)
    n_tiles = len(runner.grid)
    stats_share = 0.3

    def read(box):
        return upsample_region(small, (H, W), box, reflect)

    stats_read, stats_size = None, None
    if max(H, W) > stats_side:
        f = stats_side / max(H, W)
        hs, ws = (max(2 * stride, round(H * f) // stride * stride), max(2 * stride, round(W * f) // stride * stride))
        stats_size = (hs, ws)

        def stats_read(box):
            return upsample_region(small, (hs, ws), box, reflect=True)

    result = torch.empty(1, 3, H, W) if assemble else None

    def emit(x: int, y: int, values: torch.Tensor) -> None:
        h, w = min(values.shape[2], H - y), min(values.shape[3], W - x)
        if h <= 0 or w <= 0:
            return
        tile = values[:, :, :h, :w].clamp(0, 1)
        if result is not None:
            result[:, :, y:y + h, x:x + w] = tile
        if on_tile is not None:
            on_tile(x, y, tile)

    def report_progress(phase: str, done: int, total: int) -> None:
        if phase == "statistics":
            progress(Progress(stats_share * done / total, f"global statistics {done}/{total}"))
        else:
            progress(Progress(stats_share + (1 - stats_share) * done / total, f"tile {done}/{total}"))

    log.info("mt tiled: %dx%d, coarse %s, %d tiles", W, H, tuple(small.shape[-2:]), n_tiles)
    runner.run(read, emit, cancel=cancel, progress=report_progress, stats_read=stats_read, stats_size=stats_size,
               helpers=helpers)
    if report is not None:
        report["tiles"] = n_tiles
        report["tiles_by_device"] = runner.tiles_by_device
    return result
