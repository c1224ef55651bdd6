"""``impasto serve``: the ZeroMQ ROUTER loop that verifies, validates and queues requests and answers them.

The main thread owns the ROUTER socket: it verifies signatures (dropping anything unsigned or badly signed),
refuses replays, validates requests before anything is allocated for them, answers hello/status/list_styles/ping/
cancel/shutdown at once (so they never wait behind a job), queues jobs, forwards what the workers send, and
watches client liveness: a session that has pinged and falls silent for ``heartbeat_timeout`` seconds, or whose
socket has gone (ROUTER_MANDATORY send failure -- queued jobs get a progress message every 0.5 s, so this is
noticed for them too), has its jobs cancelled.

Isolation (the threat model is in shared/PROTOCOL.md, "Threat model"): connections are admitted only with the
key's PLAIN credentials (``auth.ZapHandler``); routing ids are the ROUTER's own (a message from a peer that chose
its id is dropped, handover is off), and a job answers, takes chunks and cancels only from the connection that
submitted it.
"""
from __future__ import annotations

import dataclasses
import errno
import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import zmq

from impasto_protocol.connection import (IPC_PATH_MAX, SOCKET_NAME, ConnectionInfo, ensure_private_dir, new_key,
                                         remove_connection_file, write_connection_file)
from impasto_protocol.images import DTYPES
from impasto_protocol.options import MAX_KEYPOINTS
from impasto_protocol.remote import ADMIN_USER, RemoteError, ServerKeys, new_keypair
from impasto_protocol.messages import (ACCEPTED, CANCEL_REPLY, CANCELLED, DELIVER, ERROR, HELLO_REPLY,
                                       LIST_STYLES_REPLY, PONG, PROGRESS, SHUTDOWN_REPLY, STATUS_REPLY)
from impasto_protocol.wire import (CODECS, MAX_HEADER_BYTES, PROTOCOL_VERSION, JsonLimits, Message, ReplayGuard,
                                   Signer, WireError, deserialize, make_header, new_id, quote, serialize)

from .. import __version__
from ..errors import ImpastoError
from ..precision import PrecisionError, describe as describe_precision
from . import styles as styles_mod
from .auth import DOMAIN as ZAP_DOMAIN, ZapHandler
from .config import DaemonConfig
from .devices import DevicePool, share_cpu_threads, worker_names
from .jobs import Job, JobQueue
from .outbox import Outbox, bind_inbox
from .validation import (RequestError, available_engines, build_stylize_job, build_train_job, check_fields,
                         module_available, TRAIN_MODULE)
from .worker import Worker, WorkerSettings

log = logging.getLogger(__name__)
REAP_INTERVAL = 0.1
SHUTDOWN_GRACE = 15.0          # seconds running jobs get to notice a shutdown cancel


@dataclass
class Session:
    last_seen: float
    pinging: bool = False


@dataclass
class Peer:
    """One connection of a CURVE daemon: whose key it presented (ZAP user id) and the Signer of that client."""
    user: str                   # the client's public key (Z85), or ADMIN_USER
    name: str                   # the allow-list name ("" for the admin)
    signer: Signer
    last_seen: float = 0.0

    @property
    def admin(self) -> bool:
        return self.user == ADMIN_USER


def daemon_assigned(identity: bytes) -> bool:
    """A routing id the ROUTER generated itself (libzmq: a zero byte, then a 32-bit counter from a random start).
    Peers may pick their own id at the handshake; such ids start with any byte a peer likes, so only these are
    trusted to name a connection."""
    return len(identity) == 5 and identity[0] == 0


class RateLimitedLog:
    """At most ``burst`` lines per ``period`` seconds per event kind; the rest are counted and summarized in the
    next line that gets through (a flood of refusals must not fill the disk or drown the log)."""

    def __init__(self, logger: logging.Logger, burst: int = 20, period: float = 10.0):
        self.logger, self.burst, self.period = logger, burst, period
        self._window: dict[str, tuple[float, int, int]] = {}     # kind -> (window start, logged, suppressed)

    def log(self, level: int, kind: str, fmt: str, *args: Any) -> bool:
        now = time.monotonic()
        start, logged, suppressed = self._window.get(kind, (now, 0, 0))
        if now - start >= self.period:
            start, logged = now, 0
        if logged >= self.burst:
            self._window[kind] = (start, logged, suppressed + 1)
            return False
        if suppressed:
            fmt += " suppressed_before=%d"
            args = (*args, suppressed)
        self._window[kind] = (start, logged + 1, 0)
        self.logger.log(level, fmt, *args)
        return True


