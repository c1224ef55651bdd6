"""Jobs inside the daemon and the priority queue the device workers take them from."""
from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from impasto_protocol.images import ImageBuffer
from impasto_protocol.options import StylizeOptions
from impasto_protocol.wire import Compression

from .convert import decode_into, decoded_channels

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
    compression: Optional[Compression] = None  # how its replies' buffers travel (the request's _reply_compression)
    # stylize
    options: Optional[StylizeOptions] = None
    extra_engine: Optional[str] = None         # name of an engine in DaemonConfig.extra_engines, else None
    content: Optional[ImageBuffer] = None
    style: Optional[ImageBuffer] = None
    mask: Optional[ImageBuffer] = None
    deliver: str = "result"
    tile_size: int = 1024
    mask_mode: str = "blend"                   # "blend" with the content, or "alpha": mask × alpha, colour unblended
    keypoints_only: bool = False               # DST: only NBB + cleaning; the result is the proposed keypoints
    overlay: bool = False                      # DST: send the warp overlay images with the result
    # train
    train_name: str = ""
    train_steps: Optional[int] = None
    train_params: dict = field(default_factory=dict)
    train_photos: int = 0                      # photos sent in the request (uploads photo0...), else content_dir
    # streamed images still arriving: name -> Upload; once complete their tensors move to ``decoded``
    uploads: dict = field(default_factory=dict)
    decoded: dict = field(default_factory=dict)
    last_chunk_at: float = field(default_factory=time.monotonic)
    # state
    state: str = "queued"                      # uploading | queued | running | done | error | cancelled
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
    signer: Any = None                         # the Signer of the connection that submitted it (remote clients
                                               # each have their own key); None = the daemon's own
    client: str = ""                           # a remote client's name (allow-list), "" for a local one
    worker: str = ""                           # the worker that ran it (``devices.worker_names``: cpu#0, cuda:1 ...)

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
        return self.extra_engine or (self.options.engine if self.options else "?")

    def summary(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "kind": self.kind, "engine": self.engine_name, "session": self.session,
                "state": self.state, "reason": self.reason, "steps": self.steps,
                "steps_at_cancel": self.steps_at_cancel, "device": self.device, "worker": self.worker,
                "submitted_at": self.submitted_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "cancel_requested_at": self.cancel_requested_at}

    @property
    def held_bytes(self) -> int:
        """Image memory this job holds before it runs: its inline frames (kept uncopied until the worker decodes
        them) plus the float tensors of streamed images (allocated when accepted) -- what the daemon's one queue
        budget (``max_queued_bytes``) counts."""
        n = sum(u.tensor_bytes for u in self.uploads.values())
        n += sum(int(t.numel()) * t.element_size() for t in self.decoded.values())
        for img in (self.content, self.style, self.mask):
            if img is not None and img.data is not None:
                n += memoryview(img.data).nbytes
        return n

    def release_buffers(self) -> None:
        """Drop the references to received frames so their memory is freed as soon as the job ends."""
        self.content = self.style = self.mask = None
        self.uploads = {}
        self.decoded = {}


@dataclass
class Upload:
    """A streamed image, decoded row band by row band as its chunks arrive (so decoding overlaps the transfer).

    The float tensor is allocated only once the description has passed validation."""

    image: ImageBuffer
    color: bool = True                     # expand grey to RGB (False for masks)
    tensor: Optional[torch.Tensor] = None  # (1, C', H, W) float32
    received: int = 0
    rows_done: int = 0
    carry: bytes = b""                     # the start of a row whose end is in the next chunk

    @property
    def tensor_bytes(self) -> int:
        return decoded_channels(self.image.channels, self.color) * self.image.height * self.image.width * 4

    @property
    def complete(self) -> bool:
        return self.received == self.image.nbytes

    def allocate(self) -> None:
        img = self.image
        self.tensor = torch.empty((1, decoded_channels(img.channels, self.color), img.height, img.width),
                                  dtype=torch.float32)

    def feed(self, buf: Any) -> None:
        """Append one chunk (already checked to continue the upload) and decode the rows it completes."""
        assert self.tensor is not None
        mv = memoryview(buf).cast("B")
        data = mv if not self.carry else memoryview(self.carry + mv.tobytes())
        img, stride = self.image, self.image.stride or 0
        rows = min(data.nbytes // stride, img.height - self.rows_done)
        if rows:
            band = ImageBuffer(img.width, rows, img.channels, img.dtype, data[:rows * stride], stride,
                               img.colorspace, img.bgr)
            decode_into(band, self.tensor[:, :, self.rows_done:self.rows_done + rows], color=self.color)
            self.rows_done += rows
        self.carry = data[rows * stride:].tobytes()
        self.received += mv.nbytes


class JobQueue:
    """Priority queue (lower first, then FIFO) shared by the workers; queued jobs can be removed (cancel)."""

    def __init__(self, history: int = 200):
        self._heap: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self.active: dict[str, Job] = {}          # job_id -> queued or running job
        self.recent: deque[dict] = deque(maxlen=history)
        self._owners: OrderedDict[str, list] = OrderedDict()   # job_id -> routing frames, for recent jobs

    def put(self, job: Job) -> int:
        """Queue ``job``; returns how many jobs are ahead of it (running ones included)."""
        with self._cond:
            self.active[job.job_id] = job
            heapq.heappush(self._heap, (job.priority, next(self._seq), job))
            ahead = sum(1 for p, _, j in self._heap if j is not job and j.state == "queued" and p <= job.priority)
            ahead += sum(1 for j in self.active.values() if j.state == "running")
            self._cond.notify()
            return ahead

    def hold(self, job: Job) -> None:
        """Register a job whose images are still streaming in (cancellable, visible in status, not runnable)."""
        with self._cond:
            job.state = "uploading"
            self.active[job.job_id] = job

    def release(self, job: Job) -> bool:
        """An uploading job has all its pixels: queue it.  False when it was cancelled meanwhile."""
        with self._cond:
            if job.state != "uploading":
                return False
            job.state = "queued"
            heapq.heappush(self._heap, (job.priority, next(self._seq), job))
            self._cond.notify()
            return True

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

    def get_nowait(self, max_priority: int) -> Optional[Job]:
        """The next queued job if its priority is at most ``max_priority`` (now marked running), else None."""
        with self._cond:
            while self._heap and self._heap[0][2].state != "queued":
                heapq.heappop(self._heap)
            if not self._heap or self._heap[0][0] > max_priority:
                return None
            job = heapq.heappop(self._heap)[2]
            job.state = "running"
            job.started_at = time.time()
            return job

    def queued_positions(self) -> dict[str, int]:
        """job_id -> jobs ahead of it (running ones included), for every queued job."""
        with self._cond:
            running = sum(1 for j in self.active.values() if j.state == "running")
            order = sorted((p, seq, j) for p, seq, j in self._heap if j.state == "queued")
            return {j.job_id: running + i for i, (_, _, j) in enumerate(order)}

    def remove_queued(self, job: Job) -> bool:
        """Take a job that has not started out of the queue.  True when it was still queued."""
        with self._cond:
            if job.state not in ("queued", "uploading"):
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
            self._owners[job.job_id] = list(job.identities)
            while len(self._owners) > (self.recent.maxlen or 0):
                self._owners.popitem(last=False)
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

    def recent_owner(self, job_id: str) -> Optional[list]:
        """The routing frames of the connection that submitted a recently finished job."""
        with self._cond:
            return self._owners.get(job_id)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        """True once ``close`` ran: ``get`` then returns None at once and the workers stop."""
        return self._closed

    def idle(self) -> bool:
        with self._cond:
            return not self.active
