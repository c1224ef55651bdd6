"""Tile size from available memory, and the out-of-memory policy: halve the tile and retry, never fail the job.

Budget: on CUDA, the free device memory (``torch.cuda.mem_get_info``) times ``CUDA_FRACTION``; on CPU,
``IMPASTO_RAM_BUDGET_MB`` (default ``DEFAULT_RAM_BUDGET_MB``) -- the working set one tile may use, not counting the
canvas buffers themselves.  The tile side is the largest aligned side whose crop (tile + 2 x context) fits
``bytes_per_pixel``, the peak working memory of the network per crop pixel (measured for the MT refine subnet in
bench/bench_tiling_memory.py and kept as a constant with margin).
"""
from __future__ import annotations

import logging
import math
import os
from typing import Callable

import torch

log = logging.getLogger(__name__)

DEFAULT_RAM_BUDGET_MB = 1024
CUDA_FRACTION = 0.6
MIN_TILE = 64
MAX_TILE = 4096


def memory_budget_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * CUDA_FRACTION)
    raw = os.environ.get("IMPASTO_RAM_BUDGET_MB")
    if raw:
        try:
            mb = float(raw)
        except ValueError:
            raise ValueError(f"IMPASTO_RAM_BUDGET_MB must be a number of megabytes, got {raw!r}") from None
        if mb <= 0:
            raise ValueError(f"IMPASTO_RAM_BUDGET_MB must be positive, got {raw!r}")
        return int(mb * 2**20)
    return DEFAULT_RAM_BUDGET_MB * 2**20


def choose_tile_size(device: torch.device, bytes_per_pixel: float, context: int, align: int = 4,
                     budget_bytes: int | None = None) -> int:
    """Largest tile side (multiple of ``align``, MIN_TILE..MAX_TILE) whose crop fits the memory budget."""
    budget = memory_budget_bytes(device) if budget_bytes is None else budget_bytes
    side = int(math.sqrt(max(budget, 1) / bytes_per_pixel)) - 2 * context
    side = max(MIN_TILE, min(MAX_TILE, side))
    return side // align * align


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, torch.cuda.OutOfMemoryError):
        return True
    if isinstance(exc, (RuntimeError, MemoryError)):
        msg = str(exc).lower()
        return isinstance(exc, MemoryError) or "out of memory" in msg or "can't allocate memory" in msg
    return False


def free_cached(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()


class OOMSplitter:
    """Runs ``compute(box)`` on a box; on out-of-memory splits the box in four (aligned) and retries each part.

    ``depth`` remembers how many halvings were needed, so later boxes start split (no repeated failures).  Below
    ``min_side`` it gives up and re-raises (a tile that small failing means something else is wrong)."""

    def __init__(self, device: torch.device, align: int = 4, min_side: int = 32):
        self.device = device
        self.align = align
        self.min_side = min_side
        self.depth = 0
        self.halvings = 0          # how many times a box was halved after an OOM (for logs and tests)

    def split(self, box: tuple[int, int, int, int]) -> list[tuple[int, int, int, int]]:
        y0, y1, x0, x1 = box
        ym = y0 + ((y1 - y0) // 2) // self.align * self.align
        xm = x0 + ((x1 - x0) // 2) // self.align * self.align
        ys = [(y0, ym), (ym, y1)] if ym > y0 else [(y0, y1)]
        xs = [(x0, xm), (xm, x1)] if xm > x0 else [(x0, x1)]
        return [(a, b, c, d) for a, b in ys for c, d in xs]

    def run(self, box: tuple[int, int, int, int], compute: Callable[[tuple[int, int, int, int]], None],
            depth: int | None = None) -> None:
        depth = self.depth if depth is None else depth
        if depth > 0:
            for part in self.split(box):
                self.run(part, compute, depth - 1)
            return
        try:
            compute(box)
        except Exception as exc:  # noqa: BLE001 -- only OOM is handled, everything else is re-raised
            if not is_out_of_memory(exc):
                raise
            y0, y1, x0, x1 = box
            if min(y1 - y0, x1 - x0) // 2 < self.min_side:
                raise
            del exc
            free_cached(self.device)
            self.halvings += 1
            self.depth += 1
            log.warning("out of memory on a %dx%d tile; halving the tile and retrying", x1 - x0, y1 - y0)
            for part in self.split(box):
                self.run(part, compute, 0)
