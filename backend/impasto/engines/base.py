"""What every engine shares: the progress callback, the cancel check, and the exception a cancel raises.

Engines are pure functions of tensors and ``StylizeOptions``; they know nothing of ZeroMQ or editors.
Images are float tensors (1, 3, H, W) with RGB in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch

from ..errors import ImpastoError


class Cancelled(Exception):
    """Raised inside an engine when its cancel check returns True; nothing partial is returned."""


class EngineError(ImpastoError, ValueError):
    """Bad input an engine cannot work with (message says what and how to fix it)."""


@dataclass
class Progress:
    fraction: float                      # 0..1 over the whole job
    stage: str                           # short human text, e.g. "scale 2/3" or "tile 5/16"
    preview: Optional[torch.Tensor] = None   # optional small (1,3,h,w) image in [0,1]
    losses: Optional[dict] = None        # optional named loss values for logs/progress bars


ProgressFn = Callable[[Progress], None]
CancelCheck = Callable[[], bool]
# Called with (x, y, tile) for engines that produce their result tile by tile (tile: (1,3,h,w) in [0,1]).
TileFn = Callable[[int, int, torch.Tensor], None]


def no_progress(_: Progress) -> None:
    return None


def never_cancel() -> bool:
    return False


def check_cancel(cancel: Optional[CancelCheck]) -> None:
    """Raise ``Cancelled`` if the job was cancelled. Engines call this between steps/tiles."""
    if cancel is not None and cancel():
        raise Cancelled()


class Engine(Protocol):
    def __call__(self, content: torch.Tensor, style: Optional[torch.Tensor], options, *,
                 progress: ProgressFn = no_progress, cancel: CancelCheck = never_cancel,
                 device: Optional[torch.device] = None) -> torch.Tensor: ...
