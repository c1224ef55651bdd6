"""Starting, finding and stopping the daemon: connection file, stale files, autostart, shutdown, SIGTERM, limits."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import zmq

from impasto_protocol import StylizeOptions
from impasto_protocol.client import Client, DaemonNotRunning, open_socket
from impasto_protocol.connection import ConnectionInfo, new_key, read_connection_file, write_connection_file
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import ProgressEvent
from impasto_protocol.wire import Signer, make_header, serialize
from tests.support.daemon import DaemonProcess, serve_command

pytestmark = pytest.mark.timeout(180)


def _cli(*args: str, runtime: os.PathLike) -> subprocess.CompletedProcess:
    env = dict(os.environ, IMPASTO_RUNTIME_DIR=str(runtime))
    return subprocess.run([sys.executable, "-m", "impasto.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _wait_exit(proc: subprocess.Popen, timeout: float = 30) -> int:
    return proc.wait(timeout)


def _start_sleep_job(c: Client):
    job = c.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)),
                    StylizeOptions(engine="sleep", size=16, steps=1000, learning_rate=0.01))
    for ev in job.events(timeout=30):
        if isinstance(ev, ProgressEvent):
            return job
    raise AssertionError("sleep job never progressed")


def test_shutdown_message_cancels_jobs_and_removes_the_connection_file(tmp_path):
    d = DaemonProcess(tmp_path).start()
    assert (os.stat(d.connection_file).st_mode & 0o777) == 0o600
    c = d.client()
    job = _start_sleep_job(c)
    other = d.client()
    reply = other.shutdown()
    assert reply["jobs"] == 1
    job.wait(timeout=30)
    assert job.cancelled and job.info and job.info["steps_done"] < 1000
    assert next(iter([job])).cancelled
    assert _wait_exit(d.proc) == 0
    assert not d.connection_file.exists()
    d.stop()


def test_sigterm_is_a_graceful_shutdown(tmp_path):
    d = DaemonProcess(tmp_path).start()
    c = d.client()
    job = _start_sleep_job(c)
    d.proc.send_signal(signal.SIGTERM)
    job.wait(timeout=30)
    assert job.cancelled
    assert _wait_exit(d.proc) == 0 and not d.connection_file.exists()
    d.stop()


def test_stale_file_is_detected_and_replaced_and_serve_stop(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "daemon.json"
    write_connection_file(ConnectionInfo("tcp", "127.0.0.1", 1, "", new_key(), dead.pid), path)
    with pytest.raises(DaemonNotRunning, match="stale"):
        Client.connect(path, timeout=1.0)
    st = _cli("status", "--connection-file", str(path), runtime=tmp_path)
    assert st.returncode == 1 and "stale" in st.stdout
    with DaemonProcess(tmp_path) as d:          # serve replaces the stale file
        info = read_connection_file(path)
        assert info.pid == d.proc.pid
        again = _cli("serve", "--connection-file", str(path), runtime=tmp_path)
        assert again.returncode == 2 and "already running" in again.stderr
        stop = _cli("serve", "--stop", "--connection-file", str(path), runtime=tmp_path)
        assert stop.returncode == 0, stop.stderr
        assert _wait_exit(d.proc) == 0 and not path.exists()


def test_client_autostarts_a_daemon(tmp_path):
    path = tmp_path / "daemon.json"
    cmd = serve_command()
    with pytest.raises(DaemonNotRunning):
        Client.connect(path, timeout=1.0)
    c = Client.connect(path, autostart=True, serve_command=cmd, autostart_timeout=120)
    try:
        info = c.hello()
        assert "identity" in info["engines"] and read_connection_file(path).pid == info["pid"]
        c.shutdown()
    finally:
        c.close()
    deadline = time.monotonic() + 30
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not path.exists()


def test_oversized_frames_disconnect_the_sender_and_the_daemon_lives_on(tmp_path):
    with DaemonProcess(tmp_path, "--max-message-mb", "1") as d:
        ctx = zmq.Context.instance()
        s = open_socket(ctx, d.info)          # admitted (PLAIN credentials): only the frame size is at fault
        signer = Signer(d.info.key)
        big = bytes(2 << 20)
        body = {"options": StylizeOptions(engine="identity", size=1024).to_dict(),
                "content": ImageBuffer(1024, 512, 4, "u8", big).describe(0)}
        s.send_multipart(serialize(signer, make_header("stylize", "x", "j1"), body, [big]))
        assert s.poll(1500) == 0            # no answer: the frame was over ZMQ_MAXMSGSIZE, the peer was dropped
        s.close(0)
        with d.client() as c:
            assert c.hello()["limits"]["max_message_bytes"] == 1 << 20
        assert d.alive()


@pytest.mark.skipif(sys.platform == "win32", reason="ipc:// needs Unix domain sockets")
def test_ipc_transport(tmp_path):
    sock = tmp_path / "s.sock"
    with DaemonProcess(tmp_path, "--ipc", str(sock)) as d:
        assert d.info.transport == "ipc" and d.info.endpoint == f"ipc://{sock}"
        assert (os.stat(sock).st_mode & 0o777) == 0o600
        with d.client() as c:
            job = c.stylize(ImageBuffer(16, 16, 3, "u8", bytes(range(256)) * 3), StylizeOptions(engine="identity",
                                                                                                 size=16))
            assert bytes(job.wait(timeout=30).result.data) == bytes(range(256)) * 3


def test_shutdown_can_let_running_jobs_finish(tmp_path):
    d = DaemonProcess(tmp_path).start()
    c = d.client()
    job = c.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)),
                    StylizeOptions(engine="sleep", size=16, steps=10, learning_rate=0.05))
    other = d.client()
    assert other.shutdown(cancel_jobs=False)["cancel_jobs"] is False
    late = other.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)), StylizeOptions(engine="identity", size=16))
    assert late.wait(timeout=30).error[0] == "shutting_down"
    job.wait(timeout=30)
    assert job.result is not None and not job.cancelled
    assert _wait_exit(d.proc) == 0 and not d.connection_file.exists()
    d.stop()


def test_a_client_waiting_on_a_job_learns_that_the_daemon_died(tmp_path):
    d = DaemonProcess(tmp_path).start()
    c = d.client()
    job = _start_sleep_job(c)
    d.proc.send_signal(signal.SIGKILL)
    with pytest.raises(DaemonNotRunning, match="stopped answering"):
        job.wait(timeout=30)
    c.close()
    d.stop()
