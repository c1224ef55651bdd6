"""The signed multipart envelope (see PROTOCOL.md, "Envelope").

    [identity ...]            routing frames (added/removed by ZeroMQ ROUTER sockets)
    b"<IMPASTO|MSG>"          delimiter
    signature                 hex HMAC-SHA256 (below)
    header                    JSON: v, msg_id, msg_type, session, job_id, date
    parent                    JSON: the header of the request this replies to, or {}
    content                   JSON object
    buffer ...                raw binary frames (pixels), described in content

The signature covers header, parent, content *and every buffer frame*: the MAC input is, for each of those frames
in order, its length as 8 bytes big-endian followed by its digest-or-bytes: the three JSON frames go in as they
are, each buffer goes in as SHA-256 over the concatenated SHA-256 digests of its consecutive 4 MiB chunks (a
two-level hash, so large buffers are hashed on several cores at once; hashlib releases the GIL).  Messages with
a missing or wrong signature are dropped before any JSON is parsed.  Replays are refused by remembering message
ids inside a time window and refusing dates outside it.

Before any of that the receiver bounds what it will hash: at most ``max_buffers`` buffer frames and
``max_total`` bytes in all, else the message is dropped unhashed.  Content JSON is bounded in depth and string length
(``JsonLimits``) before any handler sees it.

Buffer frames may travel compressed (lossless, negotiated; PROTOCOL.md "Compression"): ``serialize(...,
compress=Compression("zlib"))`` deflates the buffers where that pays and declares them in the reserved content key
``_compressed`` (``{"codec": "zlib", "buffers": [[index, raw_size], ...]}``); the signature covers the frames as sent.
``deserialize`` verifies first, then inflates each declared frame into at most its declared size (itself bounded
by the receiver's ``max_raw``), and removes the reserved keys from the content, so no handler ever sees them.  A
request may also carry ``_reply_compression`` (``{"codec", "level"}``): how its replies' buffers should travel
(``Message.reply_compression``).

Stdlib + pyzmq-free: frames are any bytes-like objects (``zmq.Frame.buffer`` memoryviews on the receive side).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import threading
import time
import uuid
import zlib
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

from .quoting import quote

DELIMITER = b"<IMPASTO|MSG>"
PROTOCOL_VERSION = "1.1"            # "major.minor": peers must agree on the major number (1.1: compression)
SIGNATURE_SCHEME = "hmac-sha256"
CHUNK = 4 << 20                     # bytes per leaf of the buffer hash
PARALLEL_MIN = 16 << 20             # buffers at least this large are hashed on a thread pool
MAX_HEADER_BYTES = 16 << 10
MAX_CONTENT_BYTES = 4 << 20
HEADER_FIELDS = ("v", "msg_id", "msg_type", "session", "job_id", "date")
MAX_SKEW = 5.0                      # seconds a message may be dated ahead of the receiver's clock
ZAP_USER = b"impasto"               # ZeroMQ PLAIN user name; the password is derived from the key (zap_password)
# -- compression of buffer frames (PROTOCOL.md, "Compression") ----------------------------------------------------
CODECS = ("zlib",)                  # what this side can inflate (stdlib only; zstd would need a dependency)
COMPRESSED_KEY = "_compressed"      # reserved content key: which buffer frames are compressed, and their raw sizes
REPLY_COMPRESSION_KEY = "_reply_compression"    # reserved content key: how the replies' buffers should travel
COMPRESS_MIN = 64 << 10             # smaller buffers are always sent raw (not worth a round of inflate)
COMPRESS_GAIN = 1 / 16              # a compressed frame is sent only when it saves at least this fraction
PROBE_BYTES = 3 * (16 << 10)        # sampled first (3 slices spread over the buffer): incompressible data is
                                    # recognised in about 1 ms instead of deflating 4 MiB of noise for nothing
MAX_DEFLATE_RATIO = 1032            # deflate never expands more than ~1032:1, so a declared raw size above
                                    # 1032 x frame + 64 KiB is a lie, refused before anything is allocated
INFLATE_STEP = 256 << 10            # bytes fed to / drained from inflate per step (bounds what is held beyond
                                    # the declared size to a few steps)
DEFAULT_MAX_RAW = 64 << 20          # the largest raw size a receiver inflates a frame to, unless it says otherwise

POOL_THREADS = max(2, min(8, os.cpu_count() or 2))   # threads hashing and compressing large buffers
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class WireError(Exception):
    """A message could not be accepted.  ``code`` is the protocol error code; ``signed`` tells whether the
    signature was valid (only then may the sender be answered); ``header`` is the parsed header when known."""

    def __init__(self, code: str, message: str, *, signed: bool = False, header: dict | None = None,
                 identities: Sequence[Any] = ()):
        super().__init__(message)
        self.code = code
        self.signed = signed
        self.header = header
        self.identities = list(identities)


@dataclass
class Message:
    header: dict
    content: dict
    buffers: list = field(default_factory=list)
    parent: dict = field(default_factory=dict)
    identities: list = field(default_factory=list)
    reply_compression: Optional["Compression"] = None   # the request's _reply_compression, validated

    @property
    def msg_type(self) -> str:
        return self.header["msg_type"]

    @property
    def msg_id(self) -> str:
        return self.header["msg_id"]

    @property
    def job_id(self) -> str | None:
        return self.header.get("job_id")

    @property
    def session(self) -> str:
        return self.header["session"]


def zap_password(key: bytes | str) -> bytes:
    """The ZeroMQ PLAIN password a client presents at the handshake: HMAC-SHA256(key, "impasto-zap"), hex.

    The daemon's ZAP handler admits only connections that present it, so a peer without the key never gets a
    message buffered (libzmq would otherwise hold a whole multipart message before the signature can be checked).
    Derived rather than the key itself, so a handshake that is observed does not give away the signing key."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return hmac.new(key, b"impasto-zap", hashlib.sha256).hexdigest().encode("ascii")


