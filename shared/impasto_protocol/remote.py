"""Remote servers: CURVE key pairs, the server's allow-list, artists' remote profiles and the one-line pairings.

A daemon started with ``impasto serve --listen HOST:PORT`` is a network service for artists on other machines.
ZeroMQ's CURVE (Curve25519 keys; every connection authenticated and encrypted) carries its traffic, and its ZAP
handler admits only client keys on the allow-list. The HMAC envelope stays on top (defence in depth): each paired
client has its own signing key, which never crosses the network -- it is made at pairing and travels only inside
the pairing line that the artist and the server's owner pass to each other (ssh, a password manager), like an SSH
key. ``docs/remote.md`` has the threat model and the setup.

Two ways to pair (both give each side the other's public key and both the client's signing key):

* **Invitation** (the server's owner starts): ``impasto server invite NAME --endpoint tcp://host:port`` makes a client
  key pair and a signing key, allows the public key and prints one line (``impasto-invite-1:...``); the artist runs
  ``impasto remote add NAME --invitation LINE``.
* **Client key** (the artist starts): ``impasto remote add NAME tcp://host:port --server-key KEY`` makes the key pair
  and the signing key on the artist's machine and prints one line (``impasto-client-1:...``); the server's owner
  runs ``impasto serve --allow LINE`` (or ``impasto server allow LINE``).

Both lines hold the client's signing key (the invitation also its secret key): pass them like a password.
Revoking (``impasto server revoke NAME``) removes the key from the allow-list; the daemon refuses the key's next
connection and drops its messages on a live one.

Files (all JSON, created 0600 in folders created 0700, written atomically):

* server: ``<config>/server/server.json`` (the server key pair), ``<config>/server/clients/NAME.json`` (allowed:
  name, public key, signing key), ``<config>/server/revoked/NAME.json`` (what was revoked, kept for the record).
* artist: ``<config>/remotes/NAME.json`` (endpoint, server public key, own key pair, signing key).

``<config>`` is ``$IMPASTO_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/impasto`` or ``~/.config/impasto`` (Linux),
``~/Library/Application Support/impasto`` (macOS), ``%APPDATA%\\impasto`` (Windows). Stdlib + pyzmq only.
"""
from __future__ import annotations

import base64
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

import zmq
from zmq.utils import z85

from .connection import ConnectionInfo, ensure_private_dir
from .connection import write_private_json as _write_json

INVITE_PREFIX = "impasto-invite-1:"
CLIENT_PREFIX = "impasto-client-1:"
ADMIN_USER = "@admin"               # the ZAP user id of the server's own (local) connection
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_Z85_KEY = re.compile(r"^[0-9A-Za-z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}$")
_HEX_KEY = re.compile(r"^[0-9a-f]{64}$")


class RemoteError(Exception):
    """A remote profile, key, pairing line or allow-list entry is missing or malformed (the message says which)."""


def config_dir() -> Path:
    env = os.environ.get("IMPASTO_CONFIG_DIR")
    if env:
        return Path(env)
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "impasto"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "impasto"
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "impasto"


def remotes_dir() -> Path:
    return config_dir() / "remotes"


def default_server_dir() -> Path:
    return config_dir() / "server"


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RemoteError(f"bad name {name!r}: use 1-64 letters, digits, '.', '_' or '-', starting with a letter "
                          f"or digit")
    return name


def check_public_key(key: str, what: str = "public key") -> str:
    if not isinstance(key, str) or not _Z85_KEY.match(key):
        raise RemoteError(f"bad {what} {key!r}: a CURVE key is 40 Z85 characters")
    return key


def check_signing_key(key: str) -> str:
    if not isinstance(key, str) or not _HEX_KEY.match(key):
        raise RemoteError("bad signing key: 64 lower-case hex characters expected")
    return key


def new_keypair() -> tuple[str, str]:
    """A fresh CURVE key pair (public, secret), Z85 text."""
    public, secret = zmq.curve_keypair()
    return public.decode("ascii"), secret.decode("ascii")


