"""Which Impasto server a plugin talks to: the daemon on this computer, or a paired remote server picked by name.

The artist's setting is one string.  ``""`` or ``"local"``: this computer's daemon, found through its connection
file and started on demand, as before remote servers existed.  Anything else: the name of a server this computer
was paired with (``impasto remote add NAME --invitation LINE``, docs/remote.md), whose profile is
``<config>/remotes/NAME.json``; the client connects to it over CURVE and nothing is ever started for it (it runs on
another machine).  Once connected, jobs, progress, tiles and cancel work the same; a server that vanishes is noticed
by the client's heartbeats within ``REMOTE_DEAD_AFTER`` seconds.

Everything the artist reads is here, so both editors say the same: ``connect`` raises ``ServerError`` (or its
``UnknownServer``) with a message to show; ``choices`` is what a server picker lists; ``connected_text`` and
``lost_text`` are the status lines.  ``impasto_protocol.remote`` (which needs pyzmq) is imported only when used.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from .errors import PluginError

LOCAL = "local"
LOCAL_TITLE = "Local (this computer)"
PAIRING_DOC = "docs/remote.md"


class ServerError(PluginError):
    """No connection to the chosen server.  ``server``: its name ("" = the local daemon); ``detail``: the client's
    own words (for a caller that phrases the local case itself)."""

    def __init__(self, message: str, server: str = "", detail: str = ""):
        super().__init__(message)
        self.server = server
        self.detail = detail or message


class UnknownServer(ServerError):
    """The setting names a server this computer is not paired with (or whose profile cannot be read)."""


def normalize(name: Optional[str]) -> str:
    """The setting as the code compares it: "" for the local daemon ("", "local", any case), else the name."""
    name = (name or "").strip()
    return "" if name.lower() == LOCAL else name


def is_remote(name: Optional[str]) -> bool:
    return bool(normalize(name))


@dataclass(frozen=True)
class Choice:
    """One entry of a server picker.  ``name`` is what the setting stores ("" = local)."""

    name: str
    title: str
    endpoint: str = ""
    paired: bool = True


def paired() -> list:
    """The paired remote servers (``RemoteProfile``s, by name); [] when there are none or pyzmq is missing (the
    plugin then says so itself).  A profile that cannot be read is left out (``profile`` names the problem)."""
    try:
        from impasto_protocol.remote import list_remotes
    except ImportError:
        return []
    try:
        return sorted(list_remotes(), key=lambda p: p.name.lower())
    except Exception:  # noqa: BLE001 - an unreadable remotes folder: nothing to list (connecting says why)
        return []


def choices(current: Optional[str] = None) -> list[Choice]:
    """Local first, then every paired server; a ``current`` setting that names no paired server is kept at the end,
    marked, so a picker never silently replaces it."""
    out = [Choice("", LOCAL_TITLE)]
    for p in paired():
        out.append(Choice(p.name, f"{p.name} ({endpoint_host(p.endpoint)})", p.endpoint))
    cur = normalize(current)
    if cur and all(c.name != cur for c in out):
        out.append(Choice(cur, f"{cur} (not paired here)", paired=False))
    return out


def endpoint_host(endpoint: str) -> str:
    """``tcp://host:port`` -> ``host:port`` (what a picker shows)."""
    return endpoint[len("tcp://"):] if endpoint.startswith("tcp://") else endpoint


def _known() -> str:
    return ", ".join(p.name for p in paired()) or "none"


def profile(name: str) -> Any:
    """The ``RemoteProfile`` of the paired server ``name``; ``UnknownServer`` says what to do when there is none."""
    from impasto_protocol.connection import ConnectionFileError
    from impasto_protocol.remote import RemoteError, check_name, load_remote, remotes_dir
    name = normalize(name)
    try:
        check_name(name)
    except RemoteError:
        raise UnknownServer(f"{name!r} is not a server name (paired servers: {_known()}); choose a paired server "
                            f"or {LOCAL!r} for this computer", name) from None
    if not (remotes_dir() / f"{name}.json").exists():
        raise UnknownServer(
            f"no server named {name!r} is paired with this computer (paired: {_known()}). Pair it with "
            f"`impasto remote add {name} --invitation LINE` (the line comes from the server's owner; see "
            f"{PAIRING_DOC}), or choose {LOCAL_TITLE}", name)
    try:
        return load_remote(name)
    except (RemoteError, ConnectionFileError, OSError, ValueError) as e:
        raise UnknownServer(f"the profile of the server {name!r} cannot be used: {e}", name) from None


def connect(server: Optional[str], *, timeout: float = 5.0, autostart: bool = False,
            serve_command: Optional[Sequence[str]] = None, autostart_timeout: float = 90.0) -> Any:
    """A connected ``impasto_protocol.client.Client`` of the chosen server (``hello`` answered).

    Local: the daemon of the connection file, started when none answers if ``autostart``.  Remote: the paired
    server over CURVE, never started from here (``autostart`` is ignored).  Raises ``UnknownServer`` or
    ``ServerError`` with the message to show."""
    from impasto_protocol.client import Client, DaemonNotRunning, ProtocolError
    name = normalize(server)
    if not name:
        try:
            return Client.connect(autostart=autostart, timeout=timeout, serve_command=serve_command,
                                  autostart_timeout=autostart_timeout)
        except (DaemonNotRunning, ProtocolError, OSError) as e:
            raise ServerError(f"the Impasto daemon is not running ({e})", "", str(e)) from None
    prof = profile(name)
    try:
        return Client.connect(remote=prof, timeout=timeout)
    except DaemonNotRunning as e:          # its text lists what to check (running? firewall? allow-list?)
        text = str(e)
        raise ServerError(text[:1].upper() + text[1:], name, text) from None
    except (ProtocolError, OSError) as e:
        raise ServerError(f"The server {name!r} ({endpoint_host(prof.endpoint)}) refused the connection: {e}",
                          name, str(e)) from None


def devices_text(hello: dict) -> str:
    """``CPU`` / ``cuda:0`` ... from a ``hello`` reply."""
    return ", ".join(str(d).upper() if str(d) == "cpu" else str(d) for d in hello.get("devices") or [])


def connected_text(server: Optional[str], hello: dict) -> str:
    """The status line once connected: ``Connected · CPU`` (local) or ``Connected to studio · cuda:0``."""
    name = normalize(server)
    where = devices_text(hello) or ("server" if name else "daemon")
    return f"Connected to {name} · {where}" if name else f"Connected · {where}"


def lost_text(server: Optional[str], dead_after: Optional[float] = None) -> str:
    """Why a running job ended when the server stopped answering (nothing is inserted then)."""
    name = normalize(server)
    if not name:
        return "the daemon stopped (see daemon.log); press Start daemon and try again"
    if dead_after is None:
        from impasto_protocol.client import REMOTE_DEAD_AFTER as dead_after
    return (f"the server {name!r} stopped answering (nothing for {dead_after:.0f} s); nothing was changed. Check "
            f"that it is still running and reachable from this computer, then try again")


def disconnected_text(server: Optional[str]) -> str:
    """The status line after the server went away."""
    name = normalize(server)
    return f"The server {name!r} stopped answering. Press Connect to try again." if name else \
        "The daemon stopped. Press Start daemon."
