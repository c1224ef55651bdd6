"""The connection file: where a running daemon listens and the key that signs its messages.

JSON, mode 0600, in the user's runtime directory (``$IMPASTO_RUNTIME_DIR`` overrides; else ``$XDG_RUNTIME_DIR/impasto``
on Linux, a per-user folder under the temp dir when that is unset, ``~/Library/Caches/TemporaryItems/impasto`` on
macOS, ``%LOCALAPPDATA%\\impasto\\run`` on Windows).  Stdlib only, so the daemon and the editor plugins -- which
cannot import platformdirs inside Krita/GIMP -- compute the same place.
"""
from __future__ import annotations

import json
import os
import secrets
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
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        if sys.platform != "win32":
            os.chmod(d, 0o700)
    return d


def default_connection_file() -> Path:
    return runtime_dir() / FILE_NAME


@dataclass
class ConnectionInfo:
    transport: str                    # "tcp" | "ipc"
    ip: str                           # tcp: always a loopback address
    port: int                         # tcp port (0 for ipc)
    path: str                         # ipc socket path ("" for tcp)
    key: str                          # hex; its ASCII bytes are the HMAC key
    pid: int
    protocol_version: str = PROTOCOL_VERSION
    signature_scheme: str = SIGNATURE_SCHEME
    impasto_version: str = ""
    started: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"tcp://{self.ip}:{self.port}" if self.transport == "tcp" else f"ipc://{self.path}"

    def pid_alive(self) -> bool:
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
                       impasto_version=str(d.get("impasto_version", "")), started=float(d.get("started", 0.0)))
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
        return True
    try:   # Linux: an exited child not yet reaped by its parent (a zombie) is not a running daemon
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def write_connection_file(info: ConnectionInfo, path: str | os.PathLike | None = None) -> Path:
    """Write atomically with mode 0600 (created that way: the key is never world-readable, not even briefly)."""
    p = Path(path) if path else default_connection_file()
    p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(asdict(info), f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        if sys.platform != "win32":
            os.chmod(tmp, 0o600)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return p


def read_connection_file(path: str | os.PathLike | None = None) -> ConnectionInfo:
    p = Path(path) if path else default_connection_file()
    try:
        raw = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConnectionFileError(f"no daemon connection file at {p} (is `impasto serve` running?)") from None
    except OSError as e:
        raise ConnectionFileError(f"cannot read {p}: {e}") from None
    try:
        d = json.loads(raw)
    except ValueError:
        raise ConnectionFileError(f"{p} is not valid JSON") from None
    return ConnectionInfo.from_dict(d)


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
