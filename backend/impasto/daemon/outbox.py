"""What a worker thread sends through: its messages are signed in the worker and pushed to the daemon's loop.

Workers never touch the ROUTER socket (ZeroMQ sockets are not thread-safe): an ``Outbox`` signs each message with
the key of the connection it goes to (the daemon's, or a remote client's own: ``Job.signer``) -- the heavy hashing
of result buffers stays off the main loop -- and pushes the frames over an inproc PUSH socket to the PULL socket
bound at ``OUTBOX``, which the main loop forwards unchanged (zero-copy).
"""
from __future__ import annotations

from typing import Optional

import zmq

from impasto_protocol.wire import Signer, make_header, serialize

from .jobs import Job

OUTBOX = "inproc://impasto-outbox"
COPY_THRESHOLD = 1 << 16          # buffers this large are sent without a copy


class Outbox:
    """One per worker: ``open()`` and ``close()`` in the worker's own thread, ``send()`` between them."""

    def __init__(self, ctx: zmq.Context, signer: Signer, session: str, endpoint: str = OUTBOX):
        self.ctx, self.signer, self.session, self.endpoint = ctx, signer, session, endpoint
        self._push: Optional[zmq.Socket] = None

    def open(self) -> None:
        self._push = self.ctx.socket(zmq.PUSH)
        self._push.sndhwm = 0
        self._push.linger = 2000
        self._push.connect(self.endpoint)

    def close(self) -> None:
        if self._push is not None:
            self._push.close()

    def send(self, job: Job, msg_type: str, content: dict, buffers: list | tuple = ()) -> None:
        """A reply to ``job``'s request, to the connection that submitted it."""
        frames = serialize(job.signer or self.signer, make_header(msg_type, self.session, job.job_id), content, buffers,
                           parent=job.request_header, identities=job.identities, compress=job.compression)
        big = any(memoryview(b).nbytes >= COPY_THRESHOLD for b in frames[len(job.identities) + 5:])
        assert self._push is not None
        self._push.send_multipart(frames, copy=not big)


def bind_inbox(ctx: zmq.Context, endpoint: str = OUTBOX) -> zmq.Socket:
    """The daemon's end: the PULL socket every worker's outbox pushes to (bind before the workers connect)."""
    sock = ctx.socket(zmq.PULL)
    sock.rcvhwm = 0
    sock.bind(endpoint)
    return sock


__all__ = ["OUTBOX", "Outbox", "bind_inbox"]
