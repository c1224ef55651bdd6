"""The wire protocol without a daemon: envelope signing, replay refusal, image descriptions, connection files."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time

import pytest

from impasto_protocol import wire
from impasto_protocol.connection import (ConnectionFileError, ConnectionInfo, new_key, read_connection_file,
                                         remove_connection_file, write_connection_file)
from impasto_protocol.images import ImageBuffer, ImageBufferError
from impasto_protocol.wire import (DELIMITER, ReplayGuard, Signer, WireError, buffer_digest, deserialize,
                                   make_header, serialize)

KEY = "k" * 64


def _msg(buffers=(b"\x01\x02\x03",), signer=None):
    s = signer or Signer(KEY)
    return s, serialize(s, make_header("stylize", "sess", "job1"), {"a": 1}, list(buffers), parent={"x": 1},
                        identities=[b"id"])


def test_round_trip_keeps_everything():
    s, frames = _msg([b"abc", bytearray(b"defg"), memoryview(b"h")])
    m = deserialize(s, frames, ReplayGuard())
    assert m.identities == [b"id"] and m.msg_type == "stylize" and m.job_id == "job1"
    assert m.content == {"a": 1} and m.parent == {"x": 1}
    assert [bytes(b) for b in m.buffers] == [b"abc", b"defg", b"h"]


@pytest.mark.parametrize("tamper", ["header", "parent", "content", "buffer_byte", "extra_frame", "drop_buffer",
                                    "swap_buffers", "move_byte_between_buffers", "signature", "unsigned"])
def test_any_change_breaks_the_signature(tamper):
    s, frames = _msg([b"abc", b"def"])
    i = frames.index(DELIMITER)
    f = list(frames)
    if tamper == "header":
        f[i + 2] = f[i + 2].replace(b"stylize", b"stylizf")
    elif tamper == "parent":
        f[i + 3] = b'{"x":2}'
    elif tamper == "content":
        f[i + 4] = b'{"a":2}'
    elif tamper == "buffer_byte":
        f[i + 5] = b"abd"
    elif tamper == "extra_frame":
        f.append(b"")
    elif tamper == "drop_buffer":
        f.pop()
    elif tamper == "swap_buffers":
        f[i + 5], f[i + 6] = f[i + 6], f[i + 5]
    elif tamper == "move_byte_between_buffers":
        f[i + 5], f[i + 6] = b"ab", b"cdef"
    elif tamper == "signature":
        f[i + 1] = f[i + 1][:-1] + (b"0" if f[i + 1][-1:] != b"0" else b"1")
    elif tamper == "unsigned":
        f[i + 1] = b""
    with pytest.raises(WireError) as e:
        deserialize(s, f, ReplayGuard())
    assert e.value.code == "bad_signature" and not e.value.signed


def test_other_key_is_refused():
    _, frames = _msg(signer=Signer("other-key"))
    with pytest.raises(WireError) as e:
        deserialize(Signer(KEY), frames)
    assert e.value.code == "bad_signature"


def test_signed_but_bad_messages_are_answerable_with_codes():
    s = Signer(KEY)
    h = b"not json"
    frames = [DELIMITER, s.signature(h, b"{}", b"{}"), h, b"{}", b"{}"]
    with pytest.raises(WireError) as e:
        deserialize(s, frames)
    assert (e.value.code, e.value.signed) == ("bad_header", True)

    hdr = make_header("hello", "s")
    hdr["v"] = "2.0"
    frames = serialize(s, hdr, {})
    with pytest.raises(WireError) as e:
        deserialize(s, frames)
    assert e.value.code == "version" and e.value.header["msg_id"] == hdr["msg_id"]

    hb, cb = json.dumps(make_header("hello", "s")).encode(), b"[1]"
    frames = [DELIMITER, s.signature(hb, b"{}", cb), hb, b"{}", cb]
    with pytest.raises(WireError) as e:
        deserialize(s, frames)
    assert e.value.code == "bad_content"


def test_replay_and_stale_dates_are_refused():
    s = Signer(KEY)
    g = ReplayGuard(window=60)
    frames = serialize(s, make_header("hello", "s"), {})
    deserialize(s, frames, g)
    with pytest.raises(WireError) as e:
        deserialize(s, frames, g)
    assert e.value.code == "replay"
    old = make_header("hello", "s")
    old["date"] = time.time() - 3600
    with pytest.raises(WireError) as e:
        deserialize(s, serialize(s, old, {}), g)
    assert e.value.code == "stale"


def test_replay_guard_never_forgets_an_id_it_would_still_accept():
    g = ReplayGuard(window=1000, max_ids=3)
    now = 10_000.0
    for i in range(5):
        assert g.check(f"id{i}", now + i, now=now + 5) is None
    # id0 and id1 were forgotten; their dates are now below the floor, so replaying them is still refused
    assert g.check("id0", now, now=now + 5) == "stale"
    assert g.check("id4", now + 4, now=now + 5) == "replay"
    assert g.check("new", now + 5, now=now + 5) is None


def test_parallel_buffer_digest_equals_serial(monkeypatch):
    data = os.urandom(3 * wire.CHUNK + 12345)
    serial = buffer_digest(data)
    monkeypatch.setattr(wire, "PARALLEL_MIN", 1)
    assert buffer_digest(memoryview(data)) == serial
    assert buffer_digest(data[:-1]) != serial


def test_image_buffer_validation():
    img = ImageBuffer(4, 3, 4, "u8", bytes(48))
    assert img.stride == 16 and img.nbytes == 48 and img.validate() is img
    with pytest.raises(ImageBufferError, match="needs 48"):
        ImageBuffer(4, 3, 4, "u8", bytes(47)).validate()
    with pytest.raises(ImageBufferError) as e:
        ImageBuffer(100_000, 100_000, 4, "u8", b"").validate()
    assert e.value.code == "too_large"
    with pytest.raises(ImageBufferError, match="dtype"):
        ImageBuffer(4, 3, 3, "f64", bytes(96)).validate()
    with pytest.raises(ImageBufferError, match="stride"):
        ImageBuffer(4, 3, 3, "u8", bytes(9), stride=3).validate()
    padded = ImageBuffer(2, 2, 1, "u16", b"\x01\x00\x02\x00\xff\xff\x03\x00\x04\x00\xff\xff", stride=6)
    assert padded.validate() and bytes(padded.tight_bytes()) == b"\x01\x00\x02\x00\x03\x00\x04\x00"


def test_image_description_round_trip_and_refusals():
    img = ImageBuffer(3, 2, 3, "f16", bytes(36), colorspace="linear", bgr=True)
    d = img.describe(1)
    back = ImageBuffer.from_description(d, [b"", img.data])
    assert (back.width, back.height, back.channels, back.dtype, back.colorspace, back.bgr) == (3, 2, 3, "f16",
                                                                                               "linear", True)
    for patch, what in [({"buffer": 2}, "buffer index"), ({"extra": 1}, "unknown field"), ({"channels": 5}, "1..4"),
                        ({"width": True}, "positive integer"), ({"colorspace": "cmyk"}, "colour space")]:
        with pytest.raises(ImageBufferError, match=what):
            ImageBuffer.from_description({**d, **patch}, [b"", img.data])


def test_connection_file_is_private_and_round_trips(tmp_path):
    info = ConnectionInfo(transport="tcp", ip="127.0.0.1", port=5555, path="", key=new_key(), pid=os.getpid())
    p = write_connection_file(info, tmp_path / "run" / "daemon.json")
    assert stat.S_IMODE(p.stat().st_mode) == 0o600
    assert stat.S_IMODE(p.parent.stat().st_mode) == 0o700
    back = read_connection_file(p)
    assert back == info and back.endpoint == "tcp://127.0.0.1:5555" and back.pid_alive()
    assert not remove_connection_file(p, pid=os.getpid() + 1) and p.exists()
    assert remove_connection_file(p, pid=os.getpid()) and not p.exists()
    with pytest.raises(ConnectionFileError, match="no daemon connection file"):
        read_connection_file(p)


def test_stale_connection_file_is_detected(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    info = ConnectionInfo(transport="tcp", ip="127.0.0.1", port=1, path="", key=new_key(), pid=dead.pid)
    p = write_connection_file(info, tmp_path / "daemon.json")
    assert not read_connection_file(p).pid_alive()
