"""Issue 17: each finding of the attack on the daemon, reproduced against a real daemon (ipc or loopback only,
bounded loops), and what must now happen instead.  Findings about *another local user* run the attacker as uid
65534 with ``setpriv`` (skipped, with the reason, where that is not possible: not root, or no setpriv)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import zmq

from impasto_protocol import StylizeOptions
from impasto_protocol.client import Client, DaemonNotRunning, ProtocolError, open_socket
from impasto_protocol.connection import (ConnectionInfo, UnsafePath, new_key, pid_alive, read_connection_file,
                                         runtime_dir, write_connection_file)
from impasto_protocol.images import ImageBuffer, ImageBufferError
from impasto_protocol.messages import CHUNKS, MAX_FRAME, TCP_MAX_FRAME
from impasto_protocol.options import MAX_KEYPOINTS, OptionsError
from impasto_protocol.wire import (DELIMITER, MAX_CONTENT_BYTES, ZAP_USER, ReplayGuard, Signer, WireError,
                                   deserialize, make_header, serialize, zap_password)
from tests.support.daemon import FLOODER, DaemonProcess, serve_command
from impasto.engines.base import Cancelled
from impasto.engines.dst.cleaning import crossing_survivors

pytestmark = pytest.mark.timeout(180)
NOBODY = 65534
ROOT = Path(__file__).resolve().parents[1]


def _can_setpriv() -> str:
    if sys.platform == "win32" or os.geteuid() != 0:
        return "needs root to run the attacker as another uid"
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    return ""


needs_other_uid = pytest.mark.skipif(bool(_can_setpriv()), reason=_can_setpriv() or "ok")


def as_nobody(code: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run Python ``code`` (with ``args``) as uid/gid 65534 (another local user, no access to our files)."""
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                           "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd="/")


def u8(w: int, h: int, c: int = 3, seed: int = 0) -> ImageBuffer:
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, c), dtype=np.uint8)
    return ImageBuffer(w, h, c, "u8", arr.tobytes())


def raw_send(info: ConnectionInfo, msg_type: str, content: dict, buffers=(), *, header_patch=None,
             job_id=None, content_bytes: bytes | None = None, wait: float = 3.0) -> list:
    """Send one signed message on a fresh admitted connection; the replies that arrive within ``wait`` s."""
    ctx = zmq.Context.instance()
    sock = open_socket(ctx, info)
    signer = Signer(info.key)
    try:
        h = make_header(msg_type, "raw", job_id)
        h.update(header_patch or {})
        hb, pb = json.dumps(h).encode(), b"{}"
        cb = content_bytes if content_bytes is not None else json.dumps(content).encode()
        sock.send_multipart([DELIMITER, signer.signature(hb, pb, cb, list(buffers)), hb, pb, cb, *buffers])
        out = []
        end = time.monotonic() + wait
        while (left := end - time.monotonic()) > 0 and sock.poll(int(left * 1000)):
            out.append(deserialize(signer, sock.recv_multipart()))
            wait = 0.3
            end = min(end, time.monotonic() + wait)
        return out
    finally:
        sock.close(0)


# ---------------------------------------------------------------------------------------------------- finding 1


@needs_other_uid
def test_another_user_without_the_key_cannot_make_the_daemon_buffer_over_tcp(tmp_path):
    with DaemonProcess(tmp_path, "--tcp") as d:
        before = d.rss_mib()
        r = as_nobody(FLOODER, d.info.endpoint, "3", "4", str(TCP_MAX_FRAME))
        assert r.returncode == 0 and "flooder:" in r.stdout, r.stderr
        grown = d.rss_mib() - before
        assert grown < 64, f"daemon grew by {grown:.0f} MiB under an unauthenticated flood"
        with d.client() as c:
            assert c.hello()["limits"]["max_message_bytes"] < 5 << 20
            st = c.status()
        assert not st["dropped"].get("bad_signature")     # nothing of theirs was even received to be checked
        assert "connection_refused" in d.log()


