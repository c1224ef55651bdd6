"""Daemon settings (command-line flags of ``impasto serve`` end up here)."""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from impasto_protocol.connection import default_connection_file
from impasto_protocol.images import DEFAULT_MAX_PIXELS
from impasto_protocol.messages import MAX_FRAME, TCP_MAX_FRAME
from impasto_protocol.options import ENGINES

LOOPBACK = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1"}


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` for ``serve --listen``: HOST an IPv4 or IPv6 address (``[::]`` form too), ``*`` or ``0.0.0.0``
    for every interface; PORT 1-65535.  Returns (address to bind, port)."""
    import ipaddress
    host, sep, port = (value or "").rpartition(":")
    host = host.strip("[]")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--listen takes HOST:PORT (e.g. 0.0.0.0:5555 or [::]:5555), not {value!r}")
    if host == "*":
        host = "0.0.0.0"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--listen needs an IP address of this machine (or 0.0.0.0 / [::] for all), not "
                         f"{host!r}") from None
    return host, int(port)


def default_photos_dir() -> Path:
    """Where training photos are looked for when a train request names none."""
    env = os.environ.get("IMPASTO_TRAIN_PHOTOS")
    if env:
        return Path(env)
    from ..engines.mt.styles import user_data_dir
    return user_data_dir() / "training-photos"


def default_train_photo_dirs() -> list[Path]:
    return [default_photos_dir()]


# An engine registered by the program that embeds the daemon: ``stylize(content, style, options, *, progress,
# cancel, on_tile) -> tensor``, called like ``impasto.engines.stylize`` (minus device and artifacts).
ExtraEngine = Callable[..., "object"]


@dataclass
class DaemonConfig:
    tcp: bool = sys.platform == "win32"     # listen on TCP (loopback) instead of the default private ipc socket
    port: int = 0                           # tcp port on the loopback address; 0 = any free port
    ip: str = "127.0.0.1"                   # 127.0.0.1 or ::1 ("localhost" means 127.0.0.1)
    ipc_path: Optional[str] = None          # ipc socket path; None = daemon.sock beside the connection file
    connection_file: Path = field(default_factory=default_connection_file)
    max_pixels: int = DEFAULT_MAX_PIXELS    # per image, and per output
    max_message_bytes: Optional[int] = None  # ZMQ_MAXMSGSIZE (a larger frame disconnects the sender); None:
                                            # MAX_FRAME on ipc, TCP_MAX_FRAME on TCP
    max_buffers: int = 3                    # buffer frames per message (content, style, mask), checked before hashing
    heartbeat_timeout: float = 1.5          # a pinging session silent this long has its jobs cancelled
    queue_probe_interval: float = 0.5       # queued jobs get a progress message this often (finds vanished clients)
    replay_window: float = 300.0            # seconds a message date may lie in the past
    max_active_jobs: int = 512              # queued + running
    max_queued_bytes: int = 8 << 30         # image memory of jobs not yet running (inline frames and streamed
                                            # uploads' tensors), all clients together
    upload_timeout: float = 60.0            # a streamed upload with no chunk for this long fails
    # Extra engines, name -> ExtraEngine: the hook tests and benchmarks use to serve weight-free engines
    # (tests/support/engines.py, started by tests/support/serve.py); ``impasto serve`` registers none.  Their options
    # are validated as a gatys request's (any engine name aside), hello lists them in "engines", results carry no
    # recipe.  A name of a real engine is refused.
    extra_engines: dict[str, ExtraEngine] = field(default_factory=dict)
    devices: Optional[list[str]] = None     # None = every CUDA device, else the CPU
    progress_interval: float = 0.05         # at most one progress message per job per interval (previews aside)
    train_photo_dirs: list[Path] = field(default_factory=default_train_photo_dirs)  # folders training may read
    refusal_log_burst: int = 20             # refusals logged per 10 s window; the rest are counted, then summarized
    # A network service for other machines (``serve --listen HOST:PORT``): CURVE only, clients on the allow-list in
    # ``server_dir`` (impasto_protocol.remote.ServerKeys; None = <config dir>/server).  ip/port come from it.
    listen: Optional[str] = None
    server_dir: Optional[Path] = None

    @property
    def curve(self) -> bool:
        return self.listen is not None

    def __post_init__(self) -> None:
        if self.listen is not None:
            if self.ipc_path:
                raise ValueError("--listen serves TCP with CURVE; it takes no ipc socket path")
            self.ip, self.port = parse_listen(self.listen)
            self.tcp = True
        elif self.ip not in LOOPBACK:
            raise ValueError(f"without CURVE the daemon binds loopback only (127.0.0.1 or ::1); refusing ip "
                             f"{self.ip!r} (use `impasto serve --listen HOST:PORT` to serve other machines)")
        else:
            self.ip = LOOPBACK[self.ip]
        if self.port:
            self.tcp = True
        if self.max_message_bytes is None:
            self.max_message_bytes = TCP_MAX_FRAME if self.tcp else MAX_FRAME
        if self.tcp and self.ipc_path:
            raise ValueError("choose TCP or an ipc socket path, not both")
        if self.tcp is False and sys.platform == "win32":
            raise ValueError("ipc:// sockets need POSIX; use TCP on Windows")
        clash = sorted(set(self.extra_engines) & set(ENGINES))
        if clash:
            raise ValueError(f"extra engines may not replace a real engine: {', '.join(clash)}")
