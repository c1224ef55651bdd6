"""What a worker thread sends through: its messages are signed in the worker and pushed to the daemon's loop.

Workers never touch the ROUTER socket (ZeroMQ sockets are not thread-safe): an ``Outbox`` signs each message with
the key of the connection it goes to (the daemon's, or a remote client's own: ``Job.signer``) -- the heavy hashing
of result buffers stays off the main loop -- and pushes the frames over an inproc PUSH socket to the PULL socket
bound at ``OUTBOX``, which the main loop forwards unchanged (zero-copy).

A job that asked for compressed replies (``Job.compression``) has its buffers deflated on the wire module's thread
pool, a few messages ahead of the one being pushed, while the worker encodes the next band; messages still leave
in the order they were sent, and a job's terminal message flushes everything before it.
"""
from __future__ import annotations

from collections import deque
from typing import Any, Optional

import zmq

from impasto_protocol.messages import TERMINAL
from impasto_protocol.wire import (COMPRESS_MIN, POOL_THREADS, Signer, compress_buffer, make_header, serialize,
                                   thread_pool)

from .jobs import Job

OUTBOX = "inproc://impasto-outbox"
COPY_THRESHOLD = 1 << 16          # buffers this large are sent without a copy


def _nbytes(b: Any) -> int:
    return memoryview(b).nbytes


class Outbox:
    """One per worker: ``open()`` and ``close()`` in the worker's own thread, ``send()`` between them."""

    def __init__(self, ctx: zmq.Context, signer: Signer, session: str, endpoint: str = OUTBOX):
        self.ctx, self.signer, self.session, self.endpoint = ctx, signer, session, endpoint
        self._push: Optional[zmq.Socket] = None
        self._pending: deque = deque()      # (job, header, content, futures of compressed buffers), in send order

    def open(self) -> None:
        self._push = self.ctx.socket(zmq.PUSH)
        self._push.sndhwm = 0
        self._push.linger = 2000
        self._push.connect(self.endpoint)

    def close(self) -> None:
        self.flush()
        if self._push is not None:
            self._push.close()

    def send(self, job: Job, msg_type: str, content: dict, buffers: list | tuple = ()) -> None:
        """A reply to ``job``'s request, to the connection that submitted it (compressed when the job asked)."""
        header = make_header(msg_type, self.session, job.job_id)
        if job.compression is not None and any(_nbytes(b) >= COMPRESS_MIN for b in buffers):
            pool = thread_pool()
            self._pending.append((job, header, content,
                                  [pool.submit(compress_buffer, b, job.compression) for b in buffers]))
            while len(self._pending) > POOL_THREADS:
                self._push_next()
        else:
            self.flush()
            self._push_frames(job, header, content, buffers)
        if msg_type in TERMINAL:
            self.flush()

    def flush(self) -> None:
        """Push every message still being compressed, in order."""
        while self._pending:
            self._push_next()

    def _push_next(self) -> None:
        job, header, content, futures = self._pending.popleft()
        self._push_frames(job, header, content, [f.result() for f in futures])

    def _push_frames(self, job: Job, header: dict, content: dict, buffers: list | tuple) -> None:
        frames = serialize(job.signer or self.signer, header, content, buffers, parent=job.request_header,
                           identities=job.identities, compress=job.compression)
        big = any(_nbytes(f) >= COPY_THRESHOLD for f in frames[len(job.identities) + 5:])
        assert self._push is not None
        self._push.send_multipart(frames, copy=not big)


def bind_inbox(ctx: zmq.Context, endpoint: str = OUTBOX) -> zmq.Socket:
    """The daemon's end: the PULL socket every worker's outbox pushes to (bind before the workers connect)."""
    sock = ctx.socket(zmq.PULL)
    sock.rcvhwm = 0
    sock.bind(endpoint)
    return sock


__all__ = ["OUTBOX", "Outbox", "bind_inbox"]