@dataclass(frozen=True)
class JsonLimits:
    """Bounds on a parsed JSON frame: nesting depth, characters per string (keys too), items per container.

    Checked once, iteratively, before any handler walks the value, so no message can make the daemon recurse
    deeply or carry a multi-megabyte name into a reply or a log line."""

    max_depth: int = 16
    max_string: int = 4096
    max_items: int = 100_000

    def check(self, obj: Any, what: str = "content") -> None:
        stack: list[tuple[Any, int, str]] = [(obj, 1, what)]
        while stack:
            v, depth, path = stack.pop()
            if isinstance(v, str):
                if len(v) > self.max_string:
                    raise ValueError(f"{path}: a string of {len(v)} characters (at most {self.max_string})")
            elif isinstance(v, (dict, list)):
                if depth > self.max_depth:
                    raise ValueError(f"{path}: nested deeper than {self.max_depth} levels")
                if len(v) > self.max_items:
                    raise ValueError(f"{path}: {len(v)} items (at most {self.max_items})")
                if isinstance(v, dict):
                    for k, x in v.items():
                        if len(k) > 128:
                            raise ValueError(f"{path}: a field name of {len(k)} characters (at most 128)")
                        stack.append((x, depth + 1, f"{path}.{k}" if k.isidentifier() else f"{path}[{quote(k, 40)}]"))
                else:
                    stack.extend((x, depth + 1, f"{path}[{i}]") for i, x in enumerate(v))


def new_id() -> str:
    return uuid.uuid4().hex


def make_header(msg_type: str, session: str, job_id: str | None = None) -> dict:
    return {"v": PROTOCOL_VERSION, "msg_id": new_id(), "msg_type": msg_type, "session": session,
            "job_id": job_id, "date": time.time()}


