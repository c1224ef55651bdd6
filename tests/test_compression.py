"""Compression of buffer frames (PROTOCOL.md, "Compression"): the wire layer alone (round trips, what is sent raw,
streams that lie or break, bounds), then a real daemon serving a client with compression on and one without."""
from __future__ import annotations

import os
import tracemalloc
import zlib

import numpy as np
import pytest
from skimage import data as skimage_data

from impasto_protocol import StylizeOptions, client as client_mod, wire
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import ErrorEvent, TileEvent
from impasto_protocol.wire import (COMPRESS_MIN, COMPRESSED_KEY, REPLY_COMPRESSION_KEY, Compressed, Compression,
                                   ReplayGuard, Signer, WireError, compress_ahead, compress_buffer, deserialize,
                                   make_header, serialize)
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(120)

KEY = "k" * 64
ZLIB = Compression("zlib", 1)


def smooth_image(h: int, w: int, c: int, dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """Photo pixels (scikit-image's astronaut at twice its size, tiled and shifted by ``seed``), opaque alpha; u16
    as 257 x u8.  Compressible the way an upscaled photo is (about 4:1 at zlib level 1)."""
    src = np.repeat(np.repeat(skimage_data.astronaut(), 2, 0), 2, 1)
    reps = (-(-h // src.shape[0]), -(-w // src.shape[1]), 1)
    rgb = np.tile(np.roll(src, seed * 97, axis=1), reps)[:h, :w]
    px = np.concatenate([rgb, np.full((h, w, 1), 255, np.uint8)], -1)[..., :c]
    if dtype == np.uint16:
        px = px.astype(np.uint16) * 257
    return np.ascontiguousarray(px)


def _frames(content: dict, buffers: list, signer: Signer | None = None, compress: Compression | None = None):
    s = signer or Signer(KEY)
    return s, serialize(s, make_header("stylize", "sess", "job1"), content, buffers, compress=compress)


def _refused(content: dict, buffers: list, **kw) -> WireError:
    s, f = _frames(content, buffers)
    with pytest.raises(WireError) as e:
        deserialize(s, f, ReplayGuard(), **kw)
    assert e.value.signed, "a signed message is answered, with its code"
    return e.value


# -- the wire layer ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_u8_and_u16_buffers_round_trip_compressed(dtype):
    arr = smooth_image(256, 192, 4, dtype)
    raw = memoryview(arr).cast("B")
    content = {"image": {"buffer": 0}}
    s, f = _frames(content, [raw, b"small"], compress=ZLIB)
    assert content == {"image": {"buffer": 0}}, "the caller's content is not changed"
    sent = f[5]
    assert isinstance(sent, bytes) and len(sent) < raw.nbytes / 2
    assert f[6] == b"small"                                   # below COMPRESS_MIN: raw
    m = deserialize(s, f, ReplayGuard())
    assert m.content == {"image": {"buffer": 0}}, "the reserved key never reaches a handler"
    assert bytes(m.buffers[0]) == arr.tobytes() and bytes(m.buffers[1]) == b"small"


def test_several_buffers_compress_on_the_pool_and_come_back_in_order():
    bufs = [smooth_image(128, 128, 4, seed=i).tobytes() for i in range(4)]
    s, f = _frames({}, list(bufs), compress=ZLIB)
    assert all(len(x) < len(b) for x, b in zip(f[5:], bufs))
    assert [bytes(b) for b in deserialize(s, f).buffers] == bufs


def test_incompressible_and_small_buffers_are_sent_raw_and_uncopied():
    noise = np.frombuffer(os.urandom(1 << 20), np.uint8)
    small = b"x" * (COMPRESS_MIN - 1)
    s, f = _frames({"a": 1}, [noise, small], compress=ZLIB)
    assert f[5] is noise and f[6] is small                   # passed through, not copied
    assert COMPRESSED_KEY.encode() not in f[4]
    assert compress_buffer(noise, ZLIB) is noise
    m = deserialize(s, f)
    assert bytes(m.buffers[0]) == noise.tobytes() and m.content == {"a": 1}


def test_compressed_frames_are_what_is_signed():
    s, f = _frames({}, [bytes(1 << 20)], compress=ZLIB)
    f = list(f)
    f[5] = zlib.compress(bytes(1 << 20), 9)                   # same pixels, other bytes on the wire
    with pytest.raises(WireError) as e:
        deserialize(s, f)
    assert e.value.code == "bad_signature" and not e.value.signed


def test_compress_ahead_keeps_order_and_equals_one_at_a_time():
    pieces = [smooth_image(64, 256, 4, seed=i).tobytes() for i in range(7)] + [os.urandom(1 << 17)]
    out = list(compress_ahead(iter(pieces), ZLIB, lookahead=3))
    assert len(out) == len(pieces)
    for p, o in zip(pieces, out):
        ref = compress_buffer(p, ZLIB)
        assert (o.data == ref.data and o.raw_size == len(p)) if isinstance(ref, Compressed) else o is p
    assert list(compress_ahead(iter(pieces), None)) == pieces


def test_compression_specs():
    assert Compression.parse("zlib") == Compression("zlib", 1)
    assert Compression.parse("zlib:6") == Compression.parse({"codec": "zlib", "level": 6}) == Compression("zlib", 6)
    assert Compression.parse(None) is None and Compression.parse("") is None
    for bad in ("zstd", "zlib:0", "zlib:10", "zlib:x", {"codec": "zlib", "level": True}, {"level": 1}, 5):
        with pytest.raises(ValueError):
            Compression.parse(bad)


def _declare(raw_size: int, index: int = 0, codec: str = "zlib") -> dict:
    return {COMPRESSED_KEY: {"codec": codec, "buffers": [[index, raw_size]]}}


def _bomb(raw: int) -> bytes:
    """A zlib stream of ``raw`` zero bytes, built without ever holding them."""
    c, piece, out = zlib.compressobj(9), bytes(1 << 20), []
    for _ in range(raw >> 20):
        out.append(c.compress(piece))
    return b"".join(out) + c.flush()


def test_a_stream_longer_than_declared_is_refused_without_inflating_it():
    """A 256 MiB zip bomb declared as 1 MiB: refused, and inflating it held 1 MiB and a few steps, not 256 MiB."""
    bomb = _bomb(256 << 20)
    s, f = _frames(_declare(1 << 20), [bomb])
    tracemalloc.start()
    try:
        with pytest.raises(WireError) as e:
            deserialize(s, f)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert e.value.code == "bad_compression" and e.value.signed and "does not end" in str(e.value)
    assert peak < (1 << 20) + 6 * wire.INFLATE_STEP, peak     # the declared size plus a few steps


def test_lying_corrupt_or_unbounded_streams_are_refused_with_their_codes():
    data = smooth_image(128, 128, 4).tobytes()
    z = zlib.compress(data, 1)
    n = len(data)
    cases = {
        "shorter": (_declare(n + 1), [z], "holds"),
        "longer": (_declare(n - 1), [z], "does not end"),
        "truncated": (_declare(n), [z[:-3]], "does not end"),
        "trailing": (_declare(n), [z + b"more"], "follow the end"),
        "corrupt": (_declare(n), [z[:10] + bytes(len(z) - 10)], "corrupt"),
        "not zlib": (_declare(n), [b"\xff" * len(z)], "corrupt"),
        "codec": (_declare(n, codec="zstd"), [z], "not supported"),
        "index": (_declare(n, index=1), [z], "not [index"),
        "twice": ({COMPRESSED_KEY: {"codec": "zlib", "buffers": [[0, n], [0, n]]}}, [z, z], "twice"),
        "zero": (_declare(0), [z], "not [index"),
        "bool": (_declare(True), [z], "not [index"),
        "shape": ({COMPRESSED_KEY: [[0, n]]}, [z], "must be"),
        "none listed": ({COMPRESSED_KEY: {"codec": "zlib", "buffers": []}}, [z], "must list"),
        "ratio": (_declare(2000 * 100 + (64 << 10)), [z[:100]], "cannot inflate"),
        "reply codec": ({REPLY_COMPRESSION_KEY: {"codec": "brotli"}}, [], "not supported"),
        "reply level": ({REPLY_COMPRESSION_KEY: {"codec": "zlib", "level": 99}}, [], "level"),
    }
    for name, (content, bufs, words) in cases.items():
        e = _refused(content, bufs)
        assert e.code == "bad_compression" and words in str(e), (name, str(e))


def test_a_declared_size_over_the_receivers_limit_is_too_large_before_inflating(monkeypatch):
    monkeypatch.setattr(wire, "_inflate", lambda *a: pytest.fail("inflated a frame over the limit"))
    bomb = _bomb(64 << 20)
    e = _refused(_declare(64 << 20), [bomb], max_raw=8 << 20)
    assert e.code == "too_large" and "at most 8388608" in str(e)


def test_reply_compression_is_read_off_the_request():
    s, f = _frames({"a": 1, REPLY_COMPRESSION_KEY: {"codec": "zlib", "level": 3}}, [])
    m = deserialize(s, f)
    assert m.reply_compression == Compression("zlib", 3) and m.content == {"a": 1}
    s, f = _frames({"a": 1}, [])
    assert deserialize(s, f).reply_compression is None


# -- a real daemon ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with DaemonProcess(tmp_path_factory.mktemp("compress")) as d:
        yield d
        assert d.alive(), d.log()


class Spy:
    """Counts, in this process, compressed frames the client sends (serialize) and inflates (wire._decompress)."""

    def __init__(self, monkeypatch):
        self.sent = self.received = 0
        real_serialize, real_decompress = client_mod.serialize, wire._decompress

        def serialize_spy(*a, **kw):
            frames = real_serialize(*a, **kw)
            self.sent += COMPRESSED_KEY.encode() in frames[4]
            return frames

        def decompress_spy(content, buffers, max_raw):
            self.received += 1
            return real_decompress(content, buffers, max_raw)

        monkeypatch.setattr(client_mod, "serialize", serialize_spy)
        monkeypatch.setattr(wire, "_decompress", decompress_spy)


def _image(arr: np.ndarray) -> ImageBuffer:
    h, w, c = arr.shape
    return ImageBuffer(w, h, c, "u8" if arr.dtype == np.uint8 else "u16", memoryview(arr).cast("B"))


def test_hello_offers_zlib_and_protocol_1_1(daemon):
    with daemon.client() as c:
        info = c.hello()
        assert info["compression"] == ["zlib"] and info["protocol_version"] == "1.1"


@pytest.mark.parametrize("shape,dtype", [((1024, 1280, 4), np.uint8),   # 5 MiB: streamed both ways
                                         ((700, 600, 4), np.uint16),    # 3.2 MiB: inline both ways
                                         ((1100, 1000, 3), np.uint16)])  # 6.3 MiB: streamed, rows not 4 MiB-aligned
def test_a_daemon_job_with_compression_returns_the_exact_pixels(daemon, monkeypatch, shape, dtype):
    arr = smooth_image(*shape, dtype=dtype, seed=shape[0])
    spy = Spy(monkeypatch)
    with daemon.client(compression="zlib") as c:
        job = c.stylize(_image(arr), StylizeOptions(engine="identity", size=max(shape[:2])))
        job.wait(timeout=60)
        assert job.error is None and job.result is not None
        assert bytes(job.result.data) == arr.tobytes()
    assert spy.sent >= 1 and spy.received >= 1


def test_compressed_tiles_and_the_same_daemon_without_compression(daemon, monkeypatch):
    arr = smooth_image(300, 520, 4, seed=5)
    spy = Spy(monkeypatch)
    with daemon.client(compression="zlib:6") as c:
        job = c.stylize(_image(arr), StylizeOptions(engine="identity", size=520), deliver="tiles", tile_size=256)
        canvas = np.zeros_like(arr)
        for ev in job.events(timeout=60):
            if isinstance(ev, TileEvent):
                t = np.frombuffer(ev.image.data, np.uint8).reshape(ev.image.height, ev.image.width, 4)
                canvas[ev.y:ev.y + t.shape[0], ev.x:ev.x + t.shape[1]] = t
        np.testing.assert_array_equal(canvas, arr)
    assert spy.received >= 2, "256 px RGBA tiles (256 KiB) travel compressed"
    spy.sent = spy.received = 0
    big = smooth_image(1024, 1280, 4, seed=6)
    with daemon.client() as plain:             # an old-style client: no compression asked, none sent
        job = plain.stylize(_image(big), StylizeOptions(engine="identity", size=1280)).wait(timeout=60)
        assert bytes(job.result.data) == big.tobytes()
    assert spy.sent == 0 and spy.received == 0


def test_a_daemon_that_offers_no_codec_gets_raw_frames(daemon, monkeypatch):
    """A 1.0 daemon's hello has no "compression": the client sends raw and asks for nothing."""
    spy = Spy(monkeypatch)
    arr = smooth_image(200, 200, 4)
    with daemon.client(compression="zlib") as c:
        c.hello()
        c._daemon_codecs = ()
        assert c.job_compression() is None
        job = c.stylize(_image(arr), StylizeOptions(engine="identity", size=200)).wait(timeout=60)
        assert bytes(job.result.data) == arr.tobytes()
    assert spy.sent == 0 and spy.received == 0


def test_a_lying_compressed_chunk_fails_its_upload_at_once(daemon, monkeypatch):
    """A chunk whose stream is longer than it declares: the daemon answers bad_compression and drops the upload
    (no 60 s upload_timeout holding its memory)."""
    def liar(pieces, compression, lookahead=0):
        for p in pieces:
            yield Compressed(zlib.compress(p, 1), memoryview(p).nbytes - 1)
    monkeypatch.setattr(client_mod, "compress_ahead", liar)
    arr = smooth_image(1024, 1280, 4)
    with daemon.client(compression="zlib") as c:
        job = c.stylize(_image(arr), StylizeOptions(engine="identity", size=1280))
        events = list(job.events(timeout=30))
        assert isinstance(events[-1], ErrorEvent) and events[-1].code == "bad_compression", events
        st = c.status()
        assert not st["uploading"] and st["refused"].get("bad_compression", 0) >= 1
        assert any(r["job_id"] == job.id and r["reason"] == "bad_compression" for r in st["recent"])


def test_the_outbox_compresses_ahead_and_keeps_the_send_order():
    """A worker's messages leave in the order sent, compressed or not, and a terminal message flushes them all."""
    import zmq
    from impasto.daemon.jobs import Job
    from impasto.daemon.outbox import Outbox, bind_inbox

    ctx = zmq.Context()
    endpoint = "inproc://test-outbox-order"
    inbox = bind_inbox(ctx, endpoint)
    signer = Signer(KEY)
    job = Job("j1", "stylize", "sess", [b"\x00abcd"], make_header("stylize", "sess", "j1"), compression=ZLIB)
    box = Outbox(ctx, signer, "daemon", endpoint)
    box.open()
    try:
        bands = [smooth_image(64, 1024, 4, seed=i).tobytes() for i in range(9)]
        for i, band in enumerate(bands):
            box.send(job, "result_chunk", {"i": i}, [band])
            if i == 4:
                box.send(job, "progress", {"i": "p"})           # no buffer: waits for the compressions before it
        box.send(job, "result", {"i": "end"})
        got, compressed = [], 0
        while inbox.poll(2000):
            frames = inbox.recv_multipart()
            compressed += COMPRESSED_KEY.encode() in frames[5]         # identity, delimiter, signature, h, p, c
            m = deserialize(signer, frames, max_identities=1)
            got.append((m.content["i"], [bytes(b) for b in m.buffers]))
            if m.content["i"] == "end":
                break
    finally:
        box.close()
        inbox.close()
        ctx.term()
    assert [g[0] for g in got] == [0, 1, 2, 3, 4, "p", 5, 6, 7, 8, "end"]
    assert [g[1][0] for g in got if isinstance(g[0], int)] == bands and compressed == len(bands)


def test_compression_is_on_by_default_for_a_remote_server_only(daemon, monkeypatch):
    """``Client(compression="auto")``, the default: off for the local daemon, zlib for a remote profile (here the
    local daemon's connection named as if it were one)."""
    import dataclasses
    from impasto_protocol.client import Client

    with daemon.client() as local:
        assert local.compression is None and local.job_compression() is None
    spy = Spy(monkeypatch)
    arr = smooth_image(512, 512, 4)
    remote = Client(dataclasses.replace(daemon.info, remote="studio"), heartbeat=False)
    try:
        assert remote.compression == Compression("zlib", 1)
        job = remote.stylize(_image(arr), StylizeOptions(engine="identity", size=512)).wait(timeout=60)
        assert bytes(job.result.data) == arr.tobytes()
    finally:
        remote.close()
    assert spy.sent >= 1 and spy.received >= 1
