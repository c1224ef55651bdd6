"""Following a daemon job: ``JobTracker`` for a UI that polls (Krita's docker) and ``wait_for_result`` for a plug-in
that blocks until the job ends (GIMP's procedures).

``JobTracker`` follows one job through its events, estimates the time left, and hands pixels to a sink (the
editor's side); it is driven by ``pump()`` from a timer and testable with a fake job.  Contract with the sink:
``on_tile(event)`` for every tile, then exactly one of ``on_result(event)`` (the job succeeded: insert it) or
``on_abort(reason)`` (error or cancelled: insert nothing, remove anything temporary).
"""
from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

from impasto_protocol.messages import (Accepted, CancelledEvent, ErrorEvent, ProgressEvent, ResultEvent,
                                       TileEvent)

from .errors import PluginError
from .servers import lost_text

log = logging.getLogger(__name__)


class State(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (State.DONE, State.FAILED, State.CANCELLED)


class Sink(Protocol):
    def on_tile(self, event: TileEvent) -> None: ...
    def on_result(self, event: ResultEvent) -> None: ...
    def on_abort(self, reason: str) -> None: ...


class EtaEstimator:
    """Seconds left, from the progress rate since the first progress event (None until it is meaningful)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._t0: Optional[float] = None
        self._f0 = 0.0

    def update(self, fraction: float) -> Optional[float]:
        now = self._clock()
        if self._t0 is None:
            self._t0, self._f0 = now, fraction
            return None
        done = fraction - self._f0
        if done < 0.02 or now - self._t0 < 0.5:
            return None
        return max(0.0, (now - self._t0) * (1.0 - fraction) / done)


def format_eta(seconds: Optional[float]) -> str:
    if seconds is None:
        return ""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s left"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s left"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min left"


@dataclass
class JobTracker:
    """One job as the docker shows it."""

    job: Any                                   # impasto_protocol.client.Job (poll(), cancel(), id)
    kind: str                                  # "stylize" | "preview" | "train"
    title: str
    sink: Optional[Sink] = None
    clock: Callable[[], float] = time.monotonic
    state: State = State.QUEUED
    fraction: float = 0.0
    stage: str = ""
    queue_position: int = 0
    eta_s: Optional[float] = None
    message: str = ""                          # error text or a short outcome
    preview: Any = None                        # last preview ImageBuffer
    info: dict = field(default_factory=dict)
    tiles: int = 0
    started: float = 0.0
    finished_at: Optional[float] = None

    def __post_init__(self) -> None:
        self._eta = EtaEstimator(self.clock)
        self.started = self.clock()

    @property
    def active(self) -> bool:
        return not self.state.finished

    def status_text(self) -> str:
        if self.state is State.QUEUED:
            return f"{self.title}: waiting ({self.queue_position} job(s) ahead)" if self.queue_position else \
                f"{self.title}: starting…"
        if self.state is State.RUNNING:
            bits = [f"{self.title}: {int(self.fraction * 100)}%"]
            if self.stage:
                bits.append(self.stage)
            eta = format_eta(self.eta_s)
            if eta:
                bits.append(eta)
            return " · ".join(bits)
        if self.state is State.CANCELLING:
            return f"{self.title}: cancelling…"
        if self.state is State.DONE:
            return f"{self.title}: done in {self.finished_at - self.started:.1f} s" if self.finished_at else "done"
        if self.state is State.CANCELLED:
            return f"{self.title}: cancelled, nothing was changed"
        return f"{self.title} failed: {self.message}"

    def cancel(self) -> None:
        if self.active:
            self.state = State.CANCELLING
            try:
                self.job.cancel()
            except Exception as e:  # the connection is gone: nothing will come back
                log.warning("cancel failed: %s", e)
                self._finish(State.CANCELLED, f"cancelled ({e})")

    def fail(self, message: str) -> None:
        """End the job from the outside (the daemon is gone): the sink removes anything temporary."""
        if self.active:
            self._finish(State.FAILED, message, abort=True)

    def pump(self) -> bool:
        """Handle all events that arrived; returns True while the job is still active."""
        if not self.active:
            return False
        try:
            events = self.job.poll()
        except Exception as e:
            self._finish(State.FAILED, f"lost the connection to the daemon ({e})")
            return False
        for ev in events:
            self.handle(ev)
            if not self.active:
                break
        return self.active

    def handle(self, ev: Any) -> None:
        if isinstance(ev, Accepted):
            self.queue_position = ev.position
        elif isinstance(ev, ProgressEvent):
            if self.state is State.QUEUED:
                self.state = State.RUNNING
            self.fraction = max(0.0, min(1.0, float(ev.fraction)))
            self.stage = ev.stage or self.stage
            self.eta_s = self._eta.update(self.fraction)
            if ev.preview is not None:
                self.preview = ev.preview
        elif isinstance(ev, TileEvent):
            if self.state is State.QUEUED:
                self.state = State.RUNNING
            self.tiles += 1
            if self.sink is not None:
                self._guard(self.sink.on_tile, ev)
        elif isinstance(ev, ResultEvent):
            self.info = dict(ev.info or {})
            if self.sink is not None and not self._guard(self.sink.on_result, ev):
                return
            self.fraction = 1.0
            self._finish(State.DONE, "")
        elif isinstance(ev, ErrorEvent):
            self._finish(State.FAILED, ev.message or ev.code, abort=True)
        elif isinstance(ev, CancelledEvent):
            reason = "" if ev.reason == "requested" else ev.reason
            self._finish(State.CANCELLED, reason, abort=True)

    def _guard(self, fn: Callable[[Any], None], arg: Any) -> bool:
        """Run a sink callback; a failure there fails the job (and asks the sink to clean up)."""
        try:
            fn(arg)
            return True
        except Exception as e:
            log.exception("inserting the result failed")
            self._finish(State.FAILED, f"could not insert the result: {e}", abort=True)
            try:
                self.job.cancel()
            except Exception:
                pass
            return False

    def _finish(self, state: State, message: str, abort: bool = False) -> None:
        self.state, self.message = state, message
        self.finished_at = self.clock()
        self.eta_s = None
        if abort and self.sink is not None:
            try:
                self.sink.on_abort(message or state.value)
            except Exception:
                log.exception("cleaning up after the job failed")


def wait_for_result(job: Any, on_progress: Callable[[float, str], None],
                    timeout: Optional[float] = None, image: bool = True,
                    overlays: Optional[dict] = None) -> tuple[Any, dict]:
    """Follow a job to its end; returns (image, info) or raises PluginError with the daemon's message.
    ``image=False``: the job sends no image (proposed keypoints), the result is (None, info).  ``overlays``, when
    given, receives the result's overlay images (name -> ImageBuffer)."""
    try:
        for ev in job.events(timeout=timeout):
            if isinstance(ev, ProgressEvent):
                on_progress(max(0.0, min(1.0, float(ev.fraction))), ev.stage or "")
            elif isinstance(ev, ResultEvent):
                if ev.image is None and image:
                    raise PluginError("the daemon finished without sending an image")
                if overlays is not None:
                    overlays.update(getattr(ev, "overlays", None) or {})
                return ev.image, dict(ev.info or {})
            elif isinstance(ev, ErrorEvent):
                raise PluginError(f"the daemon could not stylize: {ev.message or ev.code}")
            elif isinstance(ev, CancelledEvent):
                raise PluginError(f"the job was cancelled ({ev.reason})")
    except TimeoutError as e:
        raise PluginError(str(e)) from None
    except PluginError:
        raise
    except Exception as e:    # DaemonNotRunning and friends: the daemon (or the remote server) went away mid-job
        if type(e).__name__ in ("DaemonNotRunning", "ProtocolError"):
            remote = getattr(getattr(getattr(job, "client", None), "info", None), "remote", "")
            if remote and type(e).__name__ == "DaemonNotRunning":     # the words Krita's docker uses too
                raise PluginError(lost_text(remote, getattr(job.client, "dead_after", None))) from None
            raise PluginError(f"lost the connection to Impasto: {e}") from None
        raise
    raise PluginError("the daemon ended the job without a result")
