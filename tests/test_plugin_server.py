"""The plugins' "server" setting (``impasto_plugin.servers``, shared by Krita and GIMP): the local daemon or a paired
remote server by name -- what a picker lists, what the artist reads when the name is unknown or the server silent,
and, against a real CURVE daemon on 127.0.0.2, a job followed to its result and a server vanishing mid-job."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest

CORE = str(Path(__file__).resolve().parents[1] / "plugins" / "core")      # install-plugin vendors it; tests take it
if CORE not in sys.path:                                                   # from the source tree
    sys.path.insert(0, CORE)

from impasto_plugin import servers  # noqa: E402
from impasto_plugin.errors import PluginError  # noqa: E402
from impasto_plugin.jobs import wait_for_result  # noqa: E402
from impasto_protocol import StylizeOptions  # noqa: E402
from impasto_protocol.client import REMOTE_DEAD_AFTER  # noqa: E402
from impasto_protocol.images import ImageBuffer  # noqa: E402
from impasto_protocol.remote import new_keypair, new_profile, save_remote  # noqa: E402
from tests.support.remote import RemoteDaemon, free_port  # noqa: E402

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def config(tmp_path, monkeypatch):
    d = tmp_path / "config"
    monkeypatch.setenv("IMPASTO_CONFIG_DIR", str(d))
    return d


def pair(name: str, endpoint: str = "tcp://10.0.0.5:5555") -> None:
    save_remote(new_profile(name, endpoint, new_keypair()[0]))


def u8(w: int, h: int) -> ImageBuffer:
    return ImageBuffer(w, h, 3, "u8", np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8).tobytes())


def test_local_is_empty_or_the_word_local():
    assert [servers.normalize(v) for v in (None, "", "  ", "local", "Local ", " studio ")] == [""] * 5 + ["studio"]
    assert not servers.is_remote("LOCAL") and servers.is_remote("studio")


def test_choices_list_local_then_the_paired_servers_and_keep_an_unknown_setting(config):
    assert servers.choices() == [servers.Choice("", servers.LOCAL_TITLE)]           # no remotes folder yet
    pair("studio", "tcp://gpu.example:5555")
    pair("Attic", "tcp://[fd00::2]:6000")
    got = servers.choices("studio")
    assert [c.name for c in got] == ["", "Attic", "studio"]
    assert got[2].title == "studio (gpu.example:5555)" and got[2].endpoint == "tcp://gpu.example:5555"
    assert got[1].title == "Attic ([fd00::2]:6000)"
    gone = servers.choices("old-box")[-1]                    # a saved setting whose profile was removed
    assert gone == servers.Choice("old-box", "old-box (not paired here)", paired=False)
    assert servers.choices("local") == servers.choices("")


def test_an_unknown_server_says_which_are_paired_and_how_to_pair(config):
    pair("studio")
    with pytest.raises(servers.UnknownServer) as e:
        servers.connect("nope", autostart=True)
    msg = str(e.value)
    assert "no server named 'nope' is paired" in msg and "(paired: studio)" in msg
    assert "impasto remote add nope --invitation LINE" in msg and "docs/remote.md" in msg and "Local" in msg
    assert e.value.server == "nope"
    with pytest.raises(servers.UnknownServer, match="not a server name"):
        servers.connect("two words")


def test_an_unreadable_profile_is_named_with_the_fix(config):
    pair("studio")
    os.chmod(config / "remotes" / "studio.json", 0o644)
    with pytest.raises(servers.UnknownServer, match="profile of the server 'studio' cannot be used.*chmod 600"):
        servers.connect("studio")


def test_a_silent_server_is_reported_with_what_to_check_and_nothing_is_started(config, monkeypatch, tmp_path):
    import impasto_protocol.client as client_mod
    monkeypatch.setattr(client_mod, "spawn_daemon", lambda *a, **k: pytest.fail("nothing starts for a remote"))
    monkeypatch.setenv("IMPASTO_RUNTIME_DIR", str(tmp_path / "run"))
    pair("studio", f"tcp://127.0.0.2:{free_port('127.0.0.2')}")          # nobody listens there
    t0 = time.monotonic()
    with pytest.raises(servers.ServerError) as e:
        servers.connect("studio", timeout=1.0, autostart=True)
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    assert msg.startswith("The server 'studio' at tcp://127.0.0.2:") and "did not answer within 1 s" in msg
    assert "serve --listen" in msg and "firewall" in msg and "allow-list" in msg
    assert e.value.server == "studio" and not isinstance(e.value, servers.UnknownServer)


def test_no_local_daemon_is_a_server_error_with_the_clients_words(tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    monkeypatch.setenv("IMPASTO_RUNTIME_DIR", str(run))
    with pytest.raises(servers.ServerError) as e:
        servers.connect("local", timeout=0.5)
    assert e.value.server == "" and "daemon.json" in e.value.detail
    assert str(e.value).startswith("the Impasto daemon is not running (")


def test_status_lines():
    hello = {"devices": ["cuda:0"]}
    assert servers.connected_text("", {"devices": ["cpu"]}) == "Connected · CPU"
    assert servers.connected_text("studio", hello) == "Connected to studio · cuda:0"
    assert "daemon.log" in servers.lost_text("local")
    lost = servers.lost_text("studio", 5.0)
    assert lost.startswith("the server 'studio' stopped answering (nothing for 5 s); nothing was changed")
    assert "Press Connect" in servers.disconnected_text("studio")
    assert "Start daemon" in servers.disconnected_text("")


def test_a_job_on_a_real_remote_server_then_the_server_vanishes(config, tmp_path):
    """Through the core only: the setting's name -> CURVE to 127.0.0.2 -> progress and the result; then the server
    is killed mid-job and ``wait_for_result`` (what GIMP's procedures follow jobs with) reports it by name, in the
    docker's words, within the heartbeat deadline."""
    d = RemoteDaemon(tmp_path / "srv", "127.0.0.2", free_port("127.0.0.2")).start()
    try:
        save_remote(d.invite("studio"))
        assert [c.name for c in servers.choices()] == ["", "studio"]
        client = servers.connect("studio", timeout=10)
        try:
            assert client.info.curve and client.info.ip == "127.0.0.2"
            assert client.hello()["remote_client"] == "studio"
            seen = []
            img = u8(64, 48)
            out, info = wait_for_result(client.stylize(img, StylizeOptions(engine="sleep", steps=5, size=64,
                                                                           learning_rate=0.02)),
                                        lambda f, stage: seen.append((round(f, 2), stage)), timeout=30)
            assert bytes(out.data) == bytes(img.data) and (1.0, "step 5/5") in seen
            job = client.stylize(img, StylizeOptions(engine="sleep", steps=400, learning_rate=0.05))
            while not job.accepted:
                job.poll()
                time.sleep(0.02)
            d.proc.kill()
            t0 = time.monotonic()
            with pytest.raises(PluginError) as e:
                wait_for_result(job, lambda f, stage: None)
            waited = time.monotonic() - t0
        finally:
            client.close(cancel_jobs=False)
    finally:
        d.stop()
    assert str(e.value).startswith(f"the server 'studio' stopped answering (nothing for {REMOTE_DEAD_AFTER:.0f} s); "
                                   "nothing was changed. Check that it is still running")
    assert waited < REMOTE_DEAD_AFTER + 3, waited
