"""The daemon's devices: one worker per device entry, their names, the CPU threads they share, and lending.

``impasto serve --device cpu --device cpu`` runs two workers on the CPU; a device listed more than once gives
workers named ``cpu#0``, ``cpu#1`` (a device listed once keeps its own name: ``cpu``, ``cuda:0``).

CPU threads: ``torch.set_num_threads`` is process-wide, and every thread that runs torch ops uses that many
intra-op threads.  With k CPU workers the daemon divides torch's thread count (the cores, or ``OMP_NUM_THREADS``)
by k, so k jobs at once use the cores once, not k times over (``share_cpu_threads``).  One CPU worker keeps
torch's default.

``DevicePool`` lets a tiled job use idle workers' devices: a worker holds its slot while it runs a job (``claim``
... ``release``); the slot of an idle worker may be lent, one tile at a time, to a job running on another worker of
the same device type (``lender``; ``impasto.tiling.devices`` has the tiler's side).  A worker that gets a job while
its device is lent waits for that one tile, and nothing more is lent from it until it is idle again.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch

from ..tiling.devices import Loan

log = logging.getLogger(__name__)


def worker_names(devices: Sequence[str]) -> list[str]:
    """One name per device entry: the device itself, ``#i`` (its occurrence) added when it is listed twice or more."""
    keys = [str(torch.device(d)) for d in devices]
    seen: dict[str, int] = {}
    names = []
    for k in keys:
        i = seen.get(k, 0)
        seen[k] = i + 1
        names.append(k if keys.count(k) == 1 else f"{k}#{i}")
    return names


def share_cpu_threads(devices: Sequence[str]) -> Optional[int]:
    """With two or more CPU workers, divide torch's intra-op threads among them (module docstring); returns the
    threads each now uses, or None when nothing was changed.  Call it before the workers start."""
    n = sum(1 for d in devices if torch.device(d).type == "cpu")
    if n < 2:
        return None
    total = torch.get_num_threads()
    per = max(1, total // n)
    torch.set_num_threads(per)
    log.info("event=cpu_threads cpu_workers=%d threads_total=%d threads_per_worker=%d", n, total, per)
    return per


@dataclass
class _Slot:
    name: str
    device: torch.device
    busy: bool = False              # its worker is running a job
    wanted: bool = False            # its worker took a job and waits for a lent tile to finish
    lent_to: Optional[str] = None   # the worker whose job is computing a tile on it
    tiles_lent: int = 0             # tiles it has computed for other workers' jobs
    waited: float = 0.0             # seconds its worker waited in total to get it back

    @property
    def state(self) -> str:
        if self.lent_to is not None:
            return "lent"
        return "busy" if self.busy else "idle"


class DevicePool:
    """The workers' devices, one slot per worker name (module docstring)."""

    def __init__(self, slots: Sequence[tuple[str, Union[str, torch.device]]]):
        self._slots = {name: _Slot(name, torch.device(dev)) for name, dev in slots}
        self._cond = threading.Condition()

    def claim(self, name: str) -> float:
        """Worker ``name`` takes its device for a job: waits while a lent tile runs on it (one tile at most);
        returns the seconds it waited."""
        t0 = time.monotonic()
        with self._cond:
            slot = self._slots[name]
            slot.wanted = True
            while slot.lent_to is not None:
                self._cond.wait()
            slot.wanted, slot.busy = False, True
            waited = time.monotonic() - t0
            slot.waited += waited
        if waited > 0.001:
            log.info("event=device_claimed worker=%s waited=%.3f", name, waited)
        return waited

    def release(self, name: str) -> None:
        """Worker ``name`` has finished its job: its device may be lent again."""
        with self._cond:
            self._slots[name].busy = False
            self._cond.notify_all()

    def idle_except(self, name: str) -> list[str]:
        """The workers other than ``name`` that run no job now (their device may be lent to a tile meanwhile)."""
        with self._cond:
            return [s.name for s in self._slots.values() if s.name != name and not s.busy and not s.wanted]

    def borrow(self, home: str) -> Optional[Loan]:
        """An idle device of ``home``'s type from another worker, lent to ``home``'s job for one tile; None when
        there is none.  Never blocks."""
        with self._cond:
            kind = self._slots[home].device.type
            for slot in self._slots.values():
                if slot.name != home and slot.device.type == kind and slot.state == "idle" and not slot.wanted:
                    slot.lent_to = home
                    return Loan(slot.device, slot.name, lambda s=slot: self._give_back(s))
        return None

    def _give_back(self, slot: _Slot) -> None:
        with self._cond:
            slot.lent_to = None
            slot.tiles_lent += 1
            self._cond.notify_all()

    def lender(self, home: str) -> "PoolLender":
        """The ``tiling.devices.DeviceLender`` a job on worker ``home`` passes to the tiler."""
        return PoolLender(self, home)

    def report(self) -> list[dict]:
        """Per worker: name, device, state (idle | busy | lent), lent_to, tiles_lent, waited_s -- for status."""
        with self._cond:
            return [{"name": s.name, "device": str(s.device), "state": s.state, "lent_to": s.lent_to,
                     "tiles_lent": s.tiles_lent, "waited_s": round(s.waited, 3)} for s in self._slots.values()]


class PoolLender:
    """The pool seen from one worker's job: borrows the other idle workers' devices of its type."""

    def __init__(self, pool: DevicePool, home: str):
        self.pool, self.home = pool, home
        kind = pool._slots[home].device.type
        self.size = sum(1 for s in pool._slots.values() if s.name != home and s.device.type == kind)

    def borrow(self) -> Optional[Loan]:
        return self.pool.borrow(self.home)


__all__ = ["DevicePool", "PoolLender", "worker_names", "share_cpu_threads"]