def test_tcp_daemon_takes_small_frames_and_the_client_streams_to_fit(tmp_path):
    """On TCP a connection that never finishes its handshake can make libzmq hold one frame: TCP daemons take
    TCP_MAX_FRAME, and the client streams anything larger in pieces that fit (the result is still exact)."""
    with DaemonProcess(tmp_path, "--tcp") as d, d.client() as c:
        assert c.hello()["limits"]["max_message_bytes"] == TCP_MAX_FRAME < 1 << 20
        img = u8(700, 500, 4, seed=5)                                       # 1.4 MB: streamed in ~256 KiB pieces
        job = c.stylize(img, StylizeOptions(engine="identity", size=700)).wait(timeout=60)
        assert job.result is not None and bytes(job.result.data) == bytes(img.data)
        assert "event=uploading" in d.log()


def test_ipc_socket_is_in_a_private_folder_by_default(tmp_path):
    with DaemonProcess(tmp_path) as d:
        assert d.info.transport == "ipc"
        sock = Path(d.info.path)
        assert sock.parent == tmp_path and (sock.stat().st_mode & 0o777) == 0o600
        assert (tmp_path.stat().st_mode & 0o077) == 0
        assert json.loads(d.connection_file.read_text())["path"] == "daemon.sock"     # relative to the file


def test_more_buffer_frames_than_a_request_has_are_dropped_before_hashing():
    s = Signer("k")
    frames = serialize(s, make_header("stylize", "s", "j"), {}, [b"x"] * 5)
    with pytest.raises(WireError) as e:
        deserialize(s, frames, max_buffers=3)
    assert e.value.code == "bad_frames" and not e.value.signed
    with pytest.raises(WireError) as e:
        deserialize(s, serialize(s, make_header("ping", "s"), {}, [bytes(1000)]), max_total=900)
    assert e.value.code == "bad_frames" and not e.value.signed


def test_inline_buffers_of_queued_jobs_count_against_the_one_memory_budget(tmp_path):
    with DaemonProcess(tmp_path, "--max-queued-mb", "1") as d, d.client() as c:
        running = c.stylize(u8(32, 32), StylizeOptions(engine="sleep", size=32, steps=60, learning_rate=0.05))
        next(e for e in running.events(timeout=30) if type(e).__name__ == "ProgressEvent")
        queued = c.stylize(u8(500, 400, seed=1), StylizeOptions(engine="identity", size=500))    # 600 KB inline
        third = c.stylize(u8(500, 400, seed=2), StylizeOptions(engine="identity", size=500))
        third.wait(timeout=30)
        assert third.error and third.error[0] == "busy" and "1 MiB" in third.error[1]
        running.cancel()
        queued.wait(timeout=30)
        assert queued.result is not None


# ---------------------------------------------------------------------------------------------------- finding 2
@pytest.fixture
def shared_tmp(monkeypatch):
    """A world-writable sticky temp dir (like /tmp) that stands in for the temp dir, and no XDG_RUNTIME_DIR."""
    d = Path(tempfile.mkdtemp(prefix="impasto-shared-", dir="/tmp"))
    os.chmod(d, 0o1777)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    monkeypatch.delenv("IMPASTO_RUNTIME_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(d))
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@needs_other_uid
@pytest.mark.skipif(sys.platform == "darwin", reason="the temp-dir fallback is the Linux one")
def test_runtime_folder_made_by_another_user_is_refused_by_client_and_daemon(shared_tmp):
    victim_dir = runtime_dir()
    assert victim_dir == shared_tmp / f"impasto-{os.getuid()}"
    impostor = {"transport": "tcp", "ip": "127.0.0.1", "port": 1, "path": "", "key": new_key(), "pid": 1}
    r = as_nobody(f"import os, json; os.mkdir({str(victim_dir)!r}, 0o777); os.chmod({str(victim_dir)!r}, 0o777); "
                  f"open({str(victim_dir / 'daemon.json')!r}, 'w').write({json.dumps(impostor)!r})")
    assert r.returncode == 0, r.stderr
    with pytest.raises(UnsafePath, match=f"uid {NOBODY}"):
        read_connection_file()
    with pytest.raises(DaemonNotRunning, match=f"uid {NOBODY}"):       # and no daemon is started into it
        Client.connect(autostart=True, serve_command=[sys.executable, "-c", "raise SystemExit(3)"])
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "IMPASTO_RUNTIME_DIR")}
    serve = subprocess.run(serve_command(), capture_output=True,
                           text=True, timeout=120, env={**env, "TMPDIR": str(shared_tmp), "OMP_NUM_THREADS": "1"})
    assert serve.returncode != 0 and "refusing to start" in serve.stderr + serve.stdout
    assert not (victim_dir / "daemon.sock").exists()


