"""A real daemon subprocess for tests and benchmarks (isolated runtime dir, test engines on unless asked not to)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from impasto_protocol.client import Client, DaemonNotRunning
from impasto_protocol.connection import ConnectionFileError, ConnectionInfo, read_connection_file

SERVE_SCRIPT = Path(__file__).resolve().parent / "serve.py"


def serve_command(test_engines: bool = True) -> list[str]:
    """The command that starts a daemon: ``tests/support/serve.py`` (``impasto serve`` with the test engines
    registered), or the product's own ``impasto serve``."""
    if test_engines:
        return [sys.executable, str(SERVE_SCRIPT)]
    return [sys.executable, "-m", "impasto.cli", "serve"]


# A peer without the key, flooding a TCP daemon (bench/bench_daemon_flood.py, tests/test_daemon_hardening.py):
# ``python -c FLOODER ENDPOINT SECONDS RAW_CONNECTIONS FRAME_BYTES``.  Loops over DEALER sockets with no credentials
# and with a wrong PLAIN password sending unsigned 2 x 32 MiB messages (fresh connections every second), and
# RAW_CONNECTIONS plain TCP connections per round that send a valid ZMTP 3 PLAIN greeting, declare one frame of
# FRAME_BYTES and send its bytes -- what a peer can make libzmq hold before its handshake fails.
FLOODER = r"""
import socket, struct, sys, time, zmq
ep, seconds, raw_n, frame = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
host, port = ep[len("tcp://"):].rsplit(":", 1)
end = time.monotonic() + seconds
ctx = zmq.Context()
big = bytes(32 << 20)
sent = rounds = raw_bytes = 0
# ZMTP 3.0 greeting: signature, version 3.0, mechanism "PLAIN", as-server 0, filler
greeting = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"PLAIN".ljust(20, b"\0") + b"\x00" + bytes(31)
while time.monotonic() < end:
    socks = []
    for creds in (None, b"wrong"):
        s = ctx.socket(zmq.DEALER); s.linger = 0; s.sndhwm = 4
        if creds:
            s.plain_username = b"impasto"; s.plain_password = creds
        s.connect(ep); socks.append(s)
    raws = []
    for _ in range(raw_n):
        try:
            r = socket.create_connection((host, int(port)), timeout=1.0)
            r.sendall(greeting)
            r.sendall(b"\x06" + struct.pack(">Q", frame))      # a long command frame of `frame` bytes
            raws.append(r)
        except OSError:
            pass
    t_round = time.monotonic()
    while time.monotonic() - t_round < 1.0 and time.monotonic() < end:
        for s in socks:
            try:
                s.send_multipart([b"<IMPASTO|MSG>", b"", big, big], flags=zmq.NOBLOCK, copy=False)
                sent += 1
            except zmq.Again:
                pass
        chunk = bytes(1 << 20)
        for r in list(raws):
            try:
                r.sendall(chunk)
                raw_bytes += len(chunk)
            except OSError:
                raws.remove(r)
        time.sleep(0.01)
    for s in socks:
        s.close(0)
    for r in raws:
        r.close()
    rounds += 1
print(f"flooder: {sent} unsigned 64 MiB messages queued, {rounds} rounds of fresh connections, "
      f"{raw_bytes >> 20} MiB sent on raw ZMTP connections")
"""


class DaemonProcess:
    """``with DaemonProcess(tmp_path) as d: client = d.client()`` -- starts ``serve_command(test_engines)``."""

    def __init__(self, runtime_dir: str | os.PathLike, *extra_args: str, test_engines: bool = True,
                 start_timeout: float = 120.0):
        self.runtime_dir = Path(runtime_dir)
        self.connection_file = self.runtime_dir / "daemon.json"
        self.log_file = self.runtime_dir / "daemon.log"
        self.args = list(extra_args)
        self.test_engines = test_engines
        self.start_timeout = start_timeout
        self.proc: Optional[subprocess.Popen] = None
        self.info: Optional[ConnectionInfo] = None
        self._clients: list[Client] = []

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["IMPASTO_RUNTIME_DIR"] = str(self.runtime_dir)
        env.setdefault("IMPASTO_DATA_DIR", str(self.runtime_dir / "data"))      # trained styles stay in the test
        env.setdefault("OMP_NUM_THREADS", "2")
        return env

    def command(self) -> list[str]:
        return [*serve_command(self.test_engines), "--connection-file", str(self.connection_file), *self.args]

    def start(self) -> "DaemonProcess":
        self.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            try:
                info = read_connection_file(self.connection_file)
                if info.pid == self.proc.pid:
                    c = Client(info, heartbeat=False)
                    try:
                        c.hello(timeout=2.0)
                        self.info = info
                        return self
                    except DaemonNotRunning:
                        pass
                    finally:
                        c.close(cancel_jobs=False)
            except ConnectionFileError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"daemon did not start within {self.start_timeout} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def client(self, **kw: Any) -> Client:
        assert self.info is not None
        c = Client(self.info, **kw)
        self._clients.append(c)
        return c

    def rss_mib(self) -> float:
        """The daemon's resident memory in MiB (Linux /proc; 0 elsewhere)."""
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:       # type: ignore[union-attr]
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) / 1024
        except (OSError, AttributeError):
            pass
        return 0.0

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> Optional[int]:
        for c in self._clients:
            c.close()
        self._clients.clear()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "DaemonProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
