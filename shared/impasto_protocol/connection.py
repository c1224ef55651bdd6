"""The connection file: where a running daemon listens and the key that signs its messages.

JSON, mode 0600, in the user's runtime directory (``$IMPASTO_RUNTIME_DIR`` overrides; else ``$XDG_RUNTIME_DIR/impasto``
on Linux, a per-user folder under the temp dir when that is unset, ``~/Library/Caches/TemporaryItems/impasto`` on
macOS, ``%LOCALAPPDATA%\\impasto\\run`` on Windows).  Stdlib only, so the daemon and the editor plugins -- which
cannot import platformdirs inside Krita/GIMP -- compute the same place.

On POSIX the folder, the file and the daemon's ipc socket are trusted only when they are what this user made:
owned by this uid, of the right type (a real folder / regular file / socket, never a symlink) and closed to
group and others.  The temp-dir fallback name is predictable, so another user may have made it first; both the
daemon and the clients then refuse with a message that says what to fix (``UnsafePath``) instead of trusting it.
"""
from __future__ import annotations

import json
import os
import secrets
import stat
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .wire import PROTOCOL_VERSION, SIGNATURE_SCHEME

FILE_NAME = "daemon.json"


class ConnectionFileError(Exception):
    """The connection file is missing, unreadable or names a daemon that is no longer running."""


class UnsafePath(ConnectionFileError):
    """The runtime folder, connection file or socket is not private to this user (owner, type or mode)."""


SOCKET_NAME = "daemon.sock"
IPC_PATH_MAX = 100          # sun_path is 108 bytes on Linux, 104 on macOS; ZeroMQ needs the terminating NUL


def _posix() -> bool:
    return sys.platform != "win32"


def check_private(path: str | os.PathLike, kind: str) -> None:
    """Refuse ``path`` unless it is a ``kind`` ("dir", "file" or "socket") owned by this uid, not a symlink, with no
    group/other permissions.  Raises ``UnsafePath`` naming the problem and the fix; a missing path raises
    ``FileNotFoundError``.  No-op on Windows (the folder is under the user's own profile)."""
    if not _posix():
        return
    p = Path(path)
    st = os.lstat(p)
    want = {"dir": stat.S_ISDIR, "file": stat.S_ISREG, "socket": stat.S_ISSOCK}[kind]
    what = {"dir": "folder", "file": "file", "socket": "socket"}[kind]
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath(f"{p} is a symbolic link, not the private {what} Impasto expects; remove it "
                         f"(`rm {p}`) or set IMPASTO_RUNTIME_DIR to a private folder")
    if not want(st.st_mode):
        raise UnsafePath(f"{p} is not a {what}; remove it or set IMPASTO_RUNTIME_DIR to a private folder")
    if st.st_uid != os.getuid():
        raise UnsafePath(f"{p} belongs to uid {st.st_uid}, not to you (uid {os.getuid()}): another user may have "
                         f"made it to intercept Impasto; remove it (as root) or set IMPASTO_RUNTIME_DIR to a "
                         f"private folder")
    if st.st_mode & 0o077:
        mode = "700" if kind == "dir" else "600"
        raise UnsafePath(f"{p} has mode {stat.S_IMODE(st.st_mode):o}: others may read or replace what is in it; "
                         f"`chmod {mode} {p}`")


def runtime_dir(create: bool = False) -> Path:
    env = os.environ.get("IMPASTO_RUNTIME_DIR")
    if env:
        d = Path(env)
    elif sys.platform == "win32":
        d = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "impasto" / "run"
    elif sys.platform == "darwin":
        d = Path.home() / "Library" / "Caches" / "TemporaryItems" / "impasto"
    else:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if xdg and Path(xdg).is_dir():
            d = Path(xdg) / "impasto"
        else:
            d = Path(tempfile.gettempdir()) / f"impasto-{os.getuid()}"
    if create:
        ensure_private_dir(d)
    return d


def ensure_private_dir(d: Path) -> Path:
    """Create ``d`` (mode 0700) if missing, then check that it is private (``UnsafePath`` otherwise).  An existing
    folder is never chmod-ed: what another user put there is not made ours by changing its mode."""
    try:
        d.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        pass
    check_private(d, "dir")
    return d


def default_connection_file() -> Path:
    return runtime_dir() / FILE_NAME