def new_signing_key() -> str:
    return secrets.token_hex(32)


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``tcp://host:port`` (``tcp://[v6]:port``) -> (host, port)."""
    m = re.match(r"^tcp://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$", endpoint or "")
    if not m or not 0 < int(m.group(2)) < 65536:
        raise RemoteError(f"bad endpoint {endpoint!r}: expected tcp://HOST:PORT")
    return m.group(1).strip("[]"), int(m.group(2))


# -- files -------------------------------------------------------------------------------------------------------
def make_private_dirs(folder: Path) -> Path:
    """Create ``folder`` and any missing parents one by one, each 0700 (``Path.mkdir(parents=True)`` would make
    the parents with the umask's mode), then check that ``folder`` is private (``UnsafePath`` otherwise)."""
    missing = []
    p = folder
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
    return ensure_private_dir(folder)


def write_private_json(path: Path, data: dict, *, exclusive: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically, created 0600, in a folder that must be private (made 0700)."""
    make_private_dirs(path.parent)
    if exclusive and path.exists():
        raise FileExistsError(path)
    return _write_json(path, data)


def read_private_json(path: Path) -> dict:
    """Read a file this module wrote; its folder and the file itself must be private to this user."""
    from .connection import check_private
    check_private(path.parent, "dir")
    check_private(path, "file")
    with open(path, encoding="utf-8") as f:
        data = json.loads(f.read(1 << 16))
    if not isinstance(data, dict):
        raise RemoteError(f"{path} is not a JSON object")
    return data


def _encode_line(prefix: str, data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return prefix + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_line(prefix: str, line: str, what: str) -> dict:
    line = (line or "").strip()
    if not line.startswith(prefix):
        raise RemoteError(f"not {what}: it should start with {prefix!r}")
    body = line[len(prefix):]
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError):
        raise RemoteError(f"{what} is garbled (copy the whole line)") from None
    if not isinstance(data, dict):
        raise RemoteError(f"{what} is garbled (copy the whole line)")
    return data


# -- the artist's side -------------------------------------------------------------------------------------------
@dataclass
class RemoteProfile:
    """What an artist's machine knows of one remote server (``<config>/remotes/NAME.json``)."""

    name: str
    endpoint: str                  # tcp://host:port
    server_key: str                # the server's CURVE public key (Z85)
    public_key: str                # this client's CURVE key pair (Z85)
    secret_key: str
    signing_key: str               # hex; this client's HMAC key, shared with the server only
    compression: bool = True       # send and ask for compressed image buffers (pays on a network)
    added: float = field(default_factory=time.time)

    def validate(self) -> "RemoteProfile":
        check_name(self.name)
        parse_endpoint(self.endpoint)
        check_public_key(self.server_key, "server key")
        check_public_key(self.public_key)
        check_public_key(self.secret_key, "secret key")
        check_signing_key(self.signing_key)
        return self

    def connection_info(self) -> ConnectionInfo:
        """The ``ConnectionInfo`` a ``Client`` connects with (no pid: liveness comes from heartbeats only)."""
        host, port = parse_endpoint(self.endpoint)
        return ConnectionInfo(transport="tcp", ip=host, port=port, path="", key=self.signing_key, pid=0,
                              server_key=self.server_key, public_key=self.public_key, secret_key=self.secret_key,
                              remote=self.name)

    def client_line(self) -> str:
        """The line the server's owner gives ``impasto serve --allow`` (holds the signing key: pass it privately)."""
        return _encode_line(CLIENT_PREFIX, {"name": self.name, "public_key": self.public_key,
                                            "signing_key": self.signing_key})

    @classmethod
    def from_dict(cls, d: dict) -> "RemoteProfile":
        try:
            p = cls(name=d["name"], endpoint=d["endpoint"], server_key=d["server_key"], public_key=d["public_key"],
                    secret_key=d["secret_key"], signing_key=d["signing_key"],
                    compression=bool(d.get("compression", True)), added=float(d.get("added", 0.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise RemoteError(f"remote profile lacks or garbles {e}") from None
        return p.validate()


def new_profile(name: str, endpoint: str, server_key: str) -> RemoteProfile:
    """A profile with a fresh key pair and signing key (the client-key way of pairing)."""
    public, secret = new_keypair()
    return RemoteProfile(name=name, endpoint=endpoint, server_key=server_key, public_key=public, secret_key=secret,
                         signing_key=new_signing_key()).validate()


def profile_from_invitation(line: str, name: Optional[str] = None) -> RemoteProfile:
    d = _decode_line(INVITE_PREFIX, line, "an Impasto invitation")
    if name:
        d["name"] = name
    return RemoteProfile.from_dict(d)


def save_remote(profile: RemoteProfile, *, replace: bool = False) -> Path:
    profile.validate()
    path = remotes_dir() / f"{profile.name}.json"
    try:
        return write_private_json(path, asdict(profile), exclusive=not replace)
    except FileExistsError:
        raise RemoteError(f"a remote named {profile.name!r} exists already ({path}); "
                          f"`impasto remote remove {profile.name}` first") from None


def load_remote(name: str) -> RemoteProfile:
    check_name(name)
    path = remotes_dir() / f"{name}.json"
    try:
        return RemoteProfile.from_dict(read_private_json(path))
    except FileNotFoundError:
        known = ", ".join(p.name for p in list_remotes()) or "none"
        raise RemoteError(f"no remote server named {name!r} (known: {known}); add it with "
                          f"`impasto remote add {name} tcp://HOST:PORT --server-key KEY`") from None
    except (OSError, ValueError) as e:
        raise RemoteError(f"cannot read {path}: {e}") from None


def list_remotes() -> list[RemoteProfile]:
    out = []
    d = remotes_dir()
    if not d.is_dir():
        return out
    for p in sorted(d.glob("*.json")):
        try:
            out.append(RemoteProfile.from_dict(read_private_json(p)))
        except (OSError, ValueError, RemoteError):
            continue
    return out


def remove_remote(name: str) -> bool:
    check_name(name)
    try:
        (remotes_dir() / f"{name}.json").unlink()
        return True
    except FileNotFoundError:
        return False


# -- the server's side -------------------------------------------------------------------------------------------
@dataclass
class AllowedClient:
    name: str
    public_key: str
    signing_key: str
    added: float = 0.0

    @classmethod
    def from_dict(cls, d: dict) -> "AllowedClient":
        try:
            c = cls(name=check_name(d["name"]), public_key=check_public_key(d["public_key"]),
                    signing_key=check_signing_key(d["signing_key"]), added=float(d.get("added", 0.0)))
        except (KeyError, TypeError, ValueError) as e:
            raise RemoteError(f"allow-list entry lacks or garbles {e}") from None
        return c


def client_from_line(line: str) -> AllowedClient:
    """Parse what ``impasto remote add`` printed (or a file holding it)."""
    return AllowedClient.from_dict({**_decode_line(CLIENT_PREFIX, line, "an Impasto client line"),
                                    "added": time.time()})


class ServerKeys:
    """The server's folder: its CURVE key pair and the allow-list of client keys (see the module docstring).

    ``lookup`` is what the daemon asks on every handshake and every message; it rereads the ``clients`` folder when
    the folder changed (its mtime), at most every ``refresh`` seconds, so an allow or revoke made by another process
    (``impasto server revoke``) takes effect on the next connection and the next message."""

    def __init__(self, folder: Path | str | None = None, refresh: float = 0.2):
        self.folder = Path(folder) if folder else default_server_dir()
        self.refresh = refresh
        self._lock = threading.Lock()
        self._by_key: dict[str, AllowedClient] = {}
        self._stamp: Any = -1
        self._checked = 0.0

    @property
    def clients_dir(self) -> Path:
        return self.folder / "clients"

    @property
    def revoked_dir(self) -> Path:
        return self.folder / "revoked"

    def keypair(self, create: bool = True) -> tuple[str, str]:
        """(public, secret) of the server, made on first use (``server.json``, 0600)."""
        path = self.folder / "server.json"
        try:
            d = read_private_json(path)
            return check_public_key(d["public_key"], "server key"), check_public_key(d["secret_key"], "secret key")
        except FileNotFoundError:
            if not create:
                raise RemoteError(f"no server key in {self.folder} (it is made by the first "
                                  f"`impasto serve --listen`)") from None
        except (KeyError, TypeError, ValueError) as e:
            raise RemoteError(f"{path} is damaged ({e}); move it away to make a new server key "
                              f"(every client must then be paired again)") from None
        public, secret = new_keypair()
        try:
            write_private_json(path, {"public_key": public, "secret_key": secret, "created": time.time()},
                               exclusive=True)
        except FileExistsError:          # another process made it first: use that one
            return self.keypair(create=False)
        return public, secret

    def public_key(self) -> str:
        return self.keypair()[0]

    def clients(self) -> list[AllowedClient]:
        out = []
        if not self.clients_dir.is_dir():
            return out
        for p in sorted(self.clients_dir.glob("*.json")):
            try:
                out.append(AllowedClient.from_dict(read_private_json(p)))
            except (OSError, ValueError, RemoteError):
                continue
        return out

    def allow(self, client: AllowedClient) -> Path:
        """Put ``client`` on the allow-list (a name or key already there is refused: revoke it first)."""
        for c in self.clients():
            if c.name == client.name:
                raise RemoteError(f"a client named {client.name!r} is already allowed; "
                                  f"`impasto server revoke {client.name}` first")
            if c.public_key == client.public_key:
                raise RemoteError(f"that key is already allowed as {c.name!r}")
        path = write_private_json(self.clients_dir / f"{client.name}.json", asdict(client), exclusive=True)
        self._stamp = -1
        return path

    def invite(self, name: str, endpoint: str) -> str:
        """Make a key pair and signing key for ``name``, allow it, and return the invitation line."""
        check_name(name)
        parse_endpoint(endpoint)
        public, secret = new_keypair()
        signing = new_signing_key()
        self.allow(AllowedClient(name=name, public_key=public, signing_key=signing, added=time.time()))
        return _encode_line(INVITE_PREFIX, {"name": name, "endpoint": endpoint, "server_key": self.public_key(),
                                            "public_key": public, "secret_key": secret, "signing_key": signing,
                                            "compression": True})

    def revoke(self, name: str) -> AllowedClient:
        check_name(name)
        path = self.clients_dir / f"{name}.json"
        try:
            client = AllowedClient.from_dict(read_private_json(path))
        except FileNotFoundError:
            raise RemoteError(f"no allowed client named {name!r}") from None
        write_private_json(self.revoked_dir / f"{name}.{int(time.time())}.json",
                           {**asdict(client), "signing_key": "", "revoked": time.time()})
        path.unlink()
        self._stamp = -1
        return client

    def _folder_stamp(self) -> Any:
        try:
            return self.clients_dir.stat().st_mtime_ns, tuple(sorted(os.listdir(self.clients_dir)))
        except FileNotFoundError:
            return None

    def lookup(self, public_key: str) -> Optional[AllowedClient]:
        """The allowed client with this public key (Z85), or None.  The allow-list is reread when the folder
        changed: checked at once for a key not in it (a client allowed a moment ago connects), at most every
        ``refresh`` seconds for one in it (a revoke is seen within that)."""
        with self._lock:
            now = time.monotonic()
            known = public_key in self._by_key
            if self._stamp == -1 or not known or now - self._checked >= self.refresh:
                self._checked = now
                stamp = self._folder_stamp()
                if stamp != self._stamp:
                    self._by_key = {c.public_key: c for c in self.clients()}
                    self._stamp = stamp
            return self._by_key.get(public_key)


def read_pairing_argument(value: str) -> str:
    """A pairing line given on the command line, or the path of a file holding it."""
    value = value.strip()
    if value.startswith((INVITE_PREFIX, CLIENT_PREFIX)):
        return value
    p = Path(value).expanduser()
    if p.is_file():
        return p.read_text(encoding="utf-8").strip()
    raise RemoteError(f"{value!r} is neither a pairing line ({CLIENT_PREFIX}...) nor a file holding one")


def z85_of(raw_key: bytes) -> str:
    """The Z85 text of a 32-byte CURVE key as ZAP hands it over."""
    return z85.encode(raw_key).decode("ascii")


def describe(profile: RemoteProfile) -> dict[str, Any]:
    """What ``impasto remote list`` shows (no secrets)."""
    return {"name": profile.name, "endpoint": profile.endpoint, "server_key": profile.server_key,
            "public_key": profile.public_key, "compression": profile.compression}