def thread_pool() -> ThreadPoolExecutor:
    """The module's thread pool (2..8 threads): large buffers are hashed and compressed on it."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=POOL_THREADS, thread_name_prefix="impasto-hash")
        return _pool


def _sha256(mv: memoryview) -> bytes:
    return hashlib.sha256(mv).digest()


def buffer_digest(buf: Any) -> bytes:
    """SHA-256 over the SHA-256 digests of the buffer's 4 MiB chunks (the empty buffer: SHA-256 of nothing)."""
    mv = memoryview(buf)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    n = mv.nbytes
    chunks = [mv[i:i + CHUNK] for i in range(0, n, CHUNK)] or [mv]
    if n >= PARALLEL_MIN:
        leaves = list(thread_pool().map(_sha256, chunks))
    else:
        leaves = [_sha256(c) for c in chunks]
    return hashlib.sha256(b"".join(leaves)).digest()


def _nbytes(f: Any) -> int:
    return len(f) if isinstance(f, (bytes, bytearray)) else memoryview(f).nbytes


class Signer:
    """HMAC-SHA256 signing/verification with the key from the connection file (the key's ASCII bytes)."""

    def __init__(self, key: bytes | str):
        if isinstance(key, str):
            key = key.encode("ascii")
        if not key:
            raise ValueError("an empty signing key would make every message valid")
        self._key = key

    def signature(self, header: bytes, parent: bytes, content: bytes, buffers: Iterable[Any] = ()) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for f in (header, parent, content):
            mac.update(len(f).to_bytes(8, "big"))
            mac.update(f)
        for b in buffers:
            mac.update(_nbytes(b).to_bytes(8, "big"))
            mac.update(buffer_digest(b))
        return mac.hexdigest().encode("ascii")

    def verify(self, sig: bytes, header: bytes, parent: bytes, content: bytes, buffers: Sequence[Any]) -> bool:
        if not sig:
            return False
        return hmac.compare_digest(sig, self.signature(header, parent, content, buffers))


class ReplayGuard:
    """Refuses a message id seen before, dates more than ``window`` seconds old and dates more than ``max_skew``
    seconds ahead of now.

    At most ``max_ids`` ids are remembered; when older ones are forgotten, dates up to the newest forgotten one are
    refused too, so a forgotten id can never be replayed.  That floor never rises above the clock at the time it is
    raised: a flood of messages dated ahead cannot make honest messages (dated now) stale.  (A forgotten id dated
    ahead could then be replayed until the clock passes its date; only the skew allows such dates, and honest
    senders on this machine share the receiver's clock.)"""

    def __init__(self, window: float = 300.0, max_ids: int = 1 << 17, max_skew: float = MAX_SKEW):
        self.window = window
        self.max_ids = max_ids
        self.max_skew = max_skew
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._floor = 0.0

    @property
    def floor(self) -> float:
        """Dates at or below this are refused (ids that old may have been forgotten)."""
        return self._floor

    def check(self, msg_id: str, date: float, now: float | None = None) -> str | None:
        """None when fresh (and remember it), else the error code: "replay" or "stale"."""
        now = time.time() if now is None else now
        if not (now - self.window <= date <= now + self.max_skew) or date <= self._floor:
            return "stale"
        if msg_id in self._seen:
            return "replay"
        self._seen[msg_id] = date
        while self._seen:
            first_id, first_date = next(iter(self._seen.items()))
            if len(self._seen) > self.max_ids or first_date < now - self.window:
                self._seen.popitem(last=False)
                self._floor = max(self._floor, min(first_date, now))
            else:
                break
        return None

