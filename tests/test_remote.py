"""Issue 18: the remote server (``impasto serve --listen``): CURVE, the allow-list, pairing, revoking.

The daemon runs as a second host: in its own network namespace joined to ours by a veth pair (``support/remote.py``)
where that can be made here, and on 127.0.0.2 in any case -- the namespace variant is skipped with the reason
when namespaces are unavailable.  Each variant checks a job with progress and result, that an unknown key gets no
answer, that a revoked key is refused (live connection and next one), and that no plaintext header crosses the wire
(in captured packets).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from impasto_protocol import StylizeOptions
from impasto_protocol.client import Client, DaemonNotRunning, ProtocolError, open_socket
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import ProgressEvent
from impasto_protocol.remote import (ADMIN_USER, RemoteError, ServerKeys, client_from_line, new_keypair,
                                     new_profile, profile_from_invitation, read_pairing_argument)
from impasto_protocol.wire import DELIMITER, Signer, make_header, serialize
from tests.support import remote as net
from tests.support.remote import Capture, NetNamespace, RemoteDaemon, free_port

pytestmark = pytest.mark.timeout(180)
NETNS = net.unavailable()
CAPTURE = net.can_capture()


def u8(w: int, h: int, c: int = 3, seed: int = 0) -> ImageBuffer:
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, c), dtype=np.uint8)
    return ImageBuffer(w, h, c, "u8", arr.tobytes())


# -- pairing and the allow-list, no daemon -------------------------------------------------------------------------
@pytest.fixture
def config_dir(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "config"
    monkeypatch.setenv("IMPASTO_CONFIG_DIR", str(d))
    return d


def test_invitation_pairs_both_sides_and_files_are_private(config_dir):
    keys = ServerKeys()
    line = keys.invite("alice", "tcp://studio.example:5555")
    profile = profile_from_invitation(line, name="studio")
    assert profile.endpoint == "tcp://studio.example:5555" and profile.server_key == keys.public_key()
    allowed = keys.lookup(profile.public_key)
    assert allowed is not None and allowed.name == "alice" and allowed.signing_key == profile.signing_key
    for path in [config_dir / "server" / "server.json", *(config_dir / "server" / "clients").iterdir()]:
        assert path.stat().st_mode & 0o777 == 0o600, path
    for d in (config_dir, config_dir / "server", config_dir / "server" / "clients"):
        assert d.stat().st_mode & 0o777 == 0o700, d
    assert keys.public_key() == ServerKeys().public_key()          # made once, then read back


def test_client_line_pairs_the_other_way(config_dir):
    server = ServerKeys(config_dir / "srv")
    profile = new_profile("studio", "tcp://10.0.0.5:5555", server.public_key())
    line = profile.client_line()
    assert profile.secret_key not in line                     # the secret key never leaves the artist's machine
    server.allow(client_from_line(line))
    assert server.lookup(profile.public_key).signing_key == profile.signing_key
    with pytest.raises(RemoteError, match="already allowed"):
        server.allow(client_from_line(line))


@pytest.mark.parametrize("bad,match", [
    ("impasto-client-1:%%%", "garbled"), ("hello", "neither a pairing line"),
    ("impasto-invite-1:e30", "lacks or garbles"),
])
def test_bad_pairing_lines_say_what_is_wrong(config_dir, bad, match):
    with pytest.raises(RemoteError, match=match):
        line = read_pairing_argument(bad)
        (profile_from_invitation if line.startswith("impasto-invite") else client_from_line)(line)


def test_revoke_takes_effect_at_the_next_lookup(config_dir):
    keys = ServerKeys(refresh=0.0)
    p = profile_from_invitation(keys.invite("bob", "tcp://10.0.0.5:5555"))
    assert keys.lookup(p.public_key) is not None
    other = ServerKeys()                          # another process: `impasto server revoke bob`
    other.revoke("bob")
    assert keys.lookup(p.public_key) is None
    revoked = list((config_dir / "server" / "revoked").iterdir())
    assert len(revoked) == 1 and json.loads(revoked[0].read_text())["signing_key"] == ""


def test_zap_verdicts_for_curve(config_dir):
    from impasto.daemon.auth import DOMAIN, ZapHandler
    keys = ServerKeys()
    p = profile_from_invitation(keys.invite("carol", "tcp://10.0.0.5:5555"))
    admin_public, _ = new_keypair()
    ctx = zmq.Context()
    try:
        zap = ZapHandler(ctx, "k" * 64, keys, admin_public)

        def ask(public: str, mechanism: bytes = b"CURVE") -> tuple:
            raw = zmq.utils.z85.decode(public.encode())
            return zap.verdict([b"1.0", b"1", DOMAIN, b"10.0.0.9", b"", mechanism, raw])

        assert ask(p.public_key) == (b"200", b"OK", p.public_key.encode())
        assert ask(admin_public) == (b"200", b"OK", ADMIN_USER.encode())
        assert ask(new_keypair()[0])[:2] == (b"400", b"unknown key")
        assert ask(p.public_key, b"PLAIN")[0] == b"400"
        zap._sock.close(0)
    finally:
        ctx.term()


def test_serve_refuses_a_public_address_without_curve():
    from impasto.daemon.config import DaemonConfig
    with pytest.raises(ValueError, match="loopback only"):
        DaemonConfig(tcp=True, ip="0.0.0.0")
    with pytest.raises(ValueError, match="HOST:PORT"):
        DaemonConfig(listen="studio:notaport")
    assert DaemonConfig(listen="0.0.0.0:5555").curve


def test_cli_pairing_round_trip(tmp_path, monkeypatch, capsys):
    from impasto.cli import main
    monkeypatch.setenv("IMPASTO_CONFIG_DIR", str(tmp_path / "server-machine"))
    assert main(["server", "key"]) == 0
    server_key = capsys.readouterr().out.strip()
    monkeypatch.setenv("IMPASTO_CONFIG_DIR", str(tmp_path / "laptop"))
    assert main(["remote", "add", "studio", "tcp://10.0.0.5:5555", "--server-key", server_key]) == 0
    out = capsys.readouterr().out
    line = next(w for w in out.split() if w.startswith("impasto-client-1:"))
    assert main(["remote", "add", "studio", "tcp://10.0.0.5:5555", "--server-key", server_key]) == 2
    assert "exists already" in capsys.readouterr().err
    monkeypatch.setenv("IMPASTO_CONFIG_DIR", str(tmp_path / "server-machine"))
    assert main(["server", "allow", line]) == 0
    assert main(["server", "clients"]) == 0
    assert "studio" in capsys.readouterr().out
    assert main(["server", "revoke", "studio"]) == 0
    assert main(["server", "revoke", "studio"]) == 2
    assert "no allowed client named 'studio'" in capsys.readouterr().err


# -- a real second host ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=["netns", "127.0.0.2"])
def server(request, tmp_path_factory):
    """The CURVE daemon on the second host, and the interface its traffic crosses (for the capture)."""
    if request.param == "netns":
        if NETNS:
            pytest.skip(f"network namespace variant skipped: {NETNS} (the 127.0.0.2 variant runs the same tests)")
        with NetNamespace() as ns:
            d = RemoteDaemon(tmp_path_factory.mktemp("ns-server"), ns.server_ip, 5555, netns=ns)
            with d:
                d.iface = ns.host_if
                yield d
    else:
        d = RemoteDaemon(tmp_path_factory.mktemp("lo2-server"), "127.0.0.2", free_port("127.0.0.2"))
        with d:
            d.iface = "lo"
            yield d


def test_job_with_progress_and_result_and_no_plaintext_on_the_wire(server):
    if CAPTURE:
        pytest.skip(CAPTURE)
    profile = server.invite(f"artist-{time.monotonic_ns()}")
    img = u8(320, 240, seed=3)
    with Capture(server.iface, server.port) as cap:
        client = Client.connect(remote=profile)
        try:
            assert client.hello()["remote_client"] == profile.name
            job = client.stylize(img, StylizeOptions(engine="sleep", steps=6, learning_rate=0.02, size=320))
            events = list(job.events(timeout=30))
        finally:
            client.close()
        time.sleep(0.2)
    wire = cap.stop()
    progress = [e for e in events if isinstance(e, ProgressEvent) and e.stage.startswith("step")]
    assert len(progress) >= 3
    assert job.result is not None and bytes(job.result.data) == bytes(img.data)
    assert cap.packets > 10 and len(wire) > img.nbytes             # the capture saw the whole exchange
    assert b"CURVE" in wire                                         # the ZMTP greeting is the only plaintext
    for plain in (DELIMITER, b'"msg_type"', b'"stylize"', b'"sleep"', b"hmac", bytes(img.data)[:64]):
        assert plain not in wire, plain


def test_unknown_key_gets_no_answer(server):
    stranger = server.stranger()
    with pytest.raises(DaemonNotRunning, match="allow-list"):
        Client.connect_remote(stranger, timeout=2.0)
    ctx = zmq.Context()
    sock = open_socket(ctx, stranger.connection_info())
    try:
        sock.send_multipart(serialize(Signer(stranger.signing_key), make_header("hello", "s"), {}))
        assert sock.poll(1500) == 0                                 # not an error, not anything
    finally:
        sock.close(0)
        ctx.term()
    deadline = time.monotonic() + 5
    while "reason=unknown_key" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "reason=unknown_key" in server.log()


def test_revoked_key_is_refused_on_its_live_connection_and_the_next(server):
    profile = server.invite(f"leaver-{time.monotonic_ns()}")
    client = Client.connect(remote=profile)
    try:
        job = client.stylize(u8(64, 48), StylizeOptions(engine="sleep", steps=400, learning_rate=0.05))
        next(job.events(timeout=10))
        assert job.accepted
        server.keys.revoke(profile.name)
        time.sleep(0.5)                         # the daemon rereads a changed allow-list at most every 0.2 s
        with pytest.raises((DaemonNotRunning, TimeoutError)):
            client.status(timeout=2.0)                              # dropped unanswered from now on
        job.wait(timeout=15)
        assert job.cancelled and job.error is None
    finally:
        client.close(cancel_jobs=False)
    with pytest.raises(DaemonNotRunning):
        Client.connect_remote(profile, timeout=2.0)
    assert "event=client_revoked" in server.log()


def test_remote_client_may_not_stop_the_server_and_sees_only_its_jobs(server):
    a = Client.connect(remote=server.invite(f"a-{time.monotonic_ns()}"))
    b = Client.connect(remote=server.invite(f"b-{time.monotonic_ns()}"))
    try:
        job = a.stylize(u8(64, 48), StylizeOptions(engine="sleep", steps=100, learning_rate=0.05))
        while not job.accepted:
            job.poll()
            time.sleep(0.02)
        with pytest.raises(ProtocolError, match="forbidden"):
            b.shutdown()
        st_b, st_a = b.status(), a.status()
        assert not st_b["running"] and not st_b["queued"]
        assert [j["job_id"] for j in st_a["running"] + st_a["queued"]] == [job.id]
        job.cancel()
        job.wait(timeout=10)
    finally:
        a.close()
        b.close()
    assert server.alive()


def test_vanished_client_has_its_job_cancelled(server):
    profile = server.invite(f"gone-{time.monotonic_ns()}")
    client = Client.connect(remote=profile)
    job = client.stylize(u8(64, 48), StylizeOptions(engine="sleep", steps=400, learning_rate=0.05))
    while not job.accepted:
        job.poll()
        time.sleep(0.02)
    client._hb.stop()                      # the editor dies: no more pings, no cancel sent
    client._sock.close(0)
    deadline = time.monotonic() + 10
    while f"job={job.id} event=client_gone" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"job={job.id} event=client_gone" in server.log()


def test_vanished_server_is_reported_within_seconds(tmp_path):
    d = RemoteDaemon(tmp_path, "127.0.0.2", free_port("127.0.0.2")).start()
    try:
        client = Client.connect(remote=d.invite("late"))
        job = client.stylize(u8(64, 48), StylizeOptions(engine="sleep", steps=400, learning_rate=0.05))
        while not job.accepted:
            job.poll()
            time.sleep(0.02)
        d.proc.kill()
        with pytest.raises(DaemonNotRunning, match="stopped answering"):   # by the heartbeats, not the timeout
            job.wait(timeout=60)
        assert not job.done and job.result is None
        client.close(cancel_jobs=False)
    finally:
        d.stop()


def test_fuzzing_through_curve_never_crashes_and_the_server_still_serves(server):
    """The remote path (per-client signer, peer lookup) under the protocol fuzzer, as an allowed client."""
    from tests.support.fuzz import run_fuzz
    profile = server.invite(f"fuzzer-{time.monotonic_ns()}")
    report = run_fuzz(profile.connection_info(), n=800, seed=7, resigned=0.5)
    assert report.ok, "\n".join(report.failures[:20])
    assert report.codes.get("internal", 0) == 0
    assert server.alive(), server.log()
    client = Client.connect(remote=profile)
    try:
        img = u8(30, 20, seed=5)
        job = client.stylize(img, StylizeOptions(engine="identity", size=30)).wait(timeout=30)
        assert job.result is not None and bytes(job.result.data) == bytes(img.data)
    finally:
        client.close()
