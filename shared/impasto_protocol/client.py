"""The client the editor plugins and the CLI use to talk to ``impasto serve``.

Blocking use::

    client = Client.connect(autostart=True)
    job = client.stylize(content, StylizeOptions(engine="gatys", size=512), style=style)
    for ev in job.events():
        ...                       # Accepted, ProgressEvent, TileEvent, then ResultEvent | ErrorEvent | CancelledEvent
    client.close()

Qt event loop (no thread of your own): either call ``job.poll()`` from a QTimer, or watch ``client.fileno()`` with a
QSocketNotifier(Read) and call ``client.poll_all()`` when it fires *and* once after every request you send (the
ZeroMQ descriptor is edge-triggered: it only tells that something changed).

A small heartbeat thread (its own socket) pings the daemon every 0.25 s while the client is open, so when the
editor process dies -- GIMP kills a plug-in on cancel -- the daemon cancels its jobs within about a second.

Do not modify an ``ImageBuffer``'s data until its job is accepted: buffers are sent without copying.
Stdlib + pyzmq only.
"""
from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import zmq

from .connection import (ConnectionFileError, ConnectionInfo, UnsafePath, default_connection_file,
                         ensure_private_dir, read_connection_file, remove_connection_file, runtime_dir)
from .images import DEFAULT_MAX_PIXELS, DTYPES, ImageBuffer, ImageBufferError, as_bytes_view
from .messages import (ACCEPTED, CANCELLED, CHUNKS, DELIVER, ERROR, FRAME_SLACK, PROGRESS, RESULT, RESULT_CHUNK,
                       STREAM_CHUNK, STREAM_MIN, TILE, Accepted, CancelledEvent, ErrorEvent, ProgressEvent, ResultEvent, TileEvent)
from .options import ENGINES, StylizeOptions
from .remote import RemoteProfile
from .wire import (MAX_CONTENT_BYTES, REPLY_COMPRESSION_KEY, ZAP_USER, Compression, Message, ReplayGuard, Signer,
                   WireError, compress_ahead, deserialize, make_header, new_id, serialize, zap_password)

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL = 0.25      # seconds between pings
DEAD_AFTER = 10.0              # no pong for this long while waiting on a job -> DaemonNotRunning
REMOTE_DEAD_AFTER = 5.0        # the same for a remote server (no pid to check: heartbeats are all there is)
COPY_THRESHOLD = 1 << 16       # frames at least this large are sent without copying


class DaemonNotRunning(Exception):
    """No daemon answers at the address in the connection file (or there is no file, or it is stale)."""


