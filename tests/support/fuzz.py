"""A protocol fuzzer for the daemon (used by tests/test_daemon_fuzz.py and bench/bench_daemon_fuzz.py).

Each generated message has an expectation: no answer at all (garbage, unsigned, badly signed, tampered after
signing) or an error reply with a specific code (signed but bad).  ``run_fuzz`` sends them over one DEALER socket,
matches replies to requests by parent msg_id, and reports every deviation.

The *re-signed mutation* cases (``resigned``) take a valid request of every kind a client sends, change its content
structurally -- a value replaced by another JSON type, a huge or deeply nested one, a field added or dropped, a
boolean for a number -- and sign the result with the real key, so it passes the envelope and reaches the
handlers.  Each must get exactly one answer of any kind, and never an ``internal`` error (a handler that crashed).
"""
from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import zmq

from impasto_protocol.connection import ConnectionInfo
from impasto_protocol.wire import DELIMITER, PROTOCOL_VERSION, Signer, make_header, new_id, serialize

from impasto.daemon.config import DaemonConfig

NO_REPLY = frozenset()
ANY_ERROR = frozenset({"*"})
ANY_ANSWER = frozenset({"*", "**"})     # an error of any code but internal, or any non-error reply


@dataclass
class Case:
    category: str
    frames: list
    expect: frozenset            # NO_REPLY, ANY_ERROR, or the acceptable error codes
    msg_id: Optional[str] = None  # the header msg_id the reply's parent carries ("" = parent {} expected)
    expect_type: str = "error"   # for the first half of a replay pair: "pong"


@dataclass
class FuzzReport:
    sent: Counter = field(default_factory=Counter)
    answered: Counter = field(default_factory=Counter)
    codes: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failures


def _img(w: int, h: int, c: int = 3, dtype: str = "u8", buffer: int = 0, **extra: Any) -> dict:
    d = {"width": w, "height": h, "channels": c, "dtype": dtype, "buffer": buffer}
    d.update(extra)
    return d