def default_devices() -> list[str]:
    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return ["cpu"]


def precision_report(devices: Sequence[str]) -> dict[str, dict]:
    """The precision policy in force on each device (``impasto.precision.describe``), for the hello reply; a bad
    ``IMPASTO_PRECISION`` shows as ``{"error": ...}`` (every job on that device would fail with it)."""
    out: dict[str, dict] = {}
    for dev in devices:
        try:
            out[dev] = describe_precision(dev)
        except PrecisionError as e:
            out[dev] = {"error": str(e)}
    return out


class Daemon:
    def __init__(self, config: DaemonConfig):
        self.config = config
        self.key = new_key()
        self.signer = Signer(self.key)
        self.guard = ReplayGuard(window=config.replay_window)
        self.session = new_id()
        self.queue = JobQueue()
        self.sessions: dict[str, Session] = {}
        self.dropped: Counter = Counter()          # unanswered: no delimiter, unsigned, bad signature, own id
        self.refused: Counter = Counter()          # answered with an error (signed but bad)
        self.started = time.time()
        self.devices = config.devices or default_devices()
        self.ctx = zmq.Context()
        self.router: zmq.Socket | None = None
        self.outbox: zmq.Socket | None = None
        self.workers: list[Worker] = []
        self.pool: DevicePool | None = None        # the workers' devices (devices.py), made with them in bind()
        self.zap: ZapHandler | None = None
        self.limits_json = JsonLimits()
        self.refusal_log = RateLimitedLog(log, burst=config.refusal_log_burst)
        self.info: ConnectionInfo | None = None
        self.stopping: str | None = None
        self._stop_at = 0.0
        self._last_probe = 0.0
        self._signal: int | None = None
        self._own_tmp: Path | None = None           # a mkdtemp folder holding the socket, removed on close
        self.server_keys: ServerKeys | None = None  # CURVE (serve --listen): the key pair and the allow-list
        self.peers: dict[bytes, Peer] = {}          # CURVE: routing id -> whose connection it is
        self._signers: dict[str, Signer] = {}       # signing key -> its Signer

    # -- setup -----------------------------------------------------------------------------------------------------
    def _ipc_path(self) -> tuple[str, str]:
        """(absolute socket path to bind, path to write in the connection file).  By default the socket sits beside
        the connection file in its private folder and is written relative to it; a folder whose path is too long
        for a socket gets a fresh private folder from ``mkdtemp`` (0700, unpredictable name) instead."""
        c = self.config
        if c.ipc_path:
            ensure_private_dir(Path(c.ipc_path).resolve().parent)
            return c.ipc_path, c.ipc_path
        folder = ensure_private_dir(Path(os.path.abspath(c.connection_file)).parent)
        sock = folder / SOCKET_NAME
        if len(os.fsencode(str(sock))) <= IPC_PATH_MAX:
            return str(sock), SOCKET_NAME
        sock = Path(tempfile.mkdtemp(prefix="impasto-")) / SOCKET_NAME
        self._own_tmp = sock.parent
        return str(sock), str(sock)

    def bind(self) -> ConnectionInfo:
        c = self.config
        admin_public = admin_secret = server_public = ""
        if c.curve:
            self.server_keys = ServerKeys(c.server_dir)
            try:
                server_public, server_secret = self.server_keys.keypair()
            except (RemoteError, OSError) as e:
                raise ImpastoError(f"cannot use the server key in {self.server_keys.folder}: {e}") from None
            admin_public, admin_secret = new_keypair()      # this run's key for the owner's local tools
        self.zap = ZapHandler(self.ctx, self.key, self.server_keys, admin_public)
        self.zap.start()
        r = self.ctx.socket(zmq.ROUTER)
        r.linger = 1000
        r.router_mandatory = 1          # sends to a vanished client raise EHOSTUNREACH -> its jobs are cancelled
        r.router_handover = 0           # an id in use is never handed to another connection
        if c.curve:                     # encrypted, and only allowed keys pass the ZAP handler
            r.curve_server = True
            r.curve_publickey = server_public.encode("ascii")
            r.curve_secretkey = server_secret.encode("ascii")
        else:
            r.plain_server = True       # every connection must pass the ZAP handler (auth.py) first
        r.zap_domain = ZAP_DOMAIN
        r.maxmsgsize = c.max_message_bytes
        r.handshake_ivl = 5000          # a peer that never finishes its handshake is dropped after 5 s
        r.sndhwm = 0                    # never drop or block on a slow client; its queue is bounded by its jobs
        if c.tcp:
            r.ipv6 = ":" in c.ip
            host = f"[{c.ip}]" if ":" in c.ip else c.ip
            endpoint, bind_path, path = f"tcp://{host}:{c.port or '*'}", "", ""
        else:
            bind_path, path = self._ipc_path()
            endpoint = f"ipc://{bind_path}"
        try:
            r.bind(endpoint)
        except zmq.ZMQError as e:
            r.close(0)
            self._stop_zap()
            raise ImpastoError(f"cannot listen on {endpoint}: {e}") from None
        if not c.tcp:
            os.chmod(bind_path, 0o600)
            transport, port = "ipc", 0
        else:
            transport = "tcp"
            port = int(r.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        self.router = r
        self.outbox = bind_inbox(self.ctx)
        settings = WorkerSettings(progress_interval=c.progress_interval, extra_engines=dict(c.extra_engines))
        names = worker_names(self.devices)          # one worker per device entry: cpu, or cpu#0 and cpu#1 ...
        share_cpu_threads(self.devices)             # k CPU workers: torch's threads divided among them
        self.pool = DevicePool(list(zip(names, self.devices)))
        self.workers = [Worker(self.queue, Outbox(self.ctx, self.signer, self.session), dev, settings, name=name,
                               pool=self.pool) for name, dev in zip(names, self.devices)]
        for w in self.workers:
            w.start()
        ip = c.ip if transport == "tcp" else ""
        if c.curve and ip in ("0.0.0.0", "::"):       # the owner's own tools reach an any-address daemon here
            ip = "127.0.0.1" if ip == "0.0.0.0" else "::1"
        self.info = ConnectionInfo(transport=transport, ip=ip, port=port, path=path,
                                   key=self.key, pid=os.getpid(), impasto_version=__version__, started=self.started,
                                   server_key=server_public, public_key=admin_public, secret_key=admin_secret)
        write_connection_file(self.info, c.connection_file)
        if transport == "ipc":           # the file may name the socket relative to its folder; we know it whole
            self.info = dataclasses.replace(self.info, path=bind_path)
        log.info("event=listening endpoint=%s pid=%d devices=%s workers=%s connection_file=%s extra_engines=%s "
                 "curve=%s", endpoint, os.getpid(), ",".join(self.devices), ",".join(names), c.connection_file,
                 ",".join(c.extra_engines),
                 f"server_key={server_public},allowed={len(self.server_keys.clients())}" if self.server_keys else "off")
        return self.info

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._signal = signum

    def serve_forever(self) -> int:
        if self.router is None:
            self.bind()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGINT, self._on_signal)
        assert self.router is not None and self.outbox is not None
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        poller.register(self.outbox, zmq.POLLIN)
        last_reap = time.monotonic()
        try:
            while True:
                events = dict(poller.poll(50))
                if self.outbox in events:
                    self._forward_outbox(limit=1000)
                if self.router in events:
                    for _ in range(200):
                        try:
                            frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self.handle(frames)
                if self._signal is not None and not self.stopping:
                    log.info("event=signal signum=%d", self._signal)
                    self.begin_stop("signal", cancel_jobs=True)
                now = time.monotonic()
                if now - last_reap >= REAP_INTERVAL:
                    last_reap = now
                    self.reap(now)
                if self.stopping and ((self.queue.idle() and not self.outbox.poll(0)) or now > self._stop_at):
                    break
        finally:
            self.close()
        return 0

    def _stop_zap(self) -> None:
        if self.zap is not None:
            self.zap.stop()
            self.zap.join(timeout=2.0)

    def close(self) -> None:
        self.queue.close()
        for w in self.workers:
            w.join(timeout=5.0)
        if self.outbox is not None:
            self._forward_outbox(limit=10000)
        if self.info is not None:
            remove_connection_file(self.config.connection_file, pid=os.getpid())
        for s in (self.outbox, self.router):
            if s is not None:
                s.close()
        self._stop_zap()
        if self._own_tmp is not None:
            shutil.rmtree(self._own_tmp, ignore_errors=True)
        stuck = [w.name for w in self.workers if w.is_alive()]
        if stuck:   # a job still inside one long engine step: its socket is open, term() would wait for it
            log.warning("event=stopped_with_busy_workers workers=%s", ",".join(stuck))
        else:
            self.ctx.term()
        log.info("event=stopped reason=%s", self.stopping)

    # -- sending ---------------------------------------------------------------------------------------------------
    def _send_frames(self, frames: Sequence[Any]) -> bool:
        assert self.router is not None
        try:
            self.router.send_multipart(frames, copy=False)
            return True
        except zmq.ZMQError as e:
            if e.errno != errno.EHOSTUNREACH:
                raise
            first = frames[0]
            ident = first.bytes if isinstance(first, zmq.Frame) else bytes(first)
            self.client_gone(ident)
            return False

    def _forward_outbox(self, limit: int) -> None:
        assert self.outbox is not None
        for _ in range(limit):
            try:
                frames = self.outbox.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            try:
                self._send_frames(frames)
            except zmq.ZMQError as e:
                log.warning("event=send_failed errno=%s %s", e.errno, e)

    def reply(self, identities: Sequence[bytes], parent: dict, msg_type: str, content: dict,
              buffers: Sequence[Any] = (), job_id: str | None = None) -> bool:
        if not identities:
            return False
        jid = job_id if job_id is not None else (parent.get("job_id") if isinstance(parent, dict) else None)
        peer = self.peers.get(bytes(identities[0])) if self.server_keys is not None else None
        frames = serialize(peer.signer if peer else self.signer, make_header(msg_type, self.session, jid), content, buffers,
                           parent=parent, identities=identities)
        return self._send_frames(frames)

    def reply_error(self, identities: Sequence[bytes], parent: dict, code: str, message: str) -> None:
        """Answer an error.  The message is capped (values in it are already quoted with ``wire.quote``) and the log
        line is rate-limited per code and written with repr, so no request can forge or flood log lines."""
        self.refused[code] += 1
        if len(message) > 1000:
            message = message[:1000] + "..."
        self.refusal_log.log(logging.INFO, f"refused:{code}", "event=refused code=%s type=%s message=%s", code,
                             quote((parent or {}).get("msg_type"), 40), quote(message, 300))
        self.reply(identities, parent or {}, ERROR, {"code": code, "message": message})

    # -- receiving -------------------------------------------------------------------------------------------------
    def handle(self, frames: list) -> None:
        try:
            self._handle(frames)
        except Exception:  # noqa: BLE001 - nothing a peer sends may stop the loop
            self.dropped["internal"] += 1
            log.exception("event=handle_crash")

    def _handle(self, frames: list) -> None:
        c = self.config
        first = frames[0].bytes if frames and isinstance(frames[0], zmq.Frame) else (frames[0] if frames else b"")
        if not daemon_assigned(bytes(first)):
            self.dropped["own_routing_id"] += 1
            self.refusal_log.log(logging.WARNING, "dropped:own_routing_id", "event=dropped code=own_routing_id "
                                 "count=%d", self.dropped["own_routing_id"])
            return
        signer = self.signer
        if self.server_keys is not None:
            peer = self._peer(bytes(first), frames[-1])
            if peer is None:
                self.dropped["revoked"] += 1
                self.refusal_log.log(logging.WARNING, "dropped:revoked", "event=dropped code=revoked count=%d",
                                     self.dropped["revoked"])
                return
            signer = peer.signer
        try:
            msg = deserialize(signer, frames, self.guard, max_identities=1, max_buffers=c.max_buffers,
                              max_total=(c.max_buffers + 1) * c.max_message_bytes + 2 * MAX_HEADER_BYTES,
                              limits=self.limits_json, max_raw=c.max_message_bytes)
        except WireError as e:
            if not e.signed:
                self.dropped[e.code] += 1
                self.refusal_log.log(logging.WARNING, f"dropped:{e.code}", "event=dropped code=%s count=%d detail=%s",
                                     e.code, self.dropped[e.code], quote(str(e), 200))
                return
            self.reply_error(e.identities, e.header or {}, e.code, str(e))
            self.fail_upload(e)
            return
        sess = self.sessions.get(msg.session)
        if sess is None:
            sess = self.sessions[msg.session] = Session(time.monotonic())
        sess.last_seen = time.monotonic()
        try:
            check_fields(msg)
            getattr(self, f"on_{msg.msg_type}")(msg)
        except RequestError as e:
            self.reply_error(msg.identities, msg.header, e.code, str(e))
        except Exception as e:  # noqa: BLE001 - the loop must survive anything a request triggers
            log.exception("event=handler_crash type=%s", quote(msg.msg_type, 40))
            self.reply_error(msg.identities, msg.header, "internal", f"{e.__class__.__name__}: {quote(str(e), 200)}")

    def _peer(self, identity: bytes, frame: Any) -> Peer | None:
        """CURVE: whose connection ``identity`` is (the ZAP user id libzmq attached to the frame), checked against
        the allow-list now -- None for a key revoked since it connected (its messages are dropped unanswered)."""
        assert self.server_keys is not None
        try:
            user = frame.get("User-Id") if isinstance(frame, zmq.Frame) else ""
        except zmq.ZMQError:
            user = ""
        if user == ADMIN_USER:
            name, key = "", self.key
        else:
            client = self.server_keys.lookup(user) if user else None
            if client is None:
                self.peers.pop(identity, None)
                return None
            name, key = client.name, client.signing_key
        signer = self._signers.get(key)
        if signer is None:
            signer = self._signers[key] = Signer(key)
        peer = self.peers.get(identity)
        if peer is None or peer.user != user or peer.signer is not signer:
            peer = self.peers[identity] = Peer(user=user, name=name, signer=signer)
            if name:
                log.info("event=remote_client name=%s", name)
        peer.last_seen = time.monotonic()
        return peer

    def remote_peer(self, msg: Message) -> Peer | None:
        """The remote client (not the owner's own tools) that sent ``msg``, or None."""
        if self.server_keys is None or not msg.identities:
            return None
        peer = self.peers.get(bytes(msg.identities[0]))
        return peer if peer is not None and not peer.admin else None

    def on_ping(self, msg: Message) -> None:
        self.sessions[msg.session].pinging = True
        self.reply(msg.identities, msg.header, PONG, {})

    def limits(self) -> dict:
        c = self.config
        return {"max_pixels": c.max_pixels, "max_message_bytes": c.max_message_bytes,
                "max_active_jobs": c.max_active_jobs, "heartbeat_timeout": c.heartbeat_timeout,
                "replay_window": c.replay_window, "max_queued_bytes": c.max_queued_bytes,
                "max_markers": MAX_KEYPOINTS}

    def on_hello(self, msg: Message) -> None:
        self.reply(msg.identities, msg.header, HELLO_REPLY, {
            "protocol_version": PROTOCOL_VERSION, "impasto_version": __version__, "torch_version": torch.__version__,
            "pid": os.getpid(), "devices": self.devices,
            "engines": available_engines() + list(self.config.extra_engines),
            "training": module_available(TRAIN_MODULE), "styles": styles_mod.style_names(),
            "limits": self.limits(), "dtypes": list(DTYPES), "deliver": list(DELIVER),
            "precision": precision_report(self.devices), "compression": list(CODECS),
            **({"remote_client": peer.name} if (peer := self.remote_peer(msg)) is not None else {})})

    def on_status(self, msg: Message) -> None:
        jobs = self.queue.jobs()
        remote = self.remote_peer(msg)
        if remote is not None:          # a remote artist sees her own jobs only
            jobs = [j for j in jobs if j.identities == msg.identities]
        self.reply(msg.identities, msg.header, STATUS_REPLY, {
            "pid": os.getpid(), "uptime": round(time.time() - self.started, 3), "impasto_version": __version__,
            "protocol_version": PROTOCOL_VERSION, "devices": self.devices,
            "endpoint": self.info.endpoint if self.info else "", "stopping": self.stopping,
            "uploading": [j.summary() for j in jobs if j.state == "uploading"],
            "queued": [j.summary() for j in jobs if j.state == "queued"],
            "running": [j.summary() for j in jobs if j.state == "running"],
            "recent": list(self.queue.recent)[-50:], "sessions": len(self.sessions), "workers": self.worker_report(),
            "dropped": dict(self.dropped), "refused": dict(self.refused), "limits": self.limits()})

    def worker_report(self) -> list[dict]:
        """Per worker, for status: name, device, state (idle | busy | lent: computing a tile of another worker's
        job), lent_to, tiles_lent, waited_s (``devices.DevicePool.report``), the job it runs and jobs run."""
        by_name = {w.worker_name: w for w in self.workers}
        out = self.pool.report() if self.pool is not None else []
        for r in out:
            w = by_name.get(r["name"])
            job = w.current if w is not None else None
            r["job"] = job.job_id if job is not None else None
            r["jobs_run"] = w.jobs_run if w is not None else 0
        return out

    def on_list_styles(self, msg: Message) -> None:
        want_thumbs = msg.content.get("thumbnails", True)
        if not isinstance(want_thumbs, bool):
            raise RequestError("bad_request", "thumbnails must be true or false")
        out, buffers = [], []
        for s in styles_mod.list_styles():
            d = {k: s.get(k) for k in ("name", "title", "artist", "year")}
            thumb = s.get("thumbnail") if want_thumbs else None
            d["thumbnail"] = None
            if thumb:
                d["thumbnail"] = len(buffers)
                buffers.append(thumb)
            out.append(d)
        self.reply(msg.identities, msg.header, LIST_STYLES_REPLY, {"styles": out}, buffers)

    def _admit(self, msg: Message) -> None:
        if self.stopping:
            raise RequestError("shutting_down", "the daemon is shutting down and takes no new jobs")
        if len(self.queue.active) >= self.config.max_active_jobs:
            raise RequestError("busy", f"the daemon already holds {self.config.max_active_jobs} jobs; "
                               f"wait for some to finish")
        if msg.job_id and (self.queue.get_job(msg.job_id) or self.queue.find_recent(msg.job_id)):
            raise RequestError("duplicate_job", f"job id {msg.job_id} is already in use")

    def queued_bytes(self) -> int:
        """Image memory held for jobs that have not started: inline frames and streamed uploads' tensors."""
        return sum(j.held_bytes for j in self.queue.jobs() if j.state in ("queued", "uploading"))

    def _enqueue(self, job: Job) -> None:
        need, pending = job.held_bytes, self.queued_bytes()
        if pending + need > self.config.max_queued_bytes:
            raise RequestError("busy", f"{(pending + need) / 2**20:.0f} MiB of queued images would exceed the "
                               f"daemon's limit of {self.config.max_queued_bytes / 2**20:.0f} MiB; retry later")
        ahead = sum(1 for j in self.queue.jobs() if j.state == "running" or
                    (j.state in ("queued", "uploading") and j.priority <= job.priority))
        self.reply(job.identities, job.request_header, ACCEPTED, {"position": ahead}, job_id=job.job_id)
        if job.uploads:
            for u in job.uploads.values():          # validated above: now allocate
                u.allocate()
            job.last_chunk_at = time.monotonic()
            self.queue.hold(job)
            log.info("job=%s event=uploading kind=%s bytes=%d", job.job_id, job.kind,
                     sum(u.image.nbytes for u in job.uploads.values()))
        else:
            self.queue.put(job)
        log.info("job=%s event=queued kind=%s engine=%s position=%d", job.job_id, job.kind, job.engine_name, ahead)

    def own_job(self, msg: Message) -> Job | None:
        """The active job named by ``msg``, only when the same connection submitted it (others get None: to
        them it does not exist)."""
        job = self.queue.get_job(msg.job_id or "")
        if job is None or job.identities != msg.identities:
            return None
        return job

    def fail_upload(self, e: WireError) -> None:
        """A chunk refused by the wire layer (a compressed frame that does not inflate to its declared size, or
        declares too much) ends its upload, as a chunk that does not continue it would (``bad_chunk``): the
        client was told the error, so the job must not hold its memory until ``upload_timeout``."""
        h = e.header or {}
        if h.get("msg_type") != "chunk" or e.code not in ("bad_compression", "too_large"):
            return
        job = self.queue.get_job(h.get("job_id") or "")
        if job is not None and job.identities == e.identities and job.state == "uploading":
            self.queue.remove_queued(job)
            self.queue.finish(job, "error", e.code)

    def on_chunk(self, msg: Message) -> None:
        job = self.own_job(msg)
        if job is None or job.state != "uploading":
            raise RequestError("unknown_job", f"no upload in progress for job {quote(msg.job_id)} from this "
                               f"connection")
        name, off = msg.content.get("image"), msg.content.get("offset")
        up = job.uploads.get(name) if isinstance(name, str) else None
        problem = ""
        if up is None:
            problem = f"job {job.job_id} streams no image named {quote(name)}"
        elif len(msg.buffers) != 1:
            problem = f"a chunk carries exactly one buffer frame, got {len(msg.buffers)}"
        else:
            n = memoryview(msg.buffers[0]).nbytes
            if off != up.received or n == 0 or up.received + n > up.image.nbytes:
                problem = (f"{name}: chunk at offset {quote(off)} of {n} bytes does not continue the upload "
                           f"({up.received} of {up.image.nbytes} bytes received)")
        if problem:
            self.queue.remove_queued(job)
            self.queue.finish(job, "error", "bad_chunk")
            raise RequestError("bad_chunk", problem)
        assert up is not None
        up.feed(msg.buffers[0])
        job.last_chunk_at = time.monotonic()
        if all(u.complete for u in job.uploads.values()):
            job.decoded = {img_name: u.tensor for img_name, u in job.uploads.items()}
            job.uploads = {}
            if self.queue.release(job):
                log.info("job=%s event=uploaded", job.job_id)

    def _bind_owner(self, job: Job, msg: Message) -> Job:
        """A CURVE daemon signs a job's replies with its client's key and names the client in logs and status."""
        if self.server_keys is not None and msg.identities:
            peer = self.peers.get(bytes(msg.identities[0]))
            if peer is not None:
                job.signer, job.client = peer.signer, peer.name
                if peer.name:
                    log.info("job=%s event=remote_job client=%s", job.job_id, peer.name)
        return job

    def on_stylize(self, msg: Message) -> None:
        self._admit(msg)
        job = self._bind_owner(build_stylize_job(msg, self.config, styles=styles_mod.style_names()), msg)
        job.compression = msg.reply_compression
        self._enqueue(job)

    def on_train(self, msg: Message) -> None:
        self._admit(msg)
        params = msg.content.get("params")
        if self.remote_peer(msg) is not None and isinstance(params, dict) and "content_dir" in params:
            raise RequestError("forbidden", "a remote client sends its training photos with the request; the "
                               "server's folders (content_dir) are for its owner")
        job = self._bind_owner(build_train_job(msg, self.config, shipped=styles_mod.shipped_style_names()), msg)
        job.compression = msg.reply_compression
        self._enqueue(job)

    def on_cancel(self, msg: Message) -> None:
        if not msg.job_id:
            raise RequestError("bad_request", "cancel needs header.job_id")
        job = self.own_job(msg)
        if job is None:
            recent = self.queue.find_recent(msg.job_id)
            if recent is None or self.queue.recent_owner(msg.job_id) != msg.identities:
                raise RequestError("unknown_job", f"no job {quote(msg.job_id)} of this connection in this daemon")
            self.reply(msg.identities, msg.header, CANCEL_REPLY, {"state": recent["state"]})
            return
        state = self.cancel_job(job, "requested")
        self.reply(msg.identities, msg.header, CANCEL_REPLY, {"state": state})

    def on_shutdown(self, msg: Message) -> None:
        if self.remote_peer(msg) is not None:
            raise RequestError("forbidden", "only the server's owner can stop it (`impasto serve --stop` there)")
        cancel_jobs = msg.content.get("cancel_jobs", True)
        if not isinstance(cancel_jobs, bool):
            raise RequestError("bad_request", "cancel_jobs must be true or false")
        n = len(self.queue.active)
        self.reply(msg.identities, msg.header, SHUTDOWN_REPLY, {"jobs": n, "cancel_jobs": cancel_jobs,
                                                                 "pid": os.getpid()})
        self.begin_stop("shutdown", cancel_jobs)

    # -- jobs and liveness -----------------------------------------------------------------------------------------
    def cancel_job(self, job: Job, reason: str) -> str:
        """Cancel a queued job at once (answering it) or ask a running one to stop.  Returns the new state."""
        if self.queue.remove_queued(job):
            job.request_cancel(reason)
            self.queue.finish(job, "cancelled", reason)
            self.reply(job.identities, job.request_header, CANCELLED,
                       {"reason": reason, "info": {"steps_at_cancel": 0, "steps_done": 0}}, job_id=job.job_id)
            log.info("job=%s event=cancelled reason=%s queued=1", job.job_id, reason)
            return "cancelled"
        if job.state == "running":
            job.request_cancel(reason)
            log.info("job=%s event=cancel_requested reason=%s step=%d", job.job_id, reason, job.steps)
            return "cancelling"
        return job.state

    def client_gone(self, identity: bytes) -> None:
        self.peers.pop(bytes(identity), None)
        for job in self.queue.jobs():
            if job.identities and job.identities[0] == identity and not job.cancel_event.is_set():
                log.info("job=%s event=client_gone via=send_failure", job.job_id)
                self.cancel_job(job, "client_gone")

    def probe_queued(self) -> None:
        """Tell each queued job's client its place in the queue.  Besides informing the artist, the send fails at
        once (EHOSTUNREACH) for a client whose socket has gone, so a killed client's queued jobs are cancelled
        without waiting for its heartbeats to be missed."""
        positions = self.queue.queued_positions()
        for job in self.queue.jobs():
            pos = positions.get(job.job_id)
            if pos is None or job.cancel_event.is_set():
                continue
            self.reply(job.identities, job.request_header, PROGRESS,
                       {"fraction": 0.0, "stage": f"queued ({pos} ahead)", "step": 0, "position": pos},
                       job_id=job.job_id)

    def reap(self, now: float) -> None:
        if now - self._last_probe >= self.config.queue_probe_interval:
            self._last_probe = now
            self.probe_queued()
        timeout = self.config.heartbeat_timeout
        for job in self.queue.jobs():
            if job.state == "uploading" and now - job.last_chunk_at > self.config.upload_timeout:
                if self.queue.remove_queued(job):
                    self.queue.finish(job, "error", "upload_timeout")
                    self.reply(job.identities, job.request_header, ERROR,
                               {"code": "upload_timeout", "message": f"no chunk for "
                                f"{self.config.upload_timeout:.0f} s; the upload was dropped"}, job_id=job.job_id)
                continue
            sess = self.sessions.get(job.session)
            if sess and sess.pinging and now - sess.last_seen > timeout and not job.cancel_event.is_set():
                log.info("job=%s event=client_gone via=heartbeat silent=%.2f", job.job_id, now - sess.last_seen)
                self.cancel_job(job, "client_gone")
        if self.server_keys is not None:
            self._reap_remote(now)
        if len(self.sessions) > 64:
            busy = {j.session for j in self.queue.jobs()}
            for sid in [s for s, v in self.sessions.items() if now - v.last_seen > 60 and s not in busy]:
                del self.sessions[sid]

    def _reap_remote(self, now: float) -> None:
        """CURVE: cancel the jobs of a client revoked meanwhile; forget connections idle for long."""
        assert self.server_keys is not None
        for job in self.queue.jobs():
            if not job.client or job.cancel_event.is_set() or not job.identities:
                continue
            peer = self.peers.get(bytes(job.identities[0]))
            if peer is None or self.server_keys.lookup(peer.user) is None:
                log.info("job=%s event=client_revoked client=%s", job.job_id, job.client)
                self.peers.pop(bytes(job.identities[0]), None)
                self.cancel_job(job, "revoked")
        if len(self.peers) > 256:
            busy = {bytes(j.identities[0]) for j in self.queue.jobs() if j.identities}
            for ident in [i for i, p in self.peers.items() if now - p.last_seen > 60 and i not in busy]:
                del self.peers[ident]

    def begin_stop(self, reason: str, cancel_jobs: bool) -> None:
        if self.stopping:
            return
        self.stopping = reason
        self._stop_at = time.monotonic() + (SHUTDOWN_GRACE if cancel_jobs else 24 * 3600.0)
        log.info("event=stopping reason=%s cancel_jobs=%s jobs=%d", reason, cancel_jobs, len(self.queue.active))
        if cancel_jobs:
            for job in self.queue.jobs():
                self.cancel_job(job, "shutdown")