class ProtocolError(Exception):
    """The daemon answered a request with an error.  ``code`` is the protocol error code."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def open_socket(ctx: zmq.Context, info: ConnectionInfo, socket_type: int = zmq.DEALER) -> zmq.Socket:
    """A socket connected to the daemon the way the daemon admits it: PLAIN credentials derived from the key (the
    daemon's ZAP handler closes any other connection before it can send anything) or, for a remote server, CURVE
    with the server's public key and this client's key pair (``remote.py``), no routing id of its own (the
    daemon assigns one, so no client can pick another's), IPv6 enabled for an IPv6 loopback address.  For ipc
    the socket file is checked first (``UnsafePath`` when it is not this user's)."""
    info.check_socket()
    sock = ctx.socket(socket_type)
    sock.linger = 0
    if info.curve:                  # a remote server (or a `serve --listen` daemon): CURVE, see remote.py
        sock.curve_serverkey = info.server_key.encode("ascii")
        sock.curve_publickey = info.public_key.encode("ascii")
        sock.curve_secretkey = info.secret_key.encode("ascii")
    else:
        sock.plain_username = ZAP_USER
        sock.plain_password = zap_password(info.key)
    if info.transport == "tcp" and ":" in info.ip:
        sock.ipv6 = 1
    sock.connect(info.endpoint)
    return sock


class _Heartbeat(threading.Thread):
    """Pings the daemon from its own socket so liveness does not depend on the editor polling."""

    def __init__(self, ctx: zmq.Context, info: ConnectionInfo, signer: Signer, session: str):
        super().__init__(name="impasto-heartbeat", daemon=True)
        self._ctx, self._info, self._signer, self._session = ctx, info, signer, session
        self._stop_event = threading.Event()
        self.last_pong = time.monotonic()

    def run(self) -> None:
        try:
            sock = open_socket(self._ctx, self._info)
        except (ConnectionFileError, zmq.ZMQError) as e:
            log.warning("heartbeat not started: %s", e)
            return
        guard = ReplayGuard()
        try:
            while not self._stop_event.is_set():
                sock.send_multipart(serialize(self._signer, make_header("ping", self._session), {}))
                deadline = time.monotonic() + HEARTBEAT_INTERVAL
                while (left := deadline - time.monotonic()) > 0 and not self._stop_event.is_set():
                    if sock.poll(int(left * 1000) + 1):
                        try:
                            msg = deserialize(self._signer, sock.recv_multipart(), guard)
                            if msg.msg_type == "pong":
                                self.last_pong = time.monotonic()
                        except WireError as e:
                            log.debug("heartbeat: dropped a message: %s", e)
        except zmq.ZMQError as e:   # context terminated
            log.debug("heartbeat stopped: %s", e)
        finally:
            sock.close(0)

    def stop(self) -> None:
        self._stop_event.set()


class Job:
    """One stylize or training job.  Events arrive through the client's socket; see ``events`` and ``poll``."""

    def __init__(self, client: "Client", job_id: str, kind: str):
        self.client = client
        self.id = job_id
        self.kind = kind
        self.done = False
        self.accepted = False
        self.position: int | None = None
        self.fraction = 0.0
        self.stage = ""
        self.result: Optional[ImageBuffer] = None
        self.info: dict = {}
        self.error: Optional[tuple[str, str]] = None
        self.cancelled = False
        self._queue: deque = deque()
        self._chunk_buf: bytearray | None = None     # a streamed result being assembled
        self._chunk_received = 0

    def _add_result_chunk(self, offset: Any, total: Any, buf: Any) -> None:
        n = memoryview(buf).nbytes
        if self._chunk_buf is None:
            if not isinstance(total, int) or total <= 0:
                raise ValueError(f"bad result size {total!r}")
            self._chunk_buf = bytearray(total)
        if offset != self._chunk_received or offset + n > len(self._chunk_buf):
            raise ValueError(f"result chunk at {offset} (+{n}) does not continue at {self._chunk_received}")
        self._chunk_buf[offset:offset + n] = buf
        self._chunk_received += n

    def __repr__(self) -> str:
        return f"<Job {self.kind} {self.id[:8]} done={self.done} fraction={self.fraction:.2f}>"

    def _push(self, ev: Any) -> None:
        if isinstance(ev, Accepted):
            self.accepted, self.position = True, ev.position
        elif isinstance(ev, ProgressEvent):
            self.fraction, self.stage = ev.fraction, ev.stage
        elif isinstance(ev, ResultEvent):
            self.done, self.result, self.info, self.fraction = True, ev.image, ev.info, 1.0
        elif isinstance(ev, ErrorEvent):
            self.done, self.error = True, (ev.code, ev.message)
        elif isinstance(ev, CancelledEvent):
            self.done, self.cancelled, self.info = True, True, ev.info
        self._queue.append(ev)

    def poll(self) -> list:
        """New events, without blocking (reads whatever the socket holds first)."""
        self.client.poll_all()
        out = list(self._queue)
        self._queue.clear()
        return out

    def events(self, timeout: float | None = None) -> Iterator[Any]:
        """Yield events until (and including) the result, error or cancellation.

        ``timeout``: longest wait for the next event (TimeoutError); None waits as long as the daemon lives."""
        while True:
            while self._queue:
                ev = self._queue.popleft()
                yield ev
                if isinstance(ev, (ResultEvent, ErrorEvent, CancelledEvent)):
                    return
            if self.done:
                return
            if not self.client._wait_for(lambda: bool(self._queue), timeout):
                raise TimeoutError(f"no event from job {self.id} within {timeout} s")

    def wait(self, timeout: float | None = None) -> "Job":
        """Consume events until the job ends; returns self (check ``result``/``error``/``cancelled``)."""
        for _ in self.events(timeout):
            pass
        return self

    def cancel(self) -> None:
        """Ask the daemon to cancel; a CancelledEvent follows (or the result, if it was already finishing)."""
        if not self.done:
            self.client._send("cancel", {}, job_id=self.id)


class Client:
    """``compression``: ``"zlib"`` (or ``"zlib:LEVEL"``, a ``Compression``) compresses this client's image uploads
    and asks the daemon to compress its jobs' replies, losslessly, when the daemon offers the codec (hello);
    worth it over a remote link, not on the local socket (docs/remote.md has the figures).  The default, ``"auto"``,
    is zlib for a remote server (a profile: ``info.remote``) and off for the local daemon; None is off."""

    def __init__(self, info: ConnectionInfo, *, timeout: float = 5.0, heartbeat: bool = True,
                 context: zmq.Context | None = None, compression: Compression | str | None = "auto"):
        self.info = info
        self.compression = compression              # parsed by the property's setter
        self._daemon_codecs: tuple[str, ...] | None = None     # what the daemon inflates, from hello
        self._max_raw = DEFAULT_MAX_PIXELS * 4 * max(DTYPES.values())   # no image it may send is larger
        self.timeout = timeout
        self.dead_after = REMOTE_DEAD_AFTER if info.remote else DEAD_AFTER
        self._max_frame: int | None = None     # the daemon's ZMQ_MAXMSGSIZE, from hello (TCP daemons take less)
        self.session = new_id()
        self._signer = Signer(info.key)
        self._guard = ReplayGuard()
        self._ctx = context or zmq.Context.instance()
        try:
            self._sock = open_socket(self._ctx, info)
        except ConnectionFileError as e:
            raise DaemonNotRunning(str(e)) from None
        self._sock.rcvhwm = 0
        self._jobs: dict[str, Job] = {}
        self._waiting: dict[str, Optional[Message]] = {}
        self._closed = False
        self._hb: _Heartbeat | None = None
        if heartbeat:
            # One ping on the main socket first: it reaches the daemon before any job request (same socket, in
            # order), so the session is watched from its first job on, even if the heartbeat thread is slow to start.
            self._send("ping", {})
            self._hb = _Heartbeat(self._ctx, info, self._signer, self.session)
            self._hb.start()

    # -- connecting ------------------------------------------------------------------------------------------------
    @classmethod
    def connect(cls, connection_file: str | os.PathLike | None = None, autostart: bool = False,
                timeout: float = 5.0, *, serve_command: Sequence[str] | None = None,
                autostart_timeout: float = 90.0, remote: "str | RemoteProfile | None" = None) -> "Client":
        """Connect to the daemon named in the connection file and check that it answers ``hello``.

        With ``autostart`` a missing, stale or silent daemon is replaced by a new ``impasto serve`` started in the
        background (``serve_command`` or ``$IMPASTO_SERVE_COMMAND`` or ``impasto`` on PATH).  With ``remote`` (a
        paired server's name or profile) it connects there instead (``connect_remote``; nothing is started)."""
        if remote:
            return cls.connect_remote(remote, timeout=timeout)
        path = Path(connection_file) if connection_file else default_connection_file()
        problem = ""
        try:
            info = read_connection_file(path)
            if not info.pid_alive():
                problem = f"stale connection file {path}: daemon pid {info.pid} is not running"
            else:
                client = None
                try:
                    client = cls(info, timeout=timeout)
                    client.hello(timeout=timeout)
                    return client
                except DaemonNotRunning as e:
                    if client is not None:
                        client.close()
                    problem = str(e)
        except UnsafePath as e:         # starting a daemon would not help: the folder must be fixed first
            raise DaemonNotRunning(str(e)) from None
        except ConnectionFileError as e:
            problem = str(e)
        if not autostart:
            raise DaemonNotRunning(problem)
        log.info("starting the daemon (%s)", problem)
        return cls._autostart(path, timeout, serve_command, autostart_timeout)

    @classmethod
    def connect_remote(cls, remote: "str | RemoteProfile", timeout: float = 5.0) -> "Client":
        """Connect to a paired remote server (a name in the remotes folder, or a ``RemoteProfile``) over CURVE and
        check that it answers ``hello``.  A server that does not know this machine's key gives no answer at all
        (that is the point), so the error lists what to check."""
        from .remote import RemoteError, load_remote
        try:
            profile = load_remote(remote) if isinstance(remote, str) else remote.validate()
        except RemoteError as e:
            raise DaemonNotRunning(str(e)) from None
        client = cls(profile.connection_info(), timeout=timeout,
                     compression="auto" if profile.compression else None)     # `remote add --no-compression`
        try:
            client.hello(timeout=timeout)
        except DaemonNotRunning:
            client.close(cancel_jobs=False)
            raise DaemonNotRunning(
                f"the server {profile.name!r} at {profile.endpoint} did not answer within {timeout:.0f} s: is "
                f"`impasto serve --listen` running there, is the port open in its firewall, and is this machine's "
                f"key on its allow-list (`impasto server clients` on the server)?") from None
        return client

    @classmethod
    def _autostart(cls, path: Path, timeout: float, serve_command: Sequence[str] | None,
                   autostart_timeout: float) -> "Client":
        try:
            old = read_connection_file(path)
            if not old.pid_alive():
                remove_connection_file(path, pid=old.pid)
        except ConnectionFileError:
            pass
        proc = spawn_daemon(serve_command, connection_file=path)
        deadline = time.monotonic() + autostart_timeout
        last = ""
        while time.monotonic() < deadline:
            if proc.poll() is not None and proc.returncode != 0:
                # another client may have won the race; a live file is still fine
                last = f"`impasto serve` exited with status {proc.returncode} (see {path.parent / 'daemon.log'})"
            try:
                info = read_connection_file(path)
                if info.pid_alive():
                    client = None
                    try:
                        client = cls(info, timeout=timeout)
                        client.hello(timeout=min(timeout, 2.0))
                        return client
                    except DaemonNotRunning as e:
                        if client is not None:
                            client.close()
                        last = str(e)
            except UnsafePath as e:
                raise DaemonNotRunning(str(e)) from None
            except ConnectionFileError as e:
                last = last or str(e)
            if proc.poll() is not None and proc.returncode != 0 and not path.exists():
                break
            time.sleep(0.1)
        raise DaemonNotRunning(f"could not start the daemon: {last}")

    # -- requests --------------------------------------------------------------------------------------------------
    def hello(self, timeout: float | None = None) -> dict:
        """Versions, device, engines, installed styles and limits of the daemon."""
        content = self._request("hello", {}, timeout=timeout).content
        limits = content.get("limits") or {}
        limit = limits.get("max_message_bytes")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > FRAME_SLACK:
            self._max_frame = limit
        pixels = limits.get("max_pixels")
        if isinstance(pixels, int) and not isinstance(pixels, bool) and pixels > 0:
            self._max_raw = pixels * 4 * max(DTYPES.values())
        codecs = content.get("compression")
        self._daemon_codecs = tuple(c for c in codecs if isinstance(c, str)) if isinstance(codecs, list) else ()
        return content

    @property
    def compression(self) -> Compression | None:
        """The compression asked for (``Client(compression=...)``, or set later: ``client.compression = "zlib"``);
        ``job_compression`` says whether it is used."""
        return self._compression

    @compression.setter
    def compression(self, spec: Compression | str | None) -> None:
        if spec == "auto":
            spec = "zlib" if self.info.remote else None
        self._compression = Compression.parse(spec)

    def job_compression(self) -> Compression | None:
        """How this client's uploads and job replies travel: ``compression`` when the daemon offers its codec
        (asked with one ``hello`` the first time), else None (raw, as with a daemon older than protocol 1.1)."""
        if self.compression is None:
            return None
        if self._daemon_codecs is None:
            self.hello()
        if self.compression.codec in (self._daemon_codecs or ()):
            return self.compression
        return None

    def chunk_bytes(self) -> int:
        """Bytes per streamed piece and the inline limit: STREAM_CHUNK, or less where the daemon takes smaller
        frames (a TCP daemon bounds what an unauthenticated connection can make it hold)."""
        if self._max_frame is None:
            self.hello()
        assert self._max_frame is not None
        return max(1 << 12, min(STREAM_CHUNK, self._max_frame - FRAME_SLACK))

    def status(self, timeout: float | None = None) -> dict:
        """Queue, running and recent jobs, clients, uptime."""
        return self._request("status", {}, timeout=timeout).content

    def list_styles(self, thumbnails: bool = True, timeout: float | None = None) -> list[dict]:
        msg = self._request("list_styles", {"thumbnails": thumbnails}, timeout=timeout)
        styles = []
        for s in msg.content.get("styles", []):
            s = dict(s)
            idx = s.get("thumbnail")
            s["thumbnail"] = bytes(msg.buffers[idx]) if isinstance(idx, int) and 0 <= idx < len(msg.buffers) else None
            styles.append(s)
        return styles

    def shutdown(self, cancel_jobs: bool = True, timeout: float | None = None) -> dict:
        """Ask the daemon to stop (it cancels, or with ``cancel_jobs=False`` finishes, its jobs first)."""
        return self._request("shutdown", {"cancel_jobs": cancel_jobs}, timeout=timeout).content

    def stylize(self, content: ImageBuffer, options: StylizeOptions, style: ImageBuffer | None = None,
                mask: ImageBuffer | None = None, *, deliver: str = "result", tile_size: int | None = None,
                job_id: str | None = None, mask_mode: str | None = None, keypoints_only: bool = False,
                overlay: bool = False) -> Job:
        """Submit a stylize job (non-blocking).  ``mask``: 1-channel selection the size of ``content`` -- the result
        is the stylized image where the mask is 1 and the content where it is 0.  ``deliver="tiles"`` streams the
        result as final TileEvents (``tile_size`` px, default 1024) instead of one big result frame.
        ``mask_mode="alpha"``: the result's colour is the stylized image everywhere and the mask is multiplied into
        its alpha (RGBA even for RGB content) -- what an editor layer over the content needs, with no loss at
        feathered edges.  ``keypoints_only=True`` (DST): only propose the keypoints (NBB + cleaning, seconds); the
        result has no image and ``info["keypoints"]`` holds the pairs, in pixels of ``content`` and ``style``.
        ``overlay=True`` (DST): the result also brings ``ResultEvent.overlays`` -- RGBA u8 images of the result's
        size, "keypoints" (each keypoint with a line to its target) and "grid" (the deformed grid)."""
        if options.engine in ENGINES:
            options.validate()
        if deliver not in DELIVER:
            raise ValueError(f"deliver must be one of {', '.join(DELIVER)}")
        body: dict[str, Any] = {"options": options.to_dict(), "deliver": deliver}
        if tile_size is not None:
            body["tile_size"] = tile_size
        if mask_mode is not None:
            body["mask_mode"] = mask_mode
        if keypoints_only:
            body["keypoints_only"] = True
        if overlay:
            body["overlay"] = True
        return self._submit("stylize", body, [("content", content), ("style", style), ("mask", mask)], job_id)

    def train(self, style: ImageBuffer, name: str, steps: int | None = None, *, job_id: str | None = None,
              photos: Sequence[ImageBuffer] = (), **params: Any) -> Job:
        """Train a Multimodal Transfer style model from ``style`` under ``name`` (runs after interactive jobs).

        ``photos``: the training photos themselves (streamed after the request), instead of a folder the daemon
        reads (``content_dir``, which must be one the daemon allows)."""
        body: dict[str, Any] = {"name": name, "params": params}
        if steps is not None:
            body["steps"] = steps
        extra = []
        if photos:
            body["photos"] = []
            for i, img in enumerate(photos):
                img.validate(max_pixels=None)
                body["photos"].append({**img.describe(0), "buffer": CHUNKS})
                extra.append((f"photo{i}", img))
        return self._submit("train", body, [("style", style)], job_id, also_stream=extra)

    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    # -- event loop integration ------------------------------------------------------------------------------------
    def fileno(self) -> int:
        """The socket's file descriptor, for QSocketNotifier / select (edge-triggered: call ``poll_all``)."""
        return self._sock.getsockopt(zmq.FD)

    def poll_all(self, timeout: float = 0.0) -> int:
        """Read and dispatch every message waiting (waiting up to ``timeout`` s for the first).  Returns the count."""
        n = 0
        if timeout > 0 and not self._sock.poll(int(timeout * 1000)):
            return 0
        while self._sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            try:
                frames = self._sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self._dispatch(frames)
            n += 1
        return n

    @property
    def daemon_alive(self) -> bool:
        if not self.info.pid_alive():
            return False
        return self._hb is None or time.monotonic() - self._hb.last_pong < self.dead_after

    def close(self, cancel_jobs: bool = True) -> None:
        """Cancel this client's unfinished jobs (unless told not to) and close the sockets."""
        if self._closed:
            return
        if cancel_jobs:
            for job in list(self._jobs.values()):
                if not job.done:
                    try:
                        self._send("cancel", {}, job_id=job.id)
                    except zmq.ZMQError:
                        pass
        self._closed = True
        if self._hb is not None:
            self._hb.stop()
            self._hb.join(timeout=1.0)
        self._sock.close(linger=100 if cancel_jobs else 0)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals -------------------------------------------------------------------------------------------------
    def _send(self, msg_type: str, content: dict, buffers: Sequence[Any] = (), job_id: str | None = None,
              compress: Compression | None = None) -> dict:
        if self._closed:
            raise DaemonNotRunning("the client is closed")
        header = make_header(msg_type, self.session, job_id)
        frames = serialize(self._signer, header, content, buffers, compress=compress)
        limit = min(MAX_CONTENT_BYTES, self._max_frame or MAX_CONTENT_BYTES)
        if len(frames[4]) > limit:     # the daemon could not take it: say so instead of waiting forever
            raise ValueError(f"the {msg_type} request's JSON is {len(frames[4])} bytes; at most {limit} "
                             f"(images travel as buffers, not in the JSON)")
        big = any((len(f) if isinstance(f, (bytes, bytearray)) else memoryview(f).nbytes) >= COPY_THRESHOLD
                  for f in frames[5:])
        self._sock.send_multipart(frames, copy=not big)
        return header

    def _submit(self, msg_type: str, body: dict, images: list, job_id: str | None,
                also_stream: Sequence[tuple[str, ImageBuffer]] = ()) -> Job:
        """Send a job request; images of STREAM_MIN bytes or more follow it as chunk messages (pipelined:
        each chunk is signed while the previous one is on its way and being verified), then ``also_stream``
        (images the body already describes as streamed, whatever their size).  With compression on
        (``job_compression``) every buffer is compressed where it pays, chunks on the thread pool a few ahead of
        the one being sent, and the request asks for compressed replies."""
        comp = self.job_compression()
        if comp is not None:
            body[REPLY_COMPRESSION_KEY] = comp.to_json()
        buffers: list = []
        streamed: list[tuple[str, ImageBuffer]] = []
        chunk = self.chunk_bytes()
        for item in images:
            if not isinstance(item, tuple):    # a raw buffer frame (tests of the wire format)
                buffers.append(item)
                continue
            name, img = item
            if img is None:
                continue
            img.validate(max_pixels=None)
            if img.nbytes >= min(STREAM_MIN, chunk):
                body[name] = {**img.describe(0), "buffer": CHUNKS}
                streamed.append((name, img))
                continue
            body[name] = img.describe(len(buffers))
            buffers.append(img.data)
        job = Job(self, job_id or new_id(), msg_type)
        self._jobs[job.id] = job
        self._send(msg_type, body, buffers, job_id=job.id, compress=comp)
        for name, img in [*streamed, *also_stream]:
            mv = as_bytes_view(img.data)
            # whole rows when a row fits in a chunk (the daemon decodes per chunk); else chunk-sized pieces of rows
            # (the daemon carries a partial row over), so no frame is ever larger than one chunk
            step = max(1, chunk // img.stride) * img.stride if img.stride <= chunk else chunk
            offsets = range(0, mv.nbytes, step)
            pieces = compress_ahead((mv[off:off + step] for off in offsets), comp)
            for off, piece in zip(offsets, pieces):
                self._send("chunk", {"image": name, "offset": off}, [piece], job_id=job.id)
        return job

    def _request(self, msg_type: str, content: dict, timeout: float | None = None,
                 job_id: str | None = None) -> Message:
        header = self._send(msg_type, content, job_id=job_id)
        mid = header["msg_id"]
        self._waiting[mid] = None
        try:
            t = self.timeout if timeout is None else timeout
            if not self._wait_for(lambda: self._waiting[mid] is not None, t, check_daemon=False):
                raise DaemonNotRunning(f"the daemon at {self.info.endpoint} did not answer {msg_type!r} within {t} s")
            reply = self._waiting[mid]
        finally:
            self._waiting.pop(mid, None)
        assert reply is not None
        if reply.msg_type == ERROR:
            raise ProtocolError(str(reply.content.get("code")), str(reply.content.get("message")))
        return reply

    def _wait_for(self, cond, timeout: float | None, check_daemon: bool = True) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not cond():
            left = 0.5 if deadline is None else min(0.5, deadline - time.monotonic())
            if left <= 0:
                return False
            self.poll_all(timeout=left)
            if check_daemon and not cond() and not self.daemon_alive:
                if self.info.remote:
                    raise DaemonNotRunning(f"the server {self.info.remote!r} ({self.info.endpoint}) stopped "
                                           f"answering {self.dead_after:.0f} s ago")
                raise DaemonNotRunning(f"the daemon (pid {self.info.pid}) stopped answering")
        return True

    def _dispatch(self, frames: list) -> None:
        try:
            msg = deserialize(self._signer, frames, self._guard, max_raw=self._max_raw)
        except WireError as e:
            log.warning("dropped a message from the daemon: %s: %s", e.code, e)
            return
        pid = msg.parent.get("msg_id")
        if pid in self._waiting:
            self._waiting[pid] = msg
            return
        if msg.parent.get("msg_type") == "cancel":
            if msg.msg_type == ERROR:
                log.info("cancel of job %s: %s", msg.job_id, msg.content.get("message"))
            return
        job = self._jobs.get(msg.job_id or "")
        if job is None:
            log.debug("message %s for unknown job %s ignored", msg.msg_type, msg.job_id)
            return
        try:
            if msg.msg_type == RESULT_CHUNK:
                if len(msg.buffers) != 1:
                    raise ValueError("a result chunk carries exactly one buffer")
                job._add_result_chunk(msg.content.get("offset"), msg.content.get("total"), msg.buffers[0])
                return
            ev = decode_event(msg, job)
        except Exception as e:  # noqa: BLE001 - a malformed reply ends the job, never the caller's event loop
            ev = ErrorEvent("bad_reply", f"the daemon sent an unreadable {msg.msg_type!r}: {e}")
        if ev is not None:
            job._push(ev)
        if job.done:
            self._jobs.pop(job.id, None)


def decode_event(msg: Message, job: Optional[Job] = None) -> Any:
    c, t = msg.content, msg.msg_type
    if t == ACCEPTED:
        return Accepted(job_id=msg.job_id or "", position=int(c.get("position", 0)))
    if t == PROGRESS:
        preview = ImageBuffer.from_description(c["preview"], msg.buffers, max_pixels=None) if c.get("preview") else None
        pos = c.get("position")
        return ProgressEvent(fraction=float(c.get("fraction", 0.0)), stage=str(c.get("stage", "")), preview=preview,
                             losses=c.get("losses"), position=pos if isinstance(pos, int) else None)
    if t == TILE:
        return TileEvent(x=int(c["x"]), y=int(c["y"]), final=bool(c.get("final", False)),
                         image=ImageBuffer.from_description(c["image"], msg.buffers, max_pixels=None))
    if t == RESULT:
        desc = c.get("image")
        if isinstance(desc, dict) and desc.get("buffer") == CHUNKS:
            if job is None or job._chunk_buf is None or job._chunk_received != len(job._chunk_buf):
                raise ValueError("the streamed result is incomplete")
            img = ImageBuffer.from_description({**desc, "buffer": 0}, [job._chunk_buf], max_pixels=None)
            job._chunk_buf = None
        else:
            img = ImageBuffer.from_description(desc, msg.buffers, max_pixels=None) if desc else None
        overlays = {str(k): ImageBuffer.from_description(d, msg.buffers, max_pixels=None)
                    for k, d in (c.get("overlays") or {}).items()}
        return ResultEvent(image=img, info=c.get("info", {}), overlays=overlays)
    if t == ERROR:
        return ErrorEvent(code=str(c.get("code", "internal")), message=str(c.get("message", "")))
    if t == CANCELLED:
        return CancelledEvent(reason=str(c.get("reason", "requested")), info=c.get("info", {}))
    return None


def serve_command_line(serve_command: Sequence[str] | None = None) -> list[str]:
    if serve_command:
        return list(serve_command)
    env = os.environ.get("IMPASTO_SERVE_COMMAND")
    if env:
        return shlex.split(env)
    exe = shutil.which("impasto")
    if exe:
        return [exe, "serve"]
    import importlib.util
    if importlib.util.find_spec("impasto") is not None and "python" in Path(sys.executable).name.lower():
        return [sys.executable, "-m", "impasto.cli", "serve"]
    raise DaemonNotRunning("cannot find the `impasto` command to start the daemon; set IMPASTO_SERVE_COMMAND")


def spawn_daemon(serve_command: Sequence[str] | None = None,
                 connection_file: str | os.PathLike | None = None) -> subprocess.Popen:
    """Start ``impasto serve`` detached from this process (own session, output to daemon.log)."""
    cmd = serve_command_line(serve_command)
    if connection_file is not None:
        cmd = [*cmd, "--connection-file", str(connection_file)]
    logdir = ensure_private_dir(Path(connection_file).parent if connection_file else runtime_dir())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    kw: dict[str, Any] = {}
    if sys.platform == "win32":   # pragma: no cover
        kw["creationflags"] = 0x00000008 | 0x00000200   # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    else:
        kw["start_new_session"] = True
    with open(logdir / "daemon.log", "ab") as logf:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT, env=env,
                                close_fds=True, **kw)