@dataclass
class ConnectionInfo:
    transport: str                    # "tcp" | "ipc"
    ip: str                           # tcp: a loopback address, or any with CURVE (server_key set)
    port: int                         # tcp port (0 for ipc)
    path: str                         # ipc socket path ("" for tcp)
    key: str                          # hex; its ASCII bytes are the HMAC key
    pid: int
    protocol_version: str = PROTOCOL_VERSION
    signature_scheme: str = SIGNATURE_SCHEME
    impasto_version: str = ""
    started: float = 0.0
    # CURVE (a daemon started with ``serve --listen``, or a remote profile): the server's public key and the key
    # pair this client presents, Z85; empty for the local PLAIN connection.  ``remote``: the profile's name.
    server_key: str = ""
    public_key: str = ""
    secret_key: str = ""
    remote: str = ""

    @property
    def endpoint(self) -> str:
        if self.transport == "ipc":
            return f"ipc://{self.path}"
        return f"tcp://[{self.ip}]:{self.port}" if ":" in self.ip else f"tcp://{self.ip}:{self.port}"

    @property
    def curve(self) -> bool:
        return bool(self.server_key)

    def check_socket(self) -> None:
        """For ipc: the socket file must be a socket of this user's (else ``UnsafePath``; missing: stale)."""
        if self.transport != "ipc":
            return
        try:
            check_private(self.path, "socket")
        except FileNotFoundError:
            raise ConnectionFileError(f"the daemon's socket {self.path} is gone (stale connection file)") from None

    def pid_alive(self) -> bool:
        """Whether the daemon's process runs; for a remote server (another machine) only heartbeats can tell."""
        if self.remote:
            return True
        return pid_alive(self.pid)

    @classmethod
    def from_dict(cls, d: Any) -> "ConnectionInfo":
        if not isinstance(d, dict):
            raise ConnectionFileError("connection file is not a JSON object")
        try:
            info = cls(transport=str(d["transport"]), ip=str(d.get("ip", "")), port=int(d.get("port", 0)),
                       path=str(d.get("path", "")), key=str(d["key"]), pid=int(d["pid"]),
                       protocol_version=str(d.get("protocol_version", "")),
                       signature_scheme=str(d.get("signature_scheme", SIGNATURE_SCHEME)),
                       impasto_version=str(d.get("impasto_version", "")), started=float(d.get("started", 0.0)),
                       server_key=str(d.get("server_key", "")), public_key=str(d.get("public_key", "")),
                       secret_key=str(d.get("secret_key", "")))
        except (KeyError, TypeError, ValueError) as e:
            raise ConnectionFileError(f"connection file lacks or garbles {e}") from None
        if info.transport not in ("tcp", "ipc"):
            raise ConnectionFileError(f"connection file names unknown transport {info.transport!r}")
        if info.signature_scheme != SIGNATURE_SCHEME:
            raise ConnectionFileError(f"unsupported signature scheme {info.signature_scheme!r}")
        return info


def new_key() -> str:
    return secrets.token_hex(32)


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if sys.platform == "win32":   # pragma: no cover - checked by answering hello instead
        import ctypes
        h = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)   # PROCESS_QUERY_LIMITED_INFORMATION
        if not h:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(h, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(h)
        return code.value == 259   # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False           # another user's process: our daemon runs as us, so that pid was reused
    if sys.platform.startswith("linux"):
        try:   # root may signal anyone: compare owners too
            if os.stat(f"/proc/{pid}").st_uid != os.getuid():
                return False
        except FileNotFoundError:
            if os.path.isdir("/proc/self"):
                return False   # /proc is there and the pid is not: it has just exited
            # no /proc at all (GIMP's chroot): kill() is all there is to go by
        except OSError:
            return False
    try:   # Linux: an exited child not yet reaped by its parent (a zombie) is not a running daemon
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def write_connection_file(info: ConnectionInfo, path: str | os.PathLike | None = None) -> Path:
    """Write atomically with mode 0600 (created that way: the key is never world-readable, not even briefly), into
    a folder that must be private (``UnsafePath`` otherwise)."""
    p = Path(path) if path else default_connection_file()
    ensure_private_dir(p.parent)
    return write_private_json(p, asdict(info))


def write_private_json(path: Path, data: dict) -> Path:
    """Write ``data`` as JSON to ``path`` atomically, created 0600 (never readable by others, not even briefly);
    the folder must exist.  Shared by the connection file and the remote keys (``remote.py``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if sys.platform != "win32":
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def read_connection_file(path: str | os.PathLike | None = None) -> ConnectionInfo:
    """Read and check the connection file: its folder and the file itself must be private to this user
    (``UnsafePath``), and a relative ipc ``path`` is taken relative to the file's folder (so a client that sees
    the folder under another name -- GIMP in a chroot with the folder bind-mounted -- finds the socket)."""
    p = Path(path) if path else default_connection_file()
    try:
        check_private(p.parent, "dir")
        check_private(p, "file")
        fd = os.open(p, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, encoding="utf-8") as f:
            raw = f.read(1 << 16)
    except FileNotFoundError:
        raise ConnectionFileError(f"no daemon connection file at {p} (is `impasto serve` running?)") from None
    except UnsafePath:
        raise
    except OSError as e:
        raise ConnectionFileError(f"cannot read {p}: {e.strerror}") from None
    try:
        d = json.loads(raw)
    except ValueError:
        raise ConnectionFileError(f"{p} is not valid JSON") from None
    info = ConnectionInfo.from_dict(d)
    if info.transport == "ipc" and info.path and not os.path.isabs(info.path):
        info.path = str(p.parent / info.path)
    return info


def remove_connection_file(path: str | os.PathLike | None = None, pid: int | None = None) -> bool:
    """Remove the file; with ``pid``, only when it still belongs to that process.  True when removed."""
    p = Path(path) if path else default_connection_file()
    if pid is not None:
        try:
            if read_connection_file(p).pid != pid:
                return False
        except ConnectionFileError:
            return False
    try:
        p.unlink()
        return True
    except FileNotFoundError:
        return False
