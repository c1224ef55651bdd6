"""The client as the editor plugins use it: event-loop integration (socket FD + poll_all, or job.poll from a
timer), previews and early tiles, heartbeats."""
from __future__ import annotations

import select
import time

import numpy as np
import pytest

from impasto_protocol import StylizeOptions
from impasto_protocol.client import Client, DaemonNotRunning
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import Accepted, ProgressEvent, ResultEvent, TileEvent
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with DaemonProcess(tmp_path_factory.mktemp("client")) as d:
        yield d


def test_driving_a_job_from_the_socket_fd_like_a_qsocketnotifier(daemon):
    """Wait on client.fileno() with select (what QSocketNotifier does), then poll_all; no blocking calls."""
    arr = np.random.default_rng(1).integers(0, 256, size=(40, 30, 4), dtype=np.uint8)
    with daemon.client() as c:
        job = c.stylize(ImageBuffer(30, 40, 4, "u8", arr.tobytes()), StylizeOptions(engine="identity", size=40))
        c.poll_all()                              # after sending: the FD is edge-triggered
        seen = []
        deadline = time.monotonic() + 30
        while not job.done and time.monotonic() < deadline:
            select.select([c.fileno()], [], [], 0.2)
            c.poll_all()
            seen += job.poll()
        seen += job.poll()                        # the job may have finished inside the first poll_all
        assert job.done and isinstance(seen[0], Accepted) and isinstance(seen[-1], ResultEvent)
        assert bytes(job.result.data) == arr.tobytes()


def test_timer_polling_sees_previews_losses_and_early_tiles(daemon):
    img = ImageBuffer(64, 48, 3, "u8", bytes(range(256)) * 36)
    with daemon.client() as c:
        job = c.stylize(img, StylizeOptions(engine="sleep", size=64, steps=4, learning_rate=0.01, preview_every=2))
        events = []
        while not job.done:                       # a QTimer calling job.poll() every 20 ms
            events += job.poll()
            time.sleep(0.02)
        events += job.poll()
        previews = [e.preview for e in events if isinstance(e, ProgressEvent) and e.preview is not None]
        assert previews and (previews[0].width, previews[0].height, previews[0].channels) == (64, 48, 3)
        assert bytes(previews[0].data) == bytes(img.data)
        assert any(isinstance(e, ProgressEvent) and e.losses and "step" in e.losses for e in events)

        tiled = c.stylize(img, StylizeOptions(engine="identity", size=64, tile_size=64))
        evs = list(tiled.events(timeout=30))
        tiles = [e for e in evs if isinstance(e, TileEvent)]
        assert tiles and not tiles[0].final and tiles[0].image.channels == 3
        assert bytes(tiled.result.data) == bytes(img.data)


def test_heartbeats_keep_a_quiet_client_alive(daemon):
    """A client that does not read for longer than the daemon's heartbeat timeout keeps its job (its heartbeat
    thread pings on its own socket)."""
    with daemon.client() as c:
        job = c.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)),
                        StylizeOptions(engine="sleep", size=16, steps=60, learning_rate=0.04))
        time.sleep(1.8)                            # > heartbeat_timeout (1 s), no reading
        job.wait(timeout=30)
        assert job.result is not None and not job.cancelled
        assert c.daemon_alive


def test_connect_without_daemon_raises(tmp_path):
    with pytest.raises(DaemonNotRunning, match="no daemon connection file"):
        Client.connect(tmp_path / "nothing.json", timeout=0.5)


def test_close_cancels_unfinished_jobs(daemon):
    c = daemon.client()
    job = c.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)),
                    StylizeOptions(engine="sleep", size=16, steps=500, learning_rate=0.01))
    job.poll()
    c.close()
    with daemon.client() as watcher:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            s = next((j for j in watcher.status()["recent"] if j["job_id"] == job.id), None)
            if s:
                break
            time.sleep(0.05)
    assert s and s["state"] == "cancelled" and s["reason"] == "requested", s
