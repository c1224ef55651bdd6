"""``impasto stylize --daemon``: run a job through the daemon, the same path the editor plugins use.

Tensors travel as f32 buffers to the local daemon, so the result is exactly what the engine computed in the daemon.
To a remote server (``--daemon NAME``) they travel as u16 -- a quarter of the bytes, losslessly compressible, and
exact for the 8- and 16-bit files the CLI reads (the result comes back as u16, 65535 levels, then is saved at the
file's bit depth).
"""
from __future__ import annotations

import logging
import os
from typing import Callable, Optional

import numpy as np
import torch

from impasto_protocol.client import Client, DaemonNotRunning, ProtocolError
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import CancelledEvent, ErrorEvent, ProgressEvent
from impasto_protocol.options import StylizeOptions

from ..engines.base import Cancelled, Progress
from ..errors import ImpastoError
from .convert import PixelFormat, buffer_to_tensor, tensor_to_buffer

log = logging.getLogger(__name__)


class DaemonJobError(ImpastoError):
    """The daemon refused or failed the job; ``code`` is the protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"daemon: {message} ({code})")
        self.code = code


def tensor_to_f32_buffer(t: torch.Tensor) -> ImageBuffer:
    """(1, C, H, W) float -> tight f32 interleaved ImageBuffer (values unchanged)."""
    if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] not in (1, 2, 3, 4):
        raise ImpastoError(f"expected a (1, C, H, W) image tensor, got {tuple(t.shape)}")
    arr = np.ascontiguousarray(t[0].detach().to("cpu", torch.float32).permute(1, 2, 0).numpy())
    h, w, c = arr.shape
    return ImageBuffer(width=w, height=h, channels=c, dtype="f32", data=memoryview(arr).cast("B"))


def tensor_to_u16_buffer(t: torch.Tensor) -> ImageBuffer:
    """(1, C, H, W) float in [0, 1] -> u16 interleaved ImageBuffer (what travels to a remote server)."""
    if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] not in (1, 2, 3, 4):
        raise ImpastoError(f"expected a (1, C, H, W) image tensor, got {tuple(t.shape)}")
    return tensor_to_buffer(t.detach().to("cpu", torch.float32), PixelFormat(int(t.shape[1]), "u16"))


def run_via_daemon(content: torch.Tensor, style: Optional[torch.Tensor], options: StylizeOptions,
                   progress: Optional[Callable[[Progress], None]] = None, *, mask: Optional[torch.Tensor] = None,
                   connection_file: str | os.PathLike | None = None, autostart: bool = True,
                   client: Optional[Client] = None, remote: Optional[str] = None) -> torch.Tensor:
    """Stylize through the daemon; returns (1, C, H, W) float32 like ``impasto.engines.stylize``.

    ``progress`` receives ``impasto.engines.base.Progress`` (with ``preview`` as a tensor when one was sent).
    Ctrl-C cancels the job in the daemon.  Raises ``DaemonJobError`` for a refused/failed job and ``Cancelled``
    when the job was cancelled (e.g. the daemon shut down)."""
    own = client is None
    try:
        c = client or Client.connect(connection_file, autostart=autostart and not remote, remote=remote)
    except DaemonNotRunning as e:
        if remote:
            raise ImpastoError(str(e)) from None
        raise ImpastoError(f"no daemon: {e} (start one with `impasto serve`)") from None
    encode = tensor_to_u16_buffer if c.info.remote else tensor_to_f32_buffer
    try:
        job = c.stylize(encode(content), options,
                        style=encode(style) if style is not None else None,
                        mask=encode(mask) if mask is not None else None)
        try:
            for ev in job.events():
                if isinstance(ev, ProgressEvent) and progress is not None:
                    pv = buffer_to_tensor(ev.preview) if ev.preview is not None else None
                    progress(Progress(ev.fraction, ev.stage, preview=pv, losses=ev.losses))
                elif isinstance(ev, ErrorEvent):
                    raise DaemonJobError(ev.code, ev.message)
                elif isinstance(ev, CancelledEvent):
                    raise Cancelled(f"the daemon cancelled the job ({ev.reason})")
        except KeyboardInterrupt:
            job.cancel()
            c.poll_all(timeout=0.2)
            raise
        assert job.result is not None
        return buffer_to_tensor(job.result, color=False)
    except ProtocolError as e:
        raise DaemonJobError(e.code, e.message) from None
    except DaemonNotRunning as e:
        raise ImpastoError(f"the daemon went away: {e}") from None
    finally:
        if own:
            c.close()