class Fuzzer:
    def __init__(self, key: str, seed: int = 0, session: Optional[str] = None):
        self.signer = Signer(key)
        self.rng = random.Random(seed)
        self.session = session or new_id()

    def _rand_bytes(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    def _signed(self, category: str, msg_type: str, content: Any, buffers: list = (), expect: frozenset = ANY_ERROR,
                header_patch: Optional[dict] = None, job_id: Optional[str] = None) -> Case:
        h = make_header(msg_type, self.session, job_id if job_id is not None else
                        (new_id() if msg_type in ("stylize", "train") else None))
        if header_patch:
            h.update(header_patch)
        hb = json.dumps(h).encode()
        cb = json.dumps(content).encode()
        pb = b"{}"
        sig = self.signer.signature(hb, pb, cb, list(buffers))
        return Case(category, [DELIMITER, sig, hb, pb, cb, *buffers], expect, h.get("msg_id"))

    def _sign_raw(self, category: str, hb: bytes, cb: bytes, buffers: list, expect: frozenset,
                  msg_id: Optional[str]) -> Case:
        sig = self.signer.signature(hb, b"{}", cb, buffers)
        return Case(category, [DELIMITER, sig, hb, b"{}", cb, *buffers], expect, msg_id)

    def _valid_stylize(self) -> tuple[dict, list]:
        w, h = self.rng.randint(8, 40), self.rng.randint(8, 40)
        return ({"options": {"engine": "identity", "size": 32}, "content": _img(w, h)}, [self._rand_bytes(w * h * 3)])

    def _mutate(self, b: bytes) -> bytes:
        b = bytearray(b)
        for _ in range(self.rng.randint(1, 4)):
            op = self.rng.randrange(3)
            if op == 0 and b:
                b[self.rng.randrange(len(b))] = self.rng.randrange(256)
            elif op == 1 and b:
                i = self.rng.randrange(len(b))
                del b[i:i + self.rng.randint(1, 8)]
            else:
                b.insert(self.rng.randrange(len(b) + 1), self.rng.choice(b'{}[]",:\\\x00\xff'))
        return bytes(b)

    # -- generators --------------------------------------------------------------------------------------------
    def garbage(self) -> Case:
        frames = [self._rand_bytes(self.rng.randint(0, 200)) for _ in range(self.rng.randint(1, 7))]
        if self.rng.random() < 0.3:
            frames.insert(self.rng.randrange(len(frames) + 1), DELIMITER)
        return Case("garbage", frames, NO_REPLY)

    def unsigned(self) -> Case:
        c = self._signed("unsigned", "hello", {})
        c.frames[1] = b""
        c.expect = NO_REPLY
        return c

    def bad_signature(self) -> Case:
        content, bufs = self._valid_stylize()
        c = self._signed("bad_signature", "stylize", content, bufs)
        sig = bytearray(c.frames[1])
        i = self.rng.randrange(len(sig))
        sig[i] = ord("0") if sig[i] != ord("0") else ord("1")
        c.frames[1] = bytes(sig)
        c.expect = NO_REPLY
        return c

    def tampered(self) -> Case:
        content, bufs = self._valid_stylize()
        c = self._signed("tampered", "stylize", content, bufs)
        which = self.rng.choice([2, 4, 5])       # header, content or the pixel buffer, after signing
        f = bytearray(c.frames[which])
        f[self.rng.randrange(len(f))] ^= 1 << self.rng.randrange(8)
        c.frames[which] = bytes(f)
        c.expect = NO_REPLY
        return c

    def truncated(self) -> Case:
        content, bufs = self._valid_stylize()
        c = self._signed("truncated", "stylize", content, bufs)
        cut = self.rng.randint(1, len(c.frames) - 1)
        c.frames = c.frames[:cut] if self.rng.random() < 0.5 else c.frames[:-1]
        c.expect = NO_REPLY                      # the signature no longer matches (or too few frames)
        return c

    def missing_buffer(self) -> Case:
        content, _ = self._valid_stylize()
        return self._signed("missing_buffer", "stylize", content, [], frozenset({"bad_image"}))

    def extra_frames(self) -> Case:
        content, bufs = self._valid_stylize()
        bufs = bufs + [self._rand_bytes(self.rng.randint(0, 64)) for _ in range(self.rng.randint(1, 3))]
        # more buffer frames than any request has are dropped before hashing (unanswered: not known to be signed)
        expect = NO_REPLY if len(bufs) > DaemonConfig.max_buffers else frozenset({"extra_buffers"})
        return self._signed("extra_frames", "stylize", content, bufs, expect)

    def mutated_header(self) -> Case:
        h = make_header("hello", self.session)
        while True:     # keep only mutations that break the JSON (a still-valid header could name anything)
            hb = self._mutate(json.dumps(h).encode())
            try:
                json.loads(hb)
            except ValueError:
                break
        return self._sign_raw("mutated_header", hb, b"{}", [], frozenset({"bad_header"}), "")

    def bad_header_fields(self) -> Case:
        h: dict[str, Any] = make_header("hello", self.session)
        choice = self.rng.randrange(5)
        if choice == 0:
            del h[self.rng.choice(list(h))]
        elif choice == 1:
            h["extra"] = 1
        elif choice == 2:
            h["msg_type"] = self.rng.choice([1, None, [], "", "x" * 500])
        elif choice == 3:
            h["date"] = self.rng.choice(["now", None, True, [], 10**400, -10**400])
        else:
            h = self.rng.choice([[], "hello", 5, None])  # type: ignore[assignment]
        return self._sign_raw("bad_header_fields", json.dumps(h).encode(), b"{}", [], frozenset({"bad_header"}), "")

    def mutated_content(self) -> Case:
        content, bufs = self._valid_stylize()
        h = make_header("stylize", self.session, new_id())
        cb = self._mutate(json.dumps(content).encode())
        try:
            json.loads(cb)
            expect = ANY_ERROR                    # still JSON: some specific refusal (or, rarely, a valid job)
        except ValueError:
            expect = frozenset({"bad_content"})
        case = self._sign_raw("mutated_content", json.dumps(h).encode(), cb, bufs, expect, h["msg_id"])
        if expect is ANY_ERROR:
            case.expect = frozenset({"*", "accepted"})
        return case

    def non_object_content(self) -> Case:
        h = make_header("hello", self.session)
        cb = json.dumps(self.rng.choice([[], 1, "x", None, [1, 2]])).encode()
        return self._sign_raw("non_object_content", json.dumps(h).encode(), cb, [], frozenset({"bad_content"}),
                              h["msg_id"])

    def unknown_type(self) -> Case:
        t = self.rng.choice(["exec", "eval", "Stylize", "stylise", "", "x" * 50, "__init__", "on_hello"])
        if not t:
            t = "nothing"
        return self._signed("unknown_type", t, {}, [], frozenset({"unknown_type"}))

    def unknown_field(self) -> Case:
        t = self.rng.choice(["hello", "status", "stylize", "cancel", "ping"])
        content: dict[str, Any] = {}
        bufs: list = []
        if t == "stylize":
            content, bufs = self._valid_stylize()
        content["surprise" + str(self.rng.randrange(100))] = 1
        return self._signed("unknown_field", t, content, bufs, frozenset({"unknown_field"}),
                            job_id=new_id() if t == "cancel" else None)

    def bad_options(self) -> Case:
        content, bufs = self._valid_stylize()
        bad = self.rng.choice([{"size": -5}, {"size": "big"}, {"strength": 2.0}, {"bogus": 1},
                               {"engine": "nope"}, {"steps": 0}, {"seed": -1}, {"init": "random"},
                               {"keypoints": "all"}, {"keypoints": [{"content": [1, "a"], "style": [0, 0]}]},
                               {"preserve_color": "yes"}, {"tile_size": 3}, {"max_side": 10**9},
                               {"optimizer": "magic"}])
        content["options"] = {**content["options"], **bad}
        if self.rng.random() < 0.2:
            content["options"] = self.rng.choice([[], "identity", 3, None])
            return self._signed("bad_options", "stylize", content, bufs, frozenset({"bad_options", "bad_request"}))
        return self._signed("bad_options", "stylize", content, bufs, frozenset({"bad_options"}))

    def wrong_size(self) -> Case:
        content, bufs = self._valid_stylize()
        b = bufs[0]
        bufs[0] = b[:-self.rng.randint(1, len(b) - 1)] if self.rng.random() < 0.5 else \
            b + self._rand_bytes(self.rng.randint(1, 100))
        return self._signed("wrong_size", "stylize", content, bufs, frozenset({"bad_image"}))

    def huge_dims(self) -> Case:
        content, bufs = self._valid_stylize()
        w = self.rng.choice([100_000, 1 << 20, 2**31, 10**12, 65536])
        h = self.rng.choice([100_000, 1 << 20, 2**31, 10**12, 65536])
        content["content"].update(width=w, height=h)
        return self._signed("huge_dims", "stylize", content, bufs, frozenset({"too_large"}))

    def huge_output(self) -> Case:
        content, bufs = self._valid_stylize()
        content["options"]["max_side"] = 65536
        return self._signed("huge_output", "stylize", content, bufs, frozenset({"too_large"}))

    def bad_description(self) -> Case:
        content, bufs = self._valid_stylize()
        d = content["content"]
        patch = self.rng.choice([{"dtype": "f64"}, {"channels": 7}, {"channels": 0}, {"width": -3},
                                 {"width": 2.5}, {"height": "10"}, {"buffer": 5}, {"buffer": -1},
                                 {"colorspace": "cmyk"}, {"stride": 1}, {"bgr": "no"}, {"extra": 1},
                                 {"stride": 10**9}])
        d.update(patch)
        if self.rng.random() < 0.2:
            content["content"] = self.rng.choice([None, [], "img", 1])
            return self._signed("bad_description", "stylize", content, bufs,
                                frozenset({"bad_image", "bad_request", "extra_buffers"}))
        return self._signed("bad_description", "stylize", content, bufs, frozenset({"bad_image"}))

    def stale(self) -> Case:
        return self._signed("stale", "hello", {}, [], frozenset({"stale"}),
                            header_patch={"date": time.time() + self.rng.choice([-1e6, -4000, 4000, 1e9])})

    def version(self) -> Case:
        return self._signed("version", "hello", {}, [], frozenset({"version"}),
                            header_patch={"v": self.rng.choice(["9.0", "0.1", "2", "x"])})

    def cancel_unknown(self) -> Case:
        return self._signed("cancel_unknown", "cancel", {}, [], frozenset({"unknown_job"}), job_id=new_id())

    def chunk_unknown(self) -> Case:
        return self._signed("chunk_unknown", "chunk", {"image": "content", "offset": 0}, [self._rand_bytes(64)],
                            frozenset({"unknown_job"}), job_id=new_id())

    def replay_pair(self) -> list[Case]:
        first = self._signed("replay", "ping", {}, [], frozenset({"pong"}))
        first.expect_type = "pong"
        second = Case("replay", list(first.frames), frozenset({"replay"}), first.msg_id)
        return [first, second]

    # -- re-signed structural mutations of valid requests ------------------------------------------------------
    def _weird_value(self) -> Any:
        r = self.rng
        return r.choice([
            None, True, False, 0, -1, 1, 2**31, 2**63, -2**63, 10**30, 1e308, -0.0, 0.5, 3.0, "", "x",
            "\n\r\x00forged=1", "a" * r.choice([5000, 100_000]), {}, [], [[]], {"a": {}}, [1, "a", None],
            {"dtype": {}}, [True] * 3, {"\n": 1}, "content", "chunks", "identity", "mt", "starry_night",
            self._nested(r.choice([10, 40, 200])), list(range(r.choice([3, 300, 3000]))),
            [{"content": [1, 2], "style": [3, 4]}] * r.choice([2, 300, 3000])])

    def _nested(self, depth: int) -> Any:
        v: Any = 1
        for i in range(depth):
            v = [v] if i % 2 else {"k": v}
        return v

    def _base_request(self) -> tuple[str, dict, list, Optional[str]]:
        """(msg_type, content, buffers, job_id) of a valid request."""
        kind = self.rng.choice(["stylize", "stylize", "stylize_dst", "train", "chunk", "cancel", "list_styles",
                                "hello", "status", "ping"])
        if kind in ("stylize", "stylize_dst"):
            content, bufs = self._valid_stylize()
            if kind == "stylize_dst":
                content["options"].update(keypoint_mode="markers", variant="gatys", keypoints=[
                    {"content": [self.rng.uniform(0, 30), self.rng.uniform(0, 30)],
                     "style": [self.rng.uniform(0, 30), self.rng.uniform(0, 30)]} for _ in range(4)])
            if self.rng.random() < 0.3:
                w, h = content["content"]["width"], content["content"]["height"]
                content["mask"] = _img(w, h, 1, buffer=1)
                bufs.append(self._rand_bytes(w * h))
            return "stylize", content, bufs, new_id()
        if kind == "train":
            return "train", {"style": _img(16, 16), "name": "fuzzed", "steps": 2,
                             "params": {"net": "tiny", "crop": 64, "seed": 1}}, [self._rand_bytes(16 * 16 * 3)], new_id()
        if kind == "chunk":
            return "chunk", {"image": "content", "offset": 0}, [self._rand_bytes(64)], new_id()
        if kind == "cancel":
            return "cancel", {}, [], new_id()
        if kind == "list_styles":
            return "list_styles", {"thumbnails": False}, [], None
        return kind, {}, [], None

    def _mutate_json(self, obj: Any) -> Any:
        """One structural change somewhere in ``obj`` (a dict/list tree); returns the new tree."""
        r = self.rng
        paths: list[list] = [[]]
        stack: list[tuple[Any, list]] = [(obj, [])]
        while stack:
            v, path = stack.pop()
            items = v.items() if isinstance(v, dict) else enumerate(v) if isinstance(v, list) else ()
            for k, x in items:
                paths.append(path + [k])
                if len(path) < 4:
                    stack.append((x, path + [k]))
        path = r.choice(paths)
        parent, key = None, None
        target = obj
        for k in path:
            parent, key, target = target, k, target[k]
        op = r.randrange(4)
        if op == 0 or parent is None and not isinstance(target, dict):
            new = self._weird_value()
            if parent is None:
                return {"options": new} if r.random() < 0.5 else obj
            parent[key] = new
        elif op == 1 and isinstance(target, dict):
            target[r.choice(["surprise", "\nlog=forged", "x" * 200, "dtype", "buffer", "engine"])] = self._weird_value()
        elif op == 2 and parent is not None:
            if isinstance(parent, dict):
                del parent[key]
            else:
                parent.pop(key)
        elif parent is not None:
            v = parent[key]
            parent[key] = (not v) if isinstance(v, bool) else (bool(v % 2) if isinstance(v, int) else [v])
        return obj

    def resigned(self) -> Case:
        while True:     # a frame over ZMQ_MAXMSGSIZE would only disconnect the fuzzer (and lose what is in flight)
            msg_type, content, bufs, job_id = self._base_request()
            for _ in range(self.rng.randint(1, 3)):
                content = self._mutate_json(content)
            if len(json.dumps(content)) < 1 << 20:
                break
        if self.rng.random() < 0.15:             # a buffer frame dropped or added
            bufs = bufs[:-1] if bufs and self.rng.random() < 0.5 else bufs + [self._rand_bytes(self.rng.randint(0, 99))]
        h = make_header(msg_type, self.session, job_id)
        cb = json.dumps(content).encode()
        case = self._sign_raw("resigned", json.dumps(h).encode(), cb, list(bufs), ANY_ANSWER, h["msg_id"])
        return case

    def generate(self, n: int, resigned: float = 0.0) -> list[Case]:
        """``n`` cases; a fraction ``resigned`` of them re-signed mutations, the rest the fixed categories."""
        gens: list[Callable[[], Any]] = [
            self.garbage, self.unsigned, self.bad_signature, self.tampered, self.truncated, self.missing_buffer,
            self.extra_frames, self.mutated_header, self.bad_header_fields, self.mutated_content,
            self.non_object_content, self.unknown_type, self.unknown_field, self.bad_options, self.wrong_size,
            self.huge_dims, self.huge_output, self.bad_description, self.stale, self.version, self.cancel_unknown,
            self.chunk_unknown, self.replay_pair]
        out: list[Case] = []
        while len(out) < n:
            r = self.resigned() if self.rng.random() < resigned else self.rng.choice(gens)()
            out.extend(r if isinstance(r, list) else [r])
        return out


def run_fuzz(info: ConnectionInfo, n: int = 2000, seed: int = 0, batch: int = 50, resigned: float = 0.0,
             quiet_for: float = 1.0, hang_after: float = 120.0, ctx: Optional[zmq.Context] = None) -> FuzzReport:
    """Send ``n`` fuzz messages (a fraction ``resigned`` of them re-signed mutations) over a connection the daemon
    admits; check that exactly the signed-bad ones are answered, each with its code, and that nothing is answered
    ``internal``."""
    from impasto_protocol.client import open_socket
    from impasto_protocol.wire import ReplayGuard, WireError, deserialize
    ctx = ctx or zmq.Context.instance()
    fz = Fuzzer(info.key, seed)
    cases = fz.generate(n, resigned=resigned)
    sock = open_socket(ctx, info)
    guard = ReplayGuard()
    report = FuzzReport()
    by_id: dict[str, list[Case]] = {}
    no_parent_expected = 0
    replies: list = []
    t0 = time.perf_counter()

    def drain(wait_ms: int) -> int:
        got = 0
        while sock.poll(wait_ms if got == 0 else 0):
            frames = sock.recv_multipart()
            try:
                replies.append(deserialize(fz.signer, frames, guard))
            except WireError as e:
                report.failures.append(f"daemon sent an invalid message: {e.code} {e}")
            got += 1
        return got

    try:
        for i, case in enumerate(cases):
            report.sent[case.category] += 1
            if case.expect:
                if case.msg_id:
                    by_id.setdefault(case.msg_id, []).append(case)
                elif case.msg_id == "":
                    no_parent_expected += 1
            sock.send_multipart(case.frames)
            if i % batch == batch - 1:
                drain(0)
        # the daemon handles one connection's messages in order: once it answers this ping it has handled (and
        # answered) every fuzz message before it.  Not answered within hang_after seconds: the daemon hangs.
        sentinel = make_header("ping", fz.session)
        sock.send_multipart(serialize(fz.signer, sentinel, {}))
        deadline = time.monotonic() + hang_after
        scanned = 0

        def sentinel_seen() -> bool:
            nonlocal scanned
            found = any(m.parent.get("msg_id") == sentinel["msg_id"] for m in replies[scanned:])
            scanned = len(replies)
            return found
        while not sentinel_seen():
            if time.monotonic() > deadline:
                report.failures.append(f"the daemon did not answer a ping within {hang_after:.0f} s of the last "
                                       f"fuzz message (hang)")
                break
            drain(100)
        replies[:] = [m for m in replies if m.parent.get("msg_id") != sentinel["msg_id"]]
        last = time.monotonic()
        while time.monotonic() - last < quiet_for:       # stragglers: replies from workers (accepted jobs)
            if drain(100):
                last = time.monotonic()
    finally:
        sock.close(0)
    report.seconds = time.perf_counter() - t0

    no_parent = 0
    job_pids: set = set()      # mutated content that happened to be a valid job: its progress/result are fine
    for msg in replies:
        pid = msg.parent.get("msg_id")
        code = msg.content.get("code") if msg.msg_type == "error" else msg.msg_type
        report.codes[code] += 1
        if code == "internal":
            report.failures.append(f"internal error (a handler crashed): {msg.content.get('message', '')}")
        if pid in job_pids:
            continue
        if not pid:
            if msg.msg_type == "error" and code == "bad_header":
                no_parent += 1
            else:
                report.failures.append(f"unexpected reply without parent: {msg.msg_type} {msg.content}")
            continue
        pending = by_id.get(pid)
        if not pending:
            report.failures.append(f"reply {msg.msg_type}/{code} to a message that must not be answered "
                                   f"(or answered twice): {pid}")
            continue
        case = pending.pop(0)
        report.answered[case.category] += 1
        if code == "accepted" and ("accepted" in case.expect or "**" in case.expect):
            job_pids.add(pid)
        ok = (("*" in case.expect and msg.msg_type == "error") or code in case.expect
              or ("**" in case.expect and msg.msg_type != "error"))
        if not ok:
            report.failures.append(f"{case.category}: expected {sorted(case.expect)}, got {msg.msg_type}/{code}: "
                                   f"{msg.content.get('message', '')}")
    for pid, pending in by_id.items():
        for case in pending:
            report.failures.append(f"{case.category}: no reply to {pid} (expected {sorted(case.expect)})")
    if no_parent != no_parent_expected:
        report.failures.append(f"bad_header replies: expected {no_parent_expected}, got {no_parent}")
    report.answered["bad_header(no parent)"] = no_parent
    return report
