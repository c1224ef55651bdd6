"""Other devices a tiled run may compute tiles on, besides its own: held for the run, or borrowed tile by tile.

The tiler knows nothing of who owns a device.  It asks a ``DeviceLender`` for a device before each tile and gives
it back as soon as that tile is computed, so the owner of a lent device (in the daemon: the worker it belongs to,
``impasto.daemon.devices.DevicePool``) waits at most one tile to get it back.  ``DeviceList`` is the lender for a
plain list of devices (tests, benchmarks, a script with several GPUs): each is lent to one tile at a time.

``replicate`` gives a tiled run its own module objects (so swapping a layer in them never touches a network another
thread is running) -- sharing the weight tensors on the same device, copying them to another one.
"""
from __future__ import annotations

import copy
import itertools
import threading
from dataclasses import dataclass, field
from typing import Callable, Optional, Protocol, Sequence, Union

import torch
import torch.nn as nn


@dataclass
class Loan:
    """A device lent for one tile.  ``give_back`` returns it to its lender (idempotent)."""

    device: torch.device
    name: str                                   # the lender's name for it (e.g. a daemon worker's "cpu#1")
    _return: Callable[[], None] = field(repr=False, default=lambda: None)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _returned: bool = field(default=False, repr=False)

    def give_back(self) -> None:
        with self._lock:
            if self._returned:
                return
            self._returned = True
        self._return()


class DeviceLender(Protocol):
    """Lends devices to a tiled run, one tile at a time."""

    size: int                                   # the most devices it may lend at once (sizes the run's look-ahead)

    def borrow(self) -> Optional[Loan]:
        """A free device, now lent, or None when none is free.  Never blocks."""
        ...


class DeviceList:
    """A ``DeviceLender`` over a fixed list of devices: each is lent to at most one tile at a time.

    The same device may be listed twice (two tiles run on it at once, e.g. two CPU threads); loans are named after
    their device, ``#i`` (the list index) added where it is listed more than once."""

    def __init__(self, devices: Sequence[Union[str, torch.device]]):
        self.devices = [torch.device(d) for d in devices]
        self.size = len(self.devices)
        listed = [str(d) for d in self.devices]
        self.names = [s if listed.count(s) == 1 else f"{s}#{i}" for i, s in enumerate(listed)]
        self._free = list(range(self.size))
        self._lock = threading.Lock()

    def borrow(self) -> Optional[Loan]:
        with self._lock:
            if not self._free:
                return None
            i = self._free.pop(0)
        return Loan(self.devices[i], self.names[i], lambda: self._give_back(i))

    def _give_back(self, i: int) -> None:
        with self._lock:
            self._free.append(i)
            self._free.sort()


Helpers = Union[Sequence[Union[str, torch.device]], DeviceLender, None]


def as_lender(helpers: Helpers) -> Optional[DeviceLender]:
    """``helpers`` as a lender: None stays None, a sequence becomes a ``DeviceList``, a lender is returned as is."""
    if helpers is None:
        return None
    if hasattr(helpers, "borrow"):
        return helpers                          # type: ignore[return-value]
    devices = list(helpers)                     # type: ignore[arg-type]
    return DeviceList(devices) if devices else None


def same_device(a: torch.device, b: torch.device) -> bool:
    """True when ``a`` and ``b`` name the same device ("cuda" and "cuda:0" do, when 0 is current)."""
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    idx = (lambda d: d.index if d.index is not None else torch.cuda.current_device())
    return idx(a) == idx(b)


def replicate(net: nn.Module, device: Optional[torch.device] = None) -> nn.Module:
    """New module objects with ``net``'s structure and state.  Tensors already on ``device`` (or all of them, when
    ``device`` is None) are shared, not copied; the others are copied to ``device``.  Plain tensor attributes of the
    modules (``GlobalStatsNorm``'s statistics) are treated like parameters."""
    memo: dict[int, object] = {}
    tensors = itertools.chain(net.parameters(), net.buffers(),
                              (v for m in net.modules() for v in vars(m).values() if isinstance(v, torch.Tensor)))
    for t in tensors:
        if id(t) in memo:
            continue
        if device is None or same_device(t.device, device):
            memo[id(t)] = t
        elif isinstance(t, nn.Parameter):
            memo[id(t)] = nn.Parameter(t.detach().to(device), requires_grad=t.requires_grad)
        else:
            memo[id(t)] = t.detach().to(device)
    return copy.deepcopy(net, memo)


__all__ = ["Loan", "DeviceLender", "DeviceList", "Helpers", "as_lender", "replicate", "same_device"]