# -- compression -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Compression:
    """How buffer frames are compressed: a codec of ``CODECS`` and its level (zlib: 1 fastest .. 9 smallest).

    Level 1 is the default: on photos it is about twice as fast as level 6 for 60 % of its ratio (bench/
    bench_compression.py, docs/remote.md); a sender on a very slow link may prefer a higher level."""

    codec: str = "zlib"
    level: int = 1

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ValueError(f"compression codec {quote(self.codec)} is not supported (only {', '.join(CODECS)})")
        if isinstance(self.level, bool) or not isinstance(self.level, int) or not 1 <= self.level <= 9:
            raise ValueError(f"compression level must be an integer 1..9, not {quote(self.level)}")

    @classmethod
    def parse(cls, spec: "Compression | str | dict | None") -> "Compression | None":
        """None/"" (off), a ``Compression``, ``"zlib"``, ``"zlib:6"`` or ``{"codec": "zlib", "level": 6}``."""
        if spec is None or spec == "" or isinstance(spec, Compression):
            return spec or None
        if isinstance(spec, str):
            codec, _, level = spec.partition(":")
            try:
                return cls(codec, int(level) if level else 1)
            except ValueError as e:
                raise ValueError(f"bad compression {quote(spec)}: {e}") from None
        if isinstance(spec, dict) and set(spec) <= {"codec", "level"} and "codec" in spec:
            return cls(spec["codec"], spec.get("level", 1))
        raise ValueError(f"bad compression {quote(spec)}: expected \"zlib\", \"zlib:LEVEL\" or "
                         f"{{\"codec\", \"level\"}}")

    def to_json(self) -> dict:
        return {"codec": self.codec, "level": self.level}


@dataclass(frozen=True)
class Compressed:
    """A buffer frame already compressed by ``compress_buffer``: ``serialize`` sends ``data`` and declares
    ``raw_size``.  (Made ahead of time, e.g. on the thread pool while the previous chunk is on its way.)"""

    data: bytes
    raw_size: int
    codec: str = "zlib"


def _bytes_view(buf: Any) -> memoryview:
    mv = memoryview(buf)
    return mv if mv.format == "B" and mv.ndim == 1 else mv.cast("B")


def _pays(raw: int, compressed: int) -> bool:
    return compressed <= raw * (1 - COMPRESS_GAIN)


