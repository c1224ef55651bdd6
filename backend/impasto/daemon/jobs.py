"""Jobs inside the daemon and the priority queue the device workers take them from."""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Optional

from impasto_protocol.images import ImageBuffer
from impasto_protocol.options import StylizeOptions

PRIORITY_INTERACTIVE = 0      # stylize: an artist is waiting
PRIORITY_TRAINING = 10        # MT training: hours of work, runs when nothing interactive is queued


@dataclass
class Job:
    job_id: str
    kind: str                                  # "stylize" | "train"
    session: str
    identities: list                           # ROUTER routing frames of the requesting socket
    request_header: dict
    priority: int = PRIORITY_INTERACTIVE
    # stylize
    options: Optional[StylizeOptions] = None
    test_engine: Optional[str] = None          # name of a test engine (serve --test-engines), else None
    content: Optional[ImageBuffer] = None
    style: Optional[ImageBuffer] = None
    mask: Optional[ImageBuffer] = None
    deliver: str = "result"
    tile_size: int = 1024
    # train
    train_name: str = ""
    train_steps: Optional[int] = None
    train_params: dict = field(default_factory=dict)
    # state
    state: str = "queued"                      # queued | running | done | error | cancelled
    reason: str = ""                           # cancel reason or error code
    cancel_event: threading.Event = field(default_factory=threading.Event)
    cancel_reason: str = ""
    steps: int = 0                             # progress callbacks seen so far
    steps_at_cancel: Optional[int] = None
    submitted_at: float = field(default_factory=time.time)
    started_at: Optional[float] = None
    finished_at: Optional[float] = None
    cancel_requested_at: Optional[float] = None
    device: str = ""

    def request_cancel(self, reason: str) -> None:
        if not self.cancel_event.is_set():
            self.cancel_reason = reason
            self.steps_at_cancel = self.steps
            self.cancel_requested_at = time.time()
            self.cancel_event.set()

    @property
    def engine_name(self) -> str:
        if self.kind == "train":
            return "mt-train"
        return self.test_engine or (self.options.engine if self.options else "?")

    def summary(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind, "engine": self.engine_name, "session": self.session,
                "state": self.state, "reason": self.reason, "steps": self.steps,
                "steps_at_cancel": self.steps_at_cancel, "device": self.device,
                "submitted_at": self.submitted_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "cancel_requested_at": self.cancel_requested_at}

    def release_buffers(self) -> None:
        """Drop the references to received frames so their memory is freed as soon as the job ends."""
        self.content = self.style = self.mask = None


class JobQueue:
    """Priority queue (lower first, then FIFO) shared by the workers; queued jobs can be removed (cancel)."""

    def __init__(self, history: int = 200):
        self._heap: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self.active: dict[str, Job] = {}          # job_id -> queued or running job
        self.recent: deque[dict] = deque(maxlen=history)

    def put(self, job: Job) -> int:
        """Queue ``job``; returns how many jobs are ahead of it (running ones included)."""
        with self._cond:
            self.active[job.job_id] = job
            heapq.heappush(self._heap, (job.priority, next(self._seq), job))
            ahead = sum(1 for p, _, j in self._heap if j is not job and j.state == "queued" and p <= job.priority)
            ahead += sum(1 for j in self.active.values() if j.state == "running")
            self._cond.notify()
            return ahead

    def get(self, timeout: float = 0.2) -> Optional[Job]:
        """The next queued job (now marked running), or None after ``timeout`` or when closed."""
        with self._cond:
            end = time.monotonic() + timeout
            while True:
                while self._heap and self._heap[0][2].state != "queued":
                    heapq.heappop(self._heap)
                if self._heap:
                    job = heapq.heappop(self._heap)[2]
                    job.state = "running"
                    job.started_at = time.time()
                    return job
                left = end - time.monotonic()
                if self._closed or left <= 0:
                    return None
                self._cond.wait(left)

    def remove_queued(self, job: Job) -> bool:
        """Take a job that has not started out of the queue.  True when it was still queued."""
        with self._cond:
            if job.state != "queued":
                return False
            job.state = "cancelled"
            return True

    def finish(self, job: Job, state: str, reason: str = "") -> None:
        with self._cond:
            job.state = state
            job.reason = reason
            job.finished_at = time.time()
            self.active.pop(job.job_id, None)
            self.recent.append(job.summary())
            job.release_buffers()
            self._cond.notify_all()

    def get_job(self, job_id: str) -> Optional[Job]:
        with self._cond:
            return self.active.get(job_id)

    def jobs(self) -> list[Job]:
        with self._cond:
            return list(self.active.values())

    def find_recent(self, job_id: str) -> Optional[dict]:
        with self._cond:
            for s in reversed(self.recent):
                if s["job_id"] == job_id:
                    return s
        return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def idle(self) -> bool:
        with self._cond:
            return not self.active