def test_own_runtime_folder_open_to_others_or_a_symlink_is_refused(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    os.chmod(d, 0o777)
    info = ConnectionInfo("tcp", "127.0.0.1", 1, "", new_key(), os.getpid())
    with pytest.raises(UnsafePath, match="chmod 700"):
        write_connection_file(info, d / "daemon.json")
    os.chmod(d, 0o700)
    write_connection_file(info, d / "daemon.json")
    os.chmod(d / "daemon.json", 0o644)
    with pytest.raises(UnsafePath, match="chmod 600"):
        read_connection_file(d / "daemon.json")
    link = tmp_path / "link"
    link.symlink_to(d)
    with pytest.raises(UnsafePath, match="symbolic link"):
        read_connection_file(link / "daemon.json")


@needs_other_uid
def test_a_pid_of_another_user_is_not_our_daemon():
    p = subprocess.Popen(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "sleep", "30"])
    try:
        time.sleep(0.2)
        assert not pid_alive(p.pid)
        assert pid_alive(os.getpid())
    finally:
        p.kill()
        p.wait()


def test_without_proc_a_live_pid_is_taken_on_kill_alone(monkeypatch):
    """GIMP's chroot has no /proc: the owner cannot be read there, so the (already checked) file's pid counts
    as alive when kill(pid, 0) finds it -- otherwise every client in the chroot would call the daemon stale."""
    real_stat, real_isdir = os.stat, os.path.isdir

    def stat(p, *a, **kw):
        if str(p).startswith("/proc/"):
            raise FileNotFoundError(p)
        return real_stat(p, *a, **kw)
    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os.path, "isdir", lambda p: False if str(p).startswith("/proc") else real_isdir(p))
    assert pid_alive(os.getpid())


# ---------------------------------------------------------------------------------------------------- finding 3
def test_another_key_holder_can_neither_cancel_feed_nor_receive_a_clients_job(tmp_path):
    with DaemonProcess(tmp_path) as d:
        a, b = d.client(), d.client()
        job = a.stylize(u8(32, 32), StylizeOptions(engine="sleep", size=32, steps=30, learning_rate=0.05))
        next(e for e in job.events(timeout=30) if type(e).__name__ == "ProgressEvent")
        running = b.status()["running"]
        assert [j["job_id"] for j in running] == [job.id]             # status shows it to any key holder...
        with pytest.raises(ProtocolError) as e:                        # ...but only its client may cancel it
            b._request("cancel", {}, job_id=job.id)
        assert e.value.code == "unknown_job"
        # the old takeover: a socket that names itself after the victim's session is not listened to at all
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.routing_id = a.session.encode()
        sock.plain_username, sock.plain_password = ZAP_USER, zap_password(d.info.key)
        sock.connect(d.info.endpoint)
        sock.send_multipart(serialize(Signer(d.info.key), make_header("ping", a.session), {}))
        assert sock.poll(1000) == 0
        sock.close(0)
        job.wait(timeout=60)
        assert job.result is not None and not job.cancelled            # the victim got its result
        assert b.status()["dropped"].get("own_routing_id", 0) >= 1
        # an upload in progress takes chunks only from the connection that started it
        img = u8(64, 64, seed=3)
        jid = "upload-of-a"
        a._jobs[jid] = type(job)(a, jid, "stylize")
        a._send("stylize", {"options": StylizeOptions(engine="identity", size=64).to_dict(),
                            "content": {**img.describe(0), "buffer": CHUNKS}}, job_id=jid)
        with pytest.raises(ProtocolError) as e:
            b._request("chunk", {"image": "content", "offset": 0}, job_id=jid)
        assert e.value.code == "unknown_job"
        a._send("chunk", {"image": "content", "offset": 0}, [img.data], job_id=jid)
        done = a._jobs[jid].wait(timeout=30)
        assert done.result is not None and bytes(done.result.data) == bytes(img.data)


