"""The daemon's ZAP handler: who may open a connection at all.

Every connection must present ZeroMQ PLAIN credentials derived from the connection file's key
(``impasto_protocol.wire.zap_password``).  libzmq asks this handler during the handshake, before the peer can send
a single message, so a peer without the key -- another local user on TCP -- never gets anything buffered in the
daemon (libzmq holds a whole multipart message before the application sees it, so checking signatures alone
cannot bound that).  Until the handshake is done a peer can make libzmq hold at most one frame of
``ZMQ_MAXMSGSIZE`` bytes per connection.

A daemon started with ``serve --listen`` is a network service instead: its socket is a CURVE server and this
handler admits a CURVE client key only when it is on the allow-list (``impasto_protocol.remote.ServerKeys``,
reread when it changes) or is the daemon's own per-run admin key (the one in its connection file, for the server's
owner); the admitted key becomes the connection's ZAP user id, so the daemon knows on every message whose it is
and checks it again there (a revoked key's live connection is dropped too).  An unknown key gets no answer at all.

The handler runs on its own thread with its own REP socket on ``inproc://zeromq.zap.01`` (as RFC 27 says), so
handshakes are answered even while the main loop verifies a large message.
"""
from __future__ import annotations

import hmac
import logging
import threading
from collections import Counter

import zmq

from impasto_protocol.remote import ADMIN_USER, ServerKeys, z85_of
from impasto_protocol.wire import ZAP_USER, quote, zap_password

log = logging.getLogger(__name__)
ZAP_ENDPOINT = "inproc://zeromq.zap.01"
DOMAIN = b"impasto"


class ZapHandler(threading.Thread):
    """Admits PLAIN connections whose user is ``impasto`` and whose password is derived from ``key`` -- or, with
    ``server_keys``, CURVE connections whose client key is allowed there or is ``admin_key`` (Z85)."""

    def __init__(self, ctx: zmq.Context, key: str, server_keys: ServerKeys | None = None, admin_key: str = ""):
        super().__init__(name="impasto-zap", daemon=True)
        self._password = zap_password(key)
        self.server_keys = server_keys
        self._admin_key = admin_key
        self._sock = ctx.socket(zmq.REP)
        self._sock.linger = 0
        self._sock.bind(ZAP_ENDPOINT)           # bound before any socket that uses it: no handshake slips through
        self._stop_event = threading.Event()
        self.denied: Counter = Counter()
        self.admitted = 0

    def verdict(self, frames: list[bytes]) -> tuple[bytes, bytes, bytes]:
        """(status code, status text, user id) for one ZAP request (RFC 27 frames)."""
        if len(frames) < 6 or frames[0] != b"1.0":
            return b"400", b"malformed ZAP request", b""
        mechanism, creds = frames[5], frames[6:]
        if frames[2] != DOMAIN:
            return b"400", b"unknown domain", b""
        if self.server_keys is not None:
            if mechanism != b"CURVE" or len(creds) != 1 or len(creds[0]) != 32:
                return b"400", b"CURVE key required", b""
            key = z85_of(creds[0])
            if self._admin_key and hmac.compare_digest(key, self._admin_key):
                return b"200", b"OK", ADMIN_USER.encode()
            if self.server_keys.lookup(key) is None:
                return b"400", b"unknown key", b""
            return b"200", b"OK", key.encode("ascii")
        if mechanism != b"PLAIN" or len(creds) != 2:
            return b"400", b"credentials required", b""
        user, password = creds
        if not (hmac.compare_digest(user, ZAP_USER) and hmac.compare_digest(password, self._password)):
            return b"400", b"bad credentials", b""
        return b"200", b"OK", b""

    def run(self) -> None:
        sock = self._sock
        try:
            while not self._stop_event.is_set():
                if not sock.poll(100):
                    continue
                frames = sock.recv_multipart()
                try:
                    code, text, user = self.verdict(frames)
                except Exception:  # noqa: BLE001 - an unreadable allow-list refuses; it never stops the handler
                    log.exception("event=zap_error")
                    code, text, user = b"500", b"internal error", b""
                if code == b"200":
                    self.admitted += 1
                else:
                    reason = text.decode()
                    self.denied[reason] += 1
                    n = self.denied[reason]
                    if n <= 5 or n % 1000 == 0:
                        peer = frames[3] if len(frames) > 3 else b""
                        log.warning("event=connection_refused reason=%s count=%d peer=%s", reason.replace(" ", "_"),
                                    n, quote(peer.decode("ascii", "replace"), 60))
                request_id = frames[1] if len(frames) > 1 else b""
                sock.send_multipart([b"1.0", request_id, code, text, user, b""])
        except zmq.ZMQError as e:      # context terminated
            log.debug("zap handler stopped: %s", e)
        finally:
            sock.close(0)

    def stop(self) -> None:
        self._stop_event.set()