def compress_buffer(buf: Any, compression: "Compression | None") -> Any:
    """``Compressed`` when compressing ``buf`` pays (at least ``COMPRESS_MIN`` bytes, and the result at least
    ``COMPRESS_GAIN`` smaller; a sample is tried first), else ``buf`` itself, untouched.  Releases the GIL while
    deflating, so several buffers compress at once on the thread pool."""
    if compression is None or isinstance(buf, Compressed):
        return buf
    mv = _bytes_view(buf)
    n = mv.nbytes
    if n < COMPRESS_MIN:
        return buf
    if n >= 4 * PROBE_BYTES:
        part = PROBE_BYTES // 3
        sample = b"".join(bytes(mv[o:o + part]) for o in (0, (n - part) // 2, n - part))
        if not _pays(len(sample), len(zlib.compress(sample, compression.level))):
            return buf
    data = zlib.compress(mv, compression.level)
    return Compressed(data, n, compression.codec) if _pays(n, len(data)) else buf


def compress_ahead(buffers: Iterable[Any], compression: "Compression | None", lookahead: int = 0) -> Iterator[Any]:
    """``compress_buffer`` of each buffer, in order, computed up to ``lookahead`` buffers ahead on the thread pool
    (default: as many as it has threads), so a stream of chunks compresses on several cores while it is sent."""
    if compression is None:
        yield from buffers
        return
    pool = thread_pool()
    ahead = lookahead or POOL_THREADS
    pending: deque = deque()
    for b in buffers:
        pending.append(pool.submit(compress_buffer, b, compression))
        if len(pending) > ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _inflate(frame: Any, raw_size: int, index: int) -> bytearray:
    """Exactly ``raw_size`` (>= 1) bytes from one zlib stream, inflated into a buffer of that size.

    The stream is fed and drained ``INFLATE_STEP`` bytes at a time, so beyond the declared size at most a few
    steps are ever held (zlib's own ``max_length`` output briefly holds twice the size, and its
    ``unconsumed_tail`` copies the rest of the input on every call).  Any other stream -- corrupt, shorter, longer,
    truncated, with bytes after its end -- is a ``ValueError``."""
    mv = _bytes_view(frame)
    n = mv.nbytes
    d = zlib.decompressobj()
    out = bytearray(raw_size)
    pos = fed = 0
    tail: Any = b""
    longer = False
    try:
        while not d.eof:
            if not tail:
                if fed >= n:
                    break                           # the input ended inside the stream
                tail = mv[fed:fed + INFLATE_STEP]
                fed += tail.nbytes
            piece = d.decompress(tail, min(raw_size - pos, INFLATE_STEP) or 1)   # 1: is there more?
            tail = d.unconsumed_tail
            if pos + len(piece) > raw_size:
                longer = True
                break
            out[pos:pos + len(piece)] = piece
            pos += len(piece)
    except zlib.error as e:
        raise ValueError(f"buffer {index}: corrupt zlib stream ({e})") from None
    if longer or (pos == raw_size and not d.eof):
        raise ValueError(f"buffer {index}: the zlib stream does not end after its declared {raw_size} bytes")
    if pos < raw_size:
        raise ValueError(f"buffer {index}: the zlib stream holds {pos} bytes, not the declared {raw_size}")
    if d.unused_data or fed < n:
        raise ValueError(f"buffer {index}: {len(d.unused_data) + n - fed} bytes follow the end of the zlib "
                         f"stream")
    return out


def _decompress(content: dict, buffers: list, max_raw: int) -> None:
    """Inflate the buffers ``content["_compressed"]`` declares (in place), after checking the declaration: a known
    codec, distinct indices of existing frames, raw sizes within ``max_raw`` and within what deflate can produce
    from the frame.  ``ValueError`` (bad declaration or stream) or ``OverflowError`` (declared size over the
    limit)."""
    decl = content.pop(COMPRESSED_KEY)
    if not isinstance(decl, dict) or set(decl) != {"codec", "buffers"}:
        raise ValueError(f"{COMPRESSED_KEY} must be {{\"codec\", \"buffers\"}}")
    if decl["codec"] not in CODECS:
        raise ValueError(f"{COMPRESSED_KEY}: codec {quote(decl['codec'])} is not supported "
                         f"(this side inflates {', '.join(CODECS)})")
    entries = decl["buffers"]
    if not isinstance(entries, list) or not entries or len(entries) > len(buffers):
        raise ValueError(f"{COMPRESSED_KEY}.buffers must list 1..{len(buffers)} [index, raw_size] pairs")
    todo: list[tuple[int, int]] = []
    for e in entries:
        if (not isinstance(e, list) or len(e) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in e)
                or not 0 <= e[0] < len(buffers) or e[1] < 1):
            raise ValueError(f"{COMPRESSED_KEY}.buffers: {quote(e, 60)} is not [index of a buffer frame, raw size]")
        idx, raw = e
        if any(idx == i for i, _ in todo):
            raise ValueError(f"{COMPRESSED_KEY}.buffers: buffer {idx} is listed twice")
        if raw > max_raw:
            raise OverflowError(f"buffer {idx} declares {raw} bytes uncompressed (at most {max_raw})")
        frame_n = _nbytes(buffers[idx])
        if raw > MAX_DEFLATE_RATIO * frame_n + (64 << 10):
            raise ValueError(f"buffer {idx}: {frame_n} compressed bytes cannot inflate to the declared {raw}")
        todo.append((idx, raw))
    for idx, raw in todo:
        buffers[idx] = _inflate(buffers[idx], raw, idx)


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def serialize(signer: Signer, header: dict, content: dict, buffers: Sequence[Any] = (), parent: dict | None = None,
              identities: Sequence[Any] = (), compress: "Compression | None" = None) -> list:
    """The frames of one message (identities first when given).  Buffers are passed through uncopied.

    With ``compress`` each buffer is compressed where that pays (``compress_buffer``; several at once on the
    thread pool); ``Compressed`` buffers made ahead of time are sent as they are, with or without ``compress``.
    Compressed frames are declared in the content's reserved ``_compressed`` key (the caller's dict is not
    changed) and the signature covers the frames as sent."""
    bufs = list(buffers)
    if compress is not None:
        big = [i for i, b in enumerate(bufs) if not isinstance(b, Compressed) and _nbytes(b) >= COMPRESS_MIN]
        if len(big) > 1:
            for i, out in zip(big, thread_pool().map(compress_buffer, [bufs[i] for i in big],
                                                     [compress] * len(big))):
                bufs[i] = out
        else:
            bufs = [compress_buffer(b, compress) for b in bufs]
    declared = [[i, b.raw_size] for i, b in enumerate(bufs) if isinstance(b, Compressed)]
    if declared:
        codecs = {b.codec for b in bufs if isinstance(b, Compressed)}
        if len(codecs) != 1:
            raise ValueError(f"one message compresses with one codec, not {sorted(codecs)}")
        content = {**content, COMPRESSED_KEY: {"codec": codecs.pop(), "buffers": declared}}
        bufs = [b.data if isinstance(b, Compressed) else b for b in bufs]
    h, p, c = _dumps(header), _dumps(parent or {}), _dumps(content)
    return [*identities, DELIMITER, signer.signature(h, p, c, bufs), h, p, c, *bufs]


def _frame_bytes(f: Any) -> bytes:
    if isinstance(f, bytes):
        return f
    b = getattr(f, "bytes", None)          # zmq.Frame
    if isinstance(b, bytes):
        return b
    return bytes(f)


def _frame_buffer(f: Any) -> Any:
    buf = getattr(f, "buffer", None)        # zmq.Frame -> memoryview, no copy
    return f if buf is None else buf


def _loads(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ValueError(f"{what} frame is not valid UTF-8 JSON ({e.__class__.__name__})") from None


def _check_header(h: Any) -> dict:
    if not isinstance(h, dict):
        raise ValueError("header must be a JSON object")
    missing = [k for k in HEADER_FIELDS if k not in h]
    if missing:
        raise ValueError(f"header lacks field(s) {', '.join(missing)}")
    unknown = sorted(set(h) - set(HEADER_FIELDS))
    if unknown:
        raise ValueError(f"header has unknown field(s) {', '.join(unknown)}")
    # printable: ids end up in log lines and replies, where a newline or an escape code would forge or garble them
    for k in ("v", "msg_id", "msg_type", "session"):
        if not isinstance(h[k], str) or not h[k] or len(h[k]) > 128 or not h[k].isprintable():
            raise ValueError(f"header field {k!r} must be a non-empty printable string of at most 128 characters")
    if h["job_id"] is not None and (not isinstance(h["job_id"], str) or not h["job_id"] or len(h["job_id"]) > 128
                                    or not h["job_id"].isprintable()):
        raise ValueError("header field 'job_id' must be null or a non-empty printable string of at most 128 "
                         "characters")
    if isinstance(h["date"], bool) or not isinstance(h["date"], (int, float)):
        raise ValueError("header field 'date' must be a number (seconds since the epoch)")
    try:
        h["date"] = float(h["date"])
    except OverflowError:
        raise ValueError("header field 'date' is out of range") from None
    if not math.isfinite(h["date"]):
        raise ValueError("header field 'date' must be finite")
    return h


def deserialize(signer: Signer, frames: Sequence[Any], guard: ReplayGuard | None = None,
                *, max_header: int = MAX_HEADER_BYTES, max_content: int = MAX_CONTENT_BYTES,
                max_buffers: int | None = None, max_total: int | None = None, max_identities: int = 4,
                limits: JsonLimits | None = None, max_raw: int = DEFAULT_MAX_RAW) -> Message:
    """Split, verify, then parse ``frames``.  Raises ``WireError``; ``signed`` is False for anything that must be
    dropped unanswered (no delimiter, missing or too many frames, too many bytes, no or bad signature).

    ``max_buffers``/``max_total`` bound what is hashed at all (a receiver facing untrusted peers sets them);
    ``limits`` bounds the parsed content and parent.  Compressed buffers (``_compressed``) are inflated after
    verification, each to at most ``max_raw`` bytes (else ``too_large``); a bad declaration or stream is
    ``bad_compression``, and so is an unusable ``_reply_compression``."""
    idx = -1
    for i, f in enumerate(frames[:max_identities + 1]):
        if _nbytes(f) == len(DELIMITER) and _frame_bytes(f) == DELIMITER:
            idx = i
            break
    if idx < 0:
        raise WireError("bad_frames", f"no delimiter frame among the first {max_identities + 1}")
    identities = [_frame_bytes(f) for f in frames[:idx]]
    rest = frames[idx + 1:]
    if len(rest) < 4:
        raise WireError("bad_frames", f"{len(rest)} frame(s) after the delimiter, need at least 4",
                        identities=identities)
    if max_buffers is not None and len(rest) - 4 > max_buffers:
        raise WireError("bad_frames", f"{len(rest) - 4} buffer frames (at most {max_buffers})", identities=identities)
    if max_total is not None:
        total = sum(_nbytes(f) for f in rest)
        if total > max_total:
            raise WireError("bad_frames", f"{total} bytes in one message (at most {max_total})", identities=identities)
    sig = _frame_bytes(rest[0])
    if _nbytes(rest[1]) > max_header or _nbytes(rest[2]) > max_header:
        raise WireError("bad_frames", "header/parent frame too large", identities=identities)
    h_raw, p_raw = _frame_bytes(rest[1]), _frame_bytes(rest[2])
    oversized = _nbytes(rest[3]) > max_content      # verified (bounded by max_total), then answered too_large
    c_raw = _frame_buffer(rest[3]) if oversized else _frame_bytes(rest[3])
    buffers = [_frame_buffer(f) for f in rest[4:]]
    if not signer.verify(sig, h_raw, p_raw, c_raw, buffers):
        raise WireError("bad_signature", "missing or invalid signature", identities=identities)
    # From here on the sender holds the key: errors are answered.
    try:
        header = _check_header(_loads(h_raw, "header"))
    except ValueError as e:
        raise WireError("bad_header", str(e), signed=True, identities=identities) from None
    major = header["v"].split(".", 1)[0]
    if major != PROTOCOL_VERSION.split(".", 1)[0]:
        raise WireError("version", f"protocol version {quote(header['v'])} is not supported; this side speaks "
                        f"{PROTOCOL_VERSION}", signed=True, header=header, identities=identities)
    if guard is not None:
        verdict = guard.check(header["msg_id"], float(header["date"]))
        if verdict == "replay":
            raise WireError("replay", f"message {quote(header['msg_id'])} was already received (replay refused)",
                            signed=True, header=header, identities=identities)
        if verdict == "stale":
            raise WireError("stale", "message date is outside the accepted window (clock skew or replay)",
                            signed=True, header=header, identities=identities)
    if oversized:
        raise WireError("too_large", f"the content frame holds {_nbytes(c_raw)} bytes (at most {max_content}); "
                        f"send large images as buffer frames or chunks", signed=True, header=header,
                        identities=identities)
    try:
        parent = _loads(p_raw, "parent")
        if not isinstance(parent, dict):
            raise ValueError("parent must be a JSON object")
        content = _loads(c_raw, "content")
        if not isinstance(content, dict):
            raise ValueError("content must be a JSON object")
        if limits is not None:
            limits.check(parent, "parent")
            limits.check(content, "content")
    except ValueError as e:
        raise WireError("bad_content", str(e), signed=True, header=header, identities=identities) from None
    reply_compression = None
    try:
        if REPLY_COMPRESSION_KEY in content:
            reply_compression = Compression.parse(content.pop(REPLY_COMPRESSION_KEY))
        if COMPRESSED_KEY in content:
            _decompress(content, buffers, max_raw)
    except OverflowError as e:
        raise WireError("too_large", str(e), signed=True, header=header, identities=identities) from None
    except ValueError as e:
        raise WireError("bad_compression", str(e), signed=True, header=header, identities=identities) from None
    return Message(header=header, content=content, buffers=buffers, parent=parent, identities=identities,
                   reply_compression=reply_compression)
