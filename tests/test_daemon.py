"""A real daemon subprocess with the test engines (tests/support/serve.py) on loopback: jobs, errors, cancel, concurrency, liveness."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
import torch

from impasto_protocol import StylizeOptions
from impasto_protocol.client import Client, ProtocolError
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import Accepted, CancelledEvent, ErrorEvent, ProgressEvent, ResultEvent, TileEvent
from impasto.daemon.cli_bridge import DaemonJobError, run_via_daemon
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with DaemonProcess(tmp_path_factory.mktemp("daemon"), "--max-pixels", "5000000") as d:
        yield d
        assert d.alive(), d.log()


@pytest.fixture
def client(daemon):
    c = daemon.client()
    yield c
    c.close()


def rand_image(w: int, h: int, c: int = 4, dtype: str = "u8", seed: int = 0) -> tuple[ImageBuffer, np.ndarray]:
    rng = np.random.default_rng(seed)
    if dtype == "u8":
        arr = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
    else:
        arr = rng.random((h, w, c), dtype=np.float32)
    return ImageBuffer(w, h, c, dtype, memoryview(arr).cast("B")), arr


def opts(**kw) -> StylizeOptions:
    kw.setdefault("engine", "identity")
    return StylizeOptions(**kw)


def test_hello_reports_engines_limits_and_versions(client, daemon):
    info = client.hello()
    assert info["protocol_version"] == "1.1" and info["pid"] == daemon.proc.pid
    assert {"identity", "sleep"} <= set(info["engines"])
    assert info["limits"]["max_pixels"] == 5_000_000
    assert info["devices"] == ["cpu"]
    assert isinstance(client.list_styles(), list)


def test_hello_reports_the_precision_policy_in_force(client):
    from impasto.precision import describe
    p = client.hello()["precision"]
    assert set(p) == {"cpu"}
    assert p["cpu"] == describe("cpu")            # the daemon runs with the test environment's (unset) override
    assert p["cpu"]["requested"] == "auto" and p["cpu"]["inference"] in ("bf16", "fp32")


def test_identity_round_trip_is_exact_in_every_format(client):
    for dtype, c in [("u8", 4), ("u8", 3), ("f32", 3), ("f32", 4)]:
        img, arr = rand_image(37, 23, c, dtype, seed=c)
        job = client.stylize(img, opts(size=37))
        events = list(job.events(timeout=30))
        assert isinstance(events[0], Accepted) and isinstance(events[-1], ResultEvent)
        r = job.result
        assert (r.width, r.height, r.channels, r.dtype) == (37, 23, c, dtype)
        assert bytes(r.data) == arr.tobytes()


def test_tiles_delivery_covers_the_result_exactly(client):
    img, arr = rand_image(150, 70, 4, seed=3)
    job = client.stylize(img, opts(size=150), deliver="tiles", tile_size=64)
    canvas = np.zeros_like(arr)
    tiles = 0
    for ev in job.events(timeout=30):
        if isinstance(ev, TileEvent):
            assert ev.final
            t = np.frombuffer(ev.image.data, np.uint8).reshape(ev.image.height, ev.image.width, 4)
            canvas[ev.y:ev.y + t.shape[0], ev.x:ev.x + t.shape[1]] = t
            tiles += 1
    assert job.result is None and job.info["tiles"] == tiles == 3 * 2
    np.testing.assert_array_equal(canvas, arr)


def test_selection_mask_keeps_the_content_outside(client):
    img, arr = rand_image(32, 32, 3, "f32", seed=4)
    mask = np.zeros((32, 32, 1), np.uint8)
    mask[:, 16:] = 255
    job = client.stylize(img, opts(engine="identity", size=16), mask=ImageBuffer(32, 32, 1, "u8", mask.tobytes()))
    job.wait(timeout=30)
    assert job.result is not None and (job.result.width, job.result.height) == (16, 16)


def test_run_via_daemon_matches_in_process_bit_for_bit(daemon):
    from tests.support import engines as test_engines
    content = torch.rand(1, 3, 40, 56, generator=torch.Generator().manual_seed(0))
    o = opts(size=32)
    seen = []
    with daemon.client() as c:
        out = run_via_daemon(content, None, o, seen.append, client=c)
    ref = test_engines.stylize("identity", content, None, o)
    assert out.shape == ref.shape == (1, 3, 23, 32)
    assert torch.equal(out, ref) and seen and seen[-1].fraction == 1.0
    with daemon.client() as c, pytest.raises(DaemonJobError) as e:
        run_via_daemon(content, None, opts(engine="fail"), client=c)
    assert e.value.code == "internal"


@pytest.mark.parametrize("case,code", [
    ("bad_option", "bad_options"), ("unknown_field", "unknown_field"), ("unknown_type", "unknown_type"),
    ("too_large", "too_large"), ("huge_output", "too_large"), ("short_buffer", "bad_image"),
    ("extra_buffer", "extra_buffers"), ("bad_mask", "bad_image"), ("no_style", "engine_unavailable"),
    ("duplicate", "duplicate_job"), ("cancel_unknown", "unknown_job")])
def test_bad_requests_get_specific_errors(client, case, code):
    img, arr = rand_image(16, 16, 3)
    body = {"options": opts(size=16).to_dict(), "content": img.describe(0)}
    bufs = [img.data]
    mtype, job_id = "stylize", f"job-{case}-{time.monotonic_ns()}"
    if case == "bad_option":
        body["options"]["strength"] = 3.0
    elif case == "unknown_field":
        body["colour"] = "red"
    elif case == "unknown_type":
        mtype = "paint"
    elif case == "too_large":
        body["content"].update(width=4000, height=4000, stride=12000)
    elif case == "huge_output":
        body["options"]["max_side"] = 8000
    elif case == "short_buffer":
        bufs = [bytes(arr.tobytes()[:-3])]
    elif case == "extra_buffer":
        bufs.append(b"xx")
    elif case == "bad_mask":
        body["mask"] = ImageBuffer(8, 8, 1, "u8").describe(1)
        bufs.append(bytes(64))
    elif case == "no_style":
        body["options"]["engine"] = "strotss"       # real engine: not installed yet, or needs a style image
    elif case == "duplicate":
        first = client._submit("stylize", dict(body), bufs, job_id)
        first.wait(timeout=30)
    elif case == "cancel_unknown":
        with pytest.raises(ProtocolError) as e:
            client._request("cancel", {}, job_id=job_id)
        assert e.value.code == code
        return
    job = client._submit(mtype, body, bufs, job_id)
    ev = list(job.events(timeout=30))[-1]
    if case == "no_style" and ev.code == "bad_request":    # strotss is installed: then it wants a style image
        assert "style image" in ev.message
        return
    assert isinstance(ev, ErrorEvent) and ev.code == code, ev
    assert ev.message


def test_a_failing_or_oom_job_is_reported_and_the_next_job_runs(client):
    img, arr = rand_image(16, 16, 3)
    fail = client.stylize(img, opts(engine="fail", size=16))
    oom = client.stylize(img, opts(engine="oom", size=16))
    ok = client.stylize(img, opts(size=16))
    assert fail.wait(timeout=30).error[0] == "internal" and "always fails" in fail.error[1]
    assert oom.wait(timeout=30).error[0] == "out_of_memory"
    assert bytes(ok.wait(timeout=30).result.data) == arr.tobytes()


def test_cancel_stops_a_running_job_within_one_progress_step(client):
    img, _ = rand_image(16, 16, 3)
    job = client.stylize(img, opts(engine="sleep", size=16, steps=200, learning_rate=0.02))
    for ev in job.events(timeout=30):
        if isinstance(ev, ProgressEvent) and ev.fraction >= 0.05:
            job.cancel()
    assert job.cancelled and job.result is None
    info = job.info
    assert info["steps_at_cancel"] is not None and info["steps_done"] - info["steps_at_cancel"] <= 1, info
    assert info["steps_done"] < 200


def test_cancel_of_a_queued_job_answers_at_once(client):
    img, arr = rand_image(16, 16, 3)
    blocker = client.stylize(img, opts(engine="sleep", size=16, steps=100, learning_rate=0.02))
    queued = client.stylize(img, opts(size=16))
    queued.cancel()
    queued.wait(timeout=30)
    assert queued.cancelled and queued.info["steps_done"] == 0
    blocker.cancel()
    assert blocker.wait(timeout=30).cancelled


def test_eight_clients_twenty_jobs_each_get_their_own_results(daemon):
    results: dict[tuple[int, int], bool] = {}
    errors: list = []

    def run(ci: int) -> None:
        try:
            with daemon.client() as c:
                jobs = []
                for k in range(20):
                    img, arr = rand_image(16 + k % 5, 16 + ci, 4, seed=1000 * ci + k)
                    jobs.append((k, arr, c.stylize(img, opts(size=max(16 + k % 5, 16 + ci)))))
                for k, arr, job in jobs:
                    job.wait(timeout=60)
                    results[(ci, k)] = job.result is not None and bytes(job.result.data) == arr.tobytes()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors
    assert len(results) == 160 and all(results.values())


CHILD = textwrap.dedent("""
    import sys, time
    from impasto_protocol import StylizeOptions
    from impasto_protocol.client import Client
    from impasto_protocol.connection import read_connection_file
    from impasto_protocol.images import ImageBuffer
    from impasto_protocol.messages import ProgressEvent
    from impasto_protocol.messages import Accepted
    c = Client(read_connection_file(sys.argv[1]))
    job = c.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)),
                    StylizeOptions(engine="sleep", size=16, steps=2000, learning_rate=0.01))
    wanted = ProgressEvent if sys.argv[2] == "running" else Accepted
    for ev in job.events(timeout=30):
        if isinstance(ev, wanted):
            print(job.id, flush=True)
            break
    time.sleep(600)
