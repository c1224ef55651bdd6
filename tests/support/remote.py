"""A second host for the remote-server tests: a network namespace joined to this one by a veth pair, a CURVE daemon
inside it, paired clients, and a packet capture of what crosses the wire.

``NetNamespace`` needs root and ``ip netns`` (``unavailable()`` says why not); where it is missing the tests run the
same daemon on 127.0.0.2 instead (a non-loopback-default address of this host) and skip the namespace variant with
that reason.  Everything made here is torn down afterwards (the namespace takes its veth end with it).
"""
from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Optional

from impasto_protocol.remote import RemoteProfile, ServerKeys, new_profile, profile_from_invitation

from .daemon import DaemonProcess


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)


def unavailable() -> str:
    """'' when network namespaces can be made here, else the reason they cannot."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux only"
    if os.geteuid() != 0:
        return "making a network namespace needs root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    name = f"impasto-probe-{os.getpid()}"
    try:
        _run("ip", "netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as e:
        return f"`ip netns add` failed: {getattr(e, 'stderr', '') or e}".strip()
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return ""


class NetNamespace:
    """``with NetNamespace() as ns:`` -- a namespace ``ns.name`` with address ``ns.server_ip``, reachable from this
    namespace through the veth end ``ns.host_if`` (address ``ns.host_ip``), in a private /30 chosen at random."""

    def __init__(self) -> None:
        tag = f"{os.getpid() % 100000}{random.randrange(100)}"
        self.name = f"impasto-srv-{tag}"
        self.host_if, self.ns_if = f"imh{tag}"[:15], f"ims{tag}"[:15]
        net = random.randrange(1, 250)
        self.host_ip, self.server_ip = f"10.231.{net}.1", f"10.231.{net}.2"
        self._made = False

    def __enter__(self) -> "NetNamespace":
        _run("ip", "netns", "add", self.name)
        self._made = True
        try:
            _run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
            _run("ip", "link", "set", self.ns_if, "netns", self.name)
            _run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
            _run("ip", "link", "set", self.host_if, "up")
            _run("ip", "netns", "exec", self.name, "ip", "addr", "add", f"{self.server_ip}/30", "dev", self.ns_if)
            _run("ip", "netns", "exec", self.name, "ip", "link", "set", self.ns_if, "up")
            _run("ip", "netns", "exec", self.name, "ip", "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True)
        if self._made:
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
            self._made = False


class RemoteDaemon(DaemonProcess):
    """``impasto serve --listen ADDRESS:PORT`` (test engines on) with its own server folder, optionally run inside a
    network namespace."""

    def __init__(self, runtime_dir: Path, address: str, port: int, *extra: str,
                 netns: Optional[NetNamespace] = None, **kw: object):
        self.server_dir = Path(runtime_dir) / "server"
        self.address, self.port, self.netns = address, port, netns
        super().__init__(runtime_dir, "--listen", f"{address}:{port}", "--server-dir", str(self.server_dir),
                         *extra, **kw)          # type: ignore[arg-type]

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.address}:{self.port}"

    @property
    def keys(self) -> ServerKeys:
        return ServerKeys(self.server_dir)

    def command(self) -> list[str]:
        cmd = super().command()
        return [*self.netns.prefix(), *cmd] if self.netns else cmd

    def invite(self, name: str) -> RemoteProfile:
        """Pair a client the invitation way: its profile (the artist's side), already allowed here."""
        return profile_from_invitation(self.keys.invite(name, self.endpoint), name=name)

    def stranger(self) -> RemoteProfile:
        """A profile for this server with a key the server never allowed."""
        return new_profile("stranger", self.endpoint, self.keys.public_key())


def free_port(address: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return s.getsockname()[1]


class Capture:
    """Collects the TCP payload bytes to or from ``port`` seen on interface ``iface`` (an AF_PACKET socket: root;
    IPv4 only), on a thread, between ``start()`` and ``stop()``."""

    def __init__(self, iface: str, port: int):
        self.iface, self.port = iface, port
        self.payload = bytearray()
        self.packets = 0
        self._stop = threading.Event()
        self._sock: Optional[socket.socket] = None
        self._thread: Optional[threading.Thread] = None

    def start(self) -> "Capture":
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))    # ETH_P_IP
        s.bind((self.iface, 0))
        s.settimeout(0.1)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self._sock = s
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                frame, addr = self._sock.recvfrom(1 << 17)
            except socket.timeout:
                continue
            except OSError:
                return
            if addr[2] == socket.PACKET_OUTGOING and self.iface == "lo":
                continue                       # loopback shows each packet twice (out and in): keep one
            ip = frame[14:]
            if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 6:
                continue
            ihl = (ip[0] & 0xF) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            tcp = ip[ihl:total]
            if len(tcp) < 20:
                continue
            sport, dport = struct.unpack("!HH", tcp[:4])
            if self.port not in (sport, dport):
                continue
            off = (tcp[12] >> 4) * 4
            self.packets += 1
            self.payload += tcp[off:]

    def stop(self) -> bytes:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._sock is not None:
            self._sock.close()
        return bytes(self.payload)

    def __enter__(self) -> "Capture":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def can_capture() -> str:
    """'' when this process may open an AF_PACKET socket, else why not."""
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800)).close()
        return ""
    except (AttributeError, OSError) as e:
        return f"no raw packet socket here ({e})"
