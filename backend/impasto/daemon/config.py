"""Daemon settings (command-line flags of ``impasto serve`` end up here)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from impasto_protocol.connection import default_connection_file
from impasto_protocol.images import DEFAULT_MAX_PIXELS


@dataclass
class DaemonConfig:
    port: int = 0                           # tcp port on 127.0.0.1; 0 = any free port
    ip: str = "127.0.0.1"
    ipc_path: Optional[str] = None          # use ipc://<path> instead of tcp
    connection_file: Path = field(default_factory=default_connection_file)
    max_pixels: int = DEFAULT_MAX_PIXELS    # per image, and per output
    max_message_bytes: int = 4 << 30        # ZMQ_MAXMSGSIZE: larger frames disconnect the sender
    heartbeat_timeout: float = 1.5          # a pinging session silent this long has its jobs cancelled
    queue_probe_interval: float = 0.5       # queued jobs get a progress message this often (finds vanished clients)
    replay_window: float = 300.0            # seconds a message date may differ from the daemon's clock
    max_active_jobs: int = 512              # queued + running
    max_upload_bytes: int = 8 << 30         # pixels of streamed images being received, all jobs together
    upload_timeout: float = 60.0            # a streamed upload with no chunk for this long fails
    test_engines: bool = False              # add the identity/sleep/fail/oom engines
    devices: Optional[list[str]] = None     # None = every CUDA device, else the CPU
    progress_interval: float = 0.05         # at most one progress message per job per interval (previews aside)

    def __post_init__(self) -> None:
        if self.ip not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError(f"the daemon binds loopback only; refusing ip {self.ip!r}")
