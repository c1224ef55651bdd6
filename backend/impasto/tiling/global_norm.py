"""Instance norm with statistics of the whole canvas, for networks run tile by tile.

``nn.InstanceNorm2d`` normalises each channel by the mean/variance of the tensor it sees -- in a tile, the tile's.
``global_instance_norm(net)`` swaps every IN layer of ``net`` for a ``GlobalStatsNorm`` (restored on exit) that
either *collects* per-channel statistics over a region of each tile it sees, or *applies* fixed statistics.

IN layers are sequential: layer k's input depends on the statistics used by layers < k.  ``collect_global_stats``
therefore makes one streamed pass per IN layer, in call order: layers < k apply the statistics already gathered,
layer k accumulates its input over the counted region of every crop, and the forward stops right there
(``StopForward``) so pass k costs only the network prefix up to layer k.  The counted regions of the crops partition
the canvas (exact statistics) -- of the canvas itself or of a thumbnail of it (``runner.TiledRunner.run``).
Per-crop moments are merged with Chan's parallel formula in float64.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

Box = tuple[int, int, int, int]   # (y0, y1, x0, x1), half-open, canvas pixels


class StopForward(Exception):
    """Raised by the collecting norm to end a statistics pass early (nothing after it is needed)."""


@dataclass
class _Moments:
    count: float = 0.0
    mean: torch.Tensor | None = None    # float64 (C,)
    m2: torch.Tensor | None = None      # float64 (C,) sum of squared deviations

    def add(self, x: torch.Tensor) -> None:
        """x: (1, C, h, w) activation region."""
        n = float(x.shape[2] * x.shape[3])
        if n == 0:
            return
        xf = x.float()
        var, mean = torch.var_mean(xf, dim=(0, 2, 3), unbiased=False)
        mean, m2 = mean.double(), var.double() * n
        if self.mean is None:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + delta * delta * (self.count * n / total)
        self.count = total

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mean is None:
            raise RuntimeError("no statistics were collected (empty canvas?)")
        return self.mean.float(), (self.m2 / self.count).float()


class GlobalStatsNorm(nn.Module):
    """Drop-in for ``nn.InstanceNorm2d(affine=...)`` with externally supplied statistics.

    mode "apply": (x - mean) / sqrt(var + eps) * weight + bias with the stored global mean/var.
    mode "collect": accumulate the moments of the input over ``count_box`` (given in crop pixels, scaled to this
    layer's resolution) and raise ``StopForward``.
    mode "local": behave exactly like the wrapped IN (per-tensor statistics).
    mode "record": the input is the whole canvas -- store its statistics, switch to "apply" and apply them.
    """

    def __init__(self, inner: nn.InstanceNorm2d):
        super().__init__()
        self.inner = inner
        self.mode = "local"
        self.mean: torch.Tensor | None = None
        self.var: torch.Tensor | None = None
        self.moments = _Moments()
        self.crop_size: tuple[int, int] = (0, 0)    # (h, w) of the network input crop
        self.count_box: Box = (0, 0, 0, 0)          # region of the crop to count, in crop pixels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "local":
            return self.inner(x)
        if self.mode == "record":
            # the input is the whole canvas: its own statistics are the global ones; keep them for the tiles
            var, mean = torch.var_mean(x.float(), dim=(0, 2, 3), unbiased=False)
            self.mean, self.var = mean.detach().clone(), var.detach().clone()
            self.mode = "apply"
        if self.mode == "collect":
            ch, cw = self.crop_size
            sy, sx = x.shape[2] / ch, x.shape[3] / cw
            y0, y1, x0, x1 = self.count_box
            region = x[:, :, round(y0 * sy):round(y1 * sy), round(x0 * sx):round(x1 * sx)]
            self.moments.add(region)
            raise StopForward()
        if self.mean is None or self.var is None:
            raise RuntimeError("GlobalStatsNorm in 'apply' mode has no statistics; run collect_global_stats first")
        inn = self.inner
        mean, var = self.mean.to(x.device), self.var.to(x.device)
        weight = inn.weight.float() if inn.affine else None
        bias = inn.bias.float() if inn.affine else None
        # eval-mode batch norm with the global statistics = instance norm with fixed statistics (one fused kernel)
        return F.batch_norm(x, mean, var, weight, bias, training=False, eps=inn.eps)

    def finish_collect(self) -> None:
        self.mean, self.var = self.moments.result()
        self.moments = _Moments()
        self.mode = "apply"


def _instance_norm_sites(net: nn.Module) -> list[tuple[nn.Module, str, nn.InstanceNorm2d]]:
    sites = []
    for parent in net.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.InstanceNorm2d):
                sites.append((parent, name, child))
    return sites


def call_order(net: nn.Module, norms: Sequence[nn.Module], channels: int = 3, size: int = 32) -> list[int]:
    """Indices of ``norms`` in the order ``net`` calls them (found with hooks on a small zero input)."""
    order: list[int] = []
    handles = [m.register_forward_pre_hook(lambda m, a, i=i: order.append(i)) for i, m in enumerate(norms)]
    try:
        p = next(net.parameters(), None)
        x = torch.zeros(1, channels, size, size, device=p.device if p is not None else "cpu")
        with torch.inference_mode():
            net(x)
    finally:
        for h in handles:
            h.remove()
    seen: list[int] = []
    for i in order:
        if i not in seen:
            seen.append(i)
    if len(seen) != len(norms):
        raise RuntimeError(f"{len(norms) - len(seen)} instance-norm layer(s) are never called by the network")
    return seen


@contextlib.contextmanager
def global_instance_norm(net: nn.Module, channels: int = 3) -> Iterator[list[GlobalStatsNorm]]:
    """Swap every ``nn.InstanceNorm2d`` in ``net`` for a ``GlobalStatsNorm``; yields them in call order."""
    sites = _instance_norm_sites(net)
    wrappers = [GlobalStatsNorm(inner) for _, _, inner in sites]
    for (parent, name, _), w in zip(sites, wrappers):
        setattr(parent, name, w)
    try:
        order = call_order(net, wrappers, channels)
        yield [wrappers[i] for i in order]
    finally:
        for parent, name, inner in sites:
            setattr(parent, name, inner)


@dataclass(frozen=True)
class StatsCrop:
    crop: Box     # region of the canvas the network is run on
    count: Box    # region whose activations are counted (inside crop, aligned to the network stride)


def collect_global_stats(norms: Sequence[GlobalStatsNorm], crops: Sequence[StatsCrop],
                         run: Callable[[StatsCrop], None], *,
                         on_pass: Callable[[int, int], None] | None = None) -> None:
    """Fill every norm's global mean/var: one pass over ``crops`` per norm, in call order.

    ``run(crop)`` must read the canvas region ``crop.crop`` and call the network on it (catching nothing).
    ``on_pass(k, n)`` is called after each crop of each pass (for progress / cancellation)."""
    for norm in norms:
        norm.mode = "local"
        norm.mean = norm.var = None
    total = len(norms) * len(crops)
    done = 0
    for norm in norms:
        norm.mode = "collect"
        for c in crops:
            y0, y1, x0, x1 = c.crop
            cy0, cy1, cx0, cx1 = c.count
            for m in norms:
                m.crop_size = (y1 - y0, x1 - x0)
            norm.count_box = (cy0 - y0, cy1 - y0, cx0 - x0, cx1 - x0)
            try:
                run(c)
            except StopForward:
                pass
            else:
                raise RuntimeError("the statistics pass ran through the whole network without reaching its norm")
            done += 1
            if on_pass is not None:
                on_pass(done, total)
        norm.finish_collect()


def set_crop_size(norms: Iterable[GlobalStatsNorm], h: int, w: int) -> None:
    for m in norms:
        m.crop_size = (h, w)


def reference_stats(net: nn.Module, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(mean, var) that each IN of ``net`` computes on the whole input ``x``, in call order (for tests/benches)."""
    sites = _instance_norm_sites(net)
    stats: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    order: list[int] = []

    def hook(i):
        def fn(m, args):
            v, mu = torch.var_mean(args[0].float(), dim=(0, 2, 3), unbiased=False)
            if i not in stats:
                order.append(i)
            stats[i] = (mu, v)
        return fn

    handles = [inner.register_forward_pre_hook(hook(i)) for i, (_, _, inner) in enumerate(sites)]
    try:
        with torch.inference_mode():
            net(x)
    finally:
        for h in handles:
            h.remove()
    return [stats[i] for i in order]


__all__ = ["GlobalStatsNorm", "StopForward", "StatsCrop", "global_instance_norm", "collect_global_stats",
           "reference_stats", "call_order"]