""")


@pytest.mark.parametrize("state", ["running", "queued"])
def test_a_killed_clients_job_is_cancelled_within_two_seconds(daemon, client, state):
    """running: noticed when a progress send fails (the socket is gone); queued: when the 0.5 s queue-position
    message fails to send (missing heartbeats would catch both within 1.5 s too)."""
    blocker = None
    if state == "queued":
        blocker = client.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)),
                                 opts(engine="sleep", size=16, steps=1000, learning_rate=0.01))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(daemon.connection_file), state],
                             stdout=subprocess.PIPE, text=True)
    try:
        job_id = child.stdout.readline().strip()
        assert job_id, "child did not start its job"
        killed_at = time.time()
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 10
        summary = None
        while time.monotonic() < deadline:
            summary = next((j for j in client.status()["recent"] if j["job_id"] == job_id), None)
            if summary:
                break
            time.sleep(0.1)
        assert summary, "job still running 10 s after its client was killed"
        assert summary["state"] == "cancelled" and summary["reason"] == "client_gone", summary
        assert summary["cancel_requested_at"] - killed_at <= 2.0, summary
        assert summary["finished_at"] - killed_at <= 2.0 + 0.1, summary
    finally:
        if child.poll() is None:
            child.kill()
        if blocker is not None:
            blocker.cancel()
            blocker.wait(timeout=30)


def test_a_hung_clients_jobs_are_cancelled_by_missing_heartbeats(daemon, client):
    """SIGSTOP: the socket stays open, only the heartbeats stop."""
    blocker = client.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)),
                             opts(engine="sleep", size=16, steps=1000, learning_rate=0.01))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(daemon.connection_file), "queued"],
                             stdout=subprocess.PIPE, text=True)
    try:
        job_id = child.stdout.readline().strip()
        os.kill(child.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 15
        summary = None
        while time.monotonic() < deadline and summary is None:
            summary = next((j for j in client.status()["recent"] if j["job_id"] == job_id), None)
            time.sleep(0.1)
        assert summary and summary["state"] == "cancelled" and summary["reason"] == "client_gone", summary
    finally:
        child.kill()
        child.wait()
        blocker.cancel()
        blocker.wait(timeout=30)


def test_queued_jobs_hear_their_position(client):
    img, arr = rand_image(16, 16, 3)
    blocker = client.stylize(img, opts(engine="sleep", size=16, steps=100, learning_rate=0.02))
    queued = client.stylize(img, opts(size=16))
    positions = []
    deadline = time.monotonic() + 10
    while not positions and time.monotonic() < deadline:
        positions = [e.position for e in queued.poll() if isinstance(e, ProgressEvent) and e.position is not None]
        time.sleep(0.05)
    assert positions and positions[0] == 1          # behind the running blocker
    blocker.cancel()
    assert bytes(queued.wait(timeout=30).result.data) == arr.tobytes()


def test_status_command_reports_the_daemon(daemon):
    env = dict(os.environ, IMPASTO_RUNTIME_DIR=str(daemon.runtime_dir))
    out = subprocess.run([sys.executable, "-m", "impasto.cli", "status", "--connection-file",
                          str(daemon.connection_file)], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"pid {daemon.proc.pid}" in out.stdout and "identity" in out.stdout


def test_a_refused_request_raises_protocol_error_with_its_code(client):
    with pytest.raises(ProtocolError) as e:
        client._request("list_styles", {"thumbnails": "yes"})
    assert e.value.code == "bad_request" and "thumbnails" in e.value.message


def test_large_images_stream_both_ways_exactly(client):
    # 2048×2048 RGBA8 = 16 MiB: uploaded and returned in row-band chunk messages
    img, arr = rand_image(2048, 2048, 4, seed=9)
    job = client.stylize(img, opts(size=2048))
    job.wait(timeout=60)
    assert job.result is not None, job.error
    assert (job.result.width, job.result.height) == (2048, 2048) and bytes(job.result.data) == arr.tobytes()
    assert "encode_send" in job.info["timings"]          # the result came as chunks


def test_a_chunk_that_does_not_continue_the_upload_fails_the_job(client):
    img, arr = rand_image(2048, 2048, 4, seed=10)
    body = {"options": opts(size=2048).to_dict(), "content": {**img.describe(0), "buffer": "chunks"}}
    job = client._submit("stylize", body, [], None)
    client._send("chunk", {"image": "content", "offset": 5}, [b"abc"], job_id=job.id)
    ev = list(job.events(timeout=30))[-1]
    assert isinstance(ev, ErrorEvent) and ev.code == "bad_chunk", ev


def test_cancel_while_uploading(client):
    img, _ = rand_image(2048, 2048, 4, seed=11)
    body = {"options": opts(size=2048).to_dict(), "content": {**img.describe(0), "buffer": "chunks"}}
    job = client._submit("stylize", body, [], None)
    evs = job.poll()
    deadline = time.monotonic() + 10
    while not job.accepted and time.monotonic() < deadline:
        evs += job.poll()
        time.sleep(0.01)
    st = client.status()
    assert [j["job_id"] for j in st["uploading"]] == [job.id]     # not runnable before its pixels arrive
    assert job.id not in [j["job_id"] for j in st["queued"] + st["running"]]
    job.cancel()
    job.wait(timeout=30)
    assert job.cancelled and job.result is None