# ---------------------------------------------------------------------------------------------------- finding 4
def test_future_dated_flood_cannot_make_honest_messages_stale():
    g = ReplayGuard(window=300, max_ids=100)
    now = 1_000_000.0
    for i in range(1000):                                  # within the skew, so accepted, and they overflow the ids
        assert g.check(f"f{i}", now + 4, now=now) is None
    assert g.floor <= now
    assert g.check("honest", now + 0.01, now=now + 0.01) is None
    assert g.check("far", now + 290, now=now) == "stale"   # the old attack's dates are refused outright


def test_daemon_refuses_pings_dated_ahead_and_keeps_serving(tmp_path):
    with DaemonProcess(tmp_path) as d:
        ctx = zmq.Context.instance()
        sock = open_socket(ctx, d.info)
        signer = Signer(d.info.key)
        codes = []
        for _ in range(300):
            h = make_header("ping", "attacker")
            h["date"] = time.time() + 290
            sock.send_multipart(serialize(signer, h, {}))
        while len(codes) < 300 and sock.poll(5000):
            codes.append(deserialize(signer, sock.recv_multipart()).content.get("code"))
        sock.close(0)
        assert codes == ["stale"] * 300
        with d.client() as c:
            assert c.hello()["pid"] == d.info.pid


# ---------------------------------------------------------------------------------------------------- finding 5
def test_thousands_of_markers_are_refused_before_any_work(tmp_path):
    pairs = [{"content": [i % 60, i // 60], "style": [i % 60, i // 60]} for i in range(3000)]
    with pytest.raises(OptionsError, match=f"at most {MAX_KEYPOINTS}"):
        StylizeOptions.from_dict({"engine": "dst", "keypoints": pairs})
    with DaemonProcess(tmp_path) as d, d.client() as c:
        img = u8(64, 64)
        body = {"options": {**StylizeOptions(engine="dst", size=64).to_dict(), "keypoints": pairs},
                "content": img.describe(0), "style": img.describe(1)}
        replies = raw_send(d.info, "stylize", body, [img.data, img.data], job_id="many-markers")
        assert [m.content.get("code") for m in replies] == ["bad_options"]
        assert f"at most {MAX_KEYPOINTS} markers" in replies[0].content["message"]
        deep = {"options": json.loads("[" * 100 + "]" * 100)}
        replies = raw_send(d.info, "stylize", deep, job_id="deep")
        assert replies[0].content["code"] == "bad_content" and "nested deeper" in replies[0].content["message"]
        assert c.hello()


def test_cancel_is_seen_inside_the_quadratic_cleaning():
    g = torch.Generator().manual_seed(0)
    starts, ends = torch.rand(MAX_KEYPOINTS, 2, generator=g) * 100, torch.rand(MAX_KEYPOINTS, 2, generator=g) * 100
    calls = []

    def cancel() -> bool:
        calls.append(1)
        return len(calls) > 2
    with pytest.raises(Cancelled):
        crossing_survivors(starts, ends, cancel=cancel)
    assert crossing_survivors(starts, ends).shape == (MAX_KEYPOINTS,)


def test_cancel_is_seen_inside_neural_best_buddies():
    from impasto.engines.dst.nbb import NBBConfig, neural_best_buddies
    img = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(Cancelled):
        neural_best_buddies(img, img.flip(3), NBBConfig(image_size=64), cancel=lambda: True)


# ---------------------------------------------------------------------------------------------------- finding 6
def test_training_cannot_shadow_a_shipped_style_or_read_any_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(tmp_path / "data"))
    with DaemonProcess(tmp_path / "run") as d, d.client() as c:
        shipped = [s["name"] for s in c.list_styles(thumbnails=False)]
        assert "starry_night" in shipped
        bad = c.train(u8(32, 32), "starry_night", steps=2).wait(timeout=30)
        assert bad.error and bad.error[0] == "bad_request" and "replace_shipped" in bad.error[1]
        msgs = []
        for folder in ("/etc", "/proc/self", "/no/such/folder"):
            bad = c.train(u8(32, 32), "mine", steps=2, content_dir=folder).wait(timeout=30)
            assert bad.error and bad.error[0] == "bad_request"
            msgs.append(bad.error[1].replace(repr(folder), "X"))
        assert len(set(msgs)) == 1                 # nothing tells whether a folder outside exists or is readable
        assert "Errno" not in msgs[0] and "ermission" not in msgs[0]


def test_training_photos_sent_in_the_request(tmp_path, monkeypatch):
    """The other way to give training photos: in the request itself (streamed), no folder involved."""
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(tmp_path / "data"))
    photos = [u8(96, 80, seed=s) for s in range(3)]
    with DaemonProcess(tmp_path / "run") as d, d.client() as c:
        both = c.train(u8(64, 48), "sent", steps=2, photos=photos, content_dir="/etc").wait(timeout=30)
        assert both.error and both.error[0] == "bad_request" and "not both" in both.error[1]
        job = c.train(u8(160, 120, seed=9), "sent", steps=3, photos=photos, net="tiny", crop=64,
                      style_sizes=[64, 96, 128], batch=2).wait(timeout=300)
        assert job.error is None and not job.cancelled, job.error
        assert "sent" in c.hello()["styles"]
    work = tmp_path / "data" / "training" / "sent"
    assert not list(work.glob("photos-*"))               # the job's own photo folder is gone


# ---------------------------------------------------------------------------------------------------- finding 7
def test_huge_or_newline_values_are_not_echoed_and_refusals_are_rate_limited(tmp_path):
    with DaemonProcess(tmp_path) as d:
        img = u8(16, 16)
        body = {"options": {"engine": "mt", "style_name": "s" * 3_000_000}, "content": img.describe(0)}
        replies = raw_send(d.info, "stylize", body, [img.data], job_id="huge-name")
        assert replies[0].content["code"] == "bad_content" and len(replies[0].content["message"]) < 1100
        replies = raw_send(d.info, "hello", {"x\nevent=forged": 1})
        assert replies[0].content["code"] == "unknown_field" and "\n" not in replies[0].content["message"]
        replies = raw_send(d.info, "stylize", {}, job_id="j\nevent=forged")      # ids reach log lines too
        assert replies[0].content["code"] == "bad_header"
        ctx = zmq.Context.instance()
        sock = open_socket(ctx, d.info)
        signer = Signer(d.info.key)
        for i in range(300):
            sock.send_multipart(serialize(signer, make_header(f"nope{i}", "s"), {}))
        got = 0
        while got < 300 and sock.poll(5000):
            sock.recv_multipart()
            got += 1
        sock.close(0)
        assert got == 300                            # every refusal is still answered...
        with d.client() as c:
            c.hello()
        lines = d.log().splitlines()
    assert not any(line.startswith("event=forged") for line in lines)
    assert max(len(line) for line in lines) < 2000
    refused = [line for line in lines if "event=refused code=unknown_type" in line]
    assert 1 <= len(refused) <= 25                   # ...but the log holds one burst of them, not 300


# ---------------------------------------------------------------------------------------------------- finding 8
@pytest.mark.parametrize("dtype", [{}, [], None, 3])
def test_unhashable_or_odd_dtypes_are_bad_images(dtype):
    desc = {"width": 2, "height": 2, "channels": 3, "dtype": dtype, "buffer": 0}
    with pytest.raises(ImageBufferError) as e:
        ImageBuffer.from_description(desc, [bytes(12)])
    assert e.value.code == "bad_image"


@pytest.mark.parametrize("field,value", [("steps", True), ("seed", False), ("size", True), ("preview_every", True)])
def test_booleans_are_not_integers(field, value):
    with pytest.raises(OptionsError, match=field):
        StylizeOptions.from_dict({"engine": "gatys", field: value})


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback on this machine")
def test_ipv6_loopback_binds_and_clients_connect(tmp_path):
    with DaemonProcess(tmp_path, "--tcp", "--ip", "::1") as d, d.client() as c:
        assert d.info.endpoint.startswith("tcp://[::1]:")
        assert c.hello()["pid"] == d.info.pid


def test_signed_content_over_the_limit_is_answered(tmp_path):
    with DaemonProcess(tmp_path) as d:
        big = json.dumps({"pad": ["x" * 4000] * ((MAX_CONTENT_BYTES // 4000) + 5)}).encode()
        assert MAX_CONTENT_BYTES < len(big) < MAX_FRAME
        replies = raw_send(d.info, "hello", {}, content_bytes=big)
        assert [m.content["code"] for m in replies] == ["too_large"]
        with d.client() as c:
            with pytest.raises(ValueError, match="at most"):          # the client says so instead of waiting
                c._send("hello", {"pad": "x" * (MAX_CONTENT_BYTES + 10)})
