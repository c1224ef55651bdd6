"""Krita plugin: job state, ETA and settings -> options, without Krita or a daemon."""
import pytest
from krita_plugin_support import PLUGIN_DIR  # noqa: F401

from impasto_plugin.jobs import EtaEstimator, JobTracker, State, format_eta
from impasto_krita.settings import Settings
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import (Accepted, CancelledEvent, ErrorEvent, ProgressEvent, ResultEvent,
                                       TileEvent)
from impasto_protocol.options import KeypointPair, OptionsError


class FakeJob:
    def __init__(self, events=()):
        self.pending = list(events)
        self.cancelled = False

    def poll(self):
        out, self.pending = self.pending, []
        return out

    def cancel(self):
        self.cancelled = True
        self.pending.append(CancelledEvent())


class RecordingSink:
    def __init__(self, fail_on_result=False):
        self.calls = []
        self.fail = fail_on_result

    def on_tile(self, ev):
        self.calls.append(("tile", ev.x, ev.y))

    def on_result(self, ev):
        if self.fail:
            raise RuntimeError("boom")
        self.calls.append(("result",))

    def on_abort(self, reason):
        self.calls.append(("abort", reason))


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def img():
    return ImageBuffer(1, 1, 4, "u8", bytes(4))


def test_success_path_calls_tile_then_result():
    clock = Clock()
    sink = RecordingSink()
    job = FakeJob([Accepted("j", 1), ])
    t = JobTracker(job, "stylize", "Stylize", sink, clock=clock)
    assert t.pump() and t.state is State.QUEUED and "1 job(s) ahead" in t.status_text()
    job.pending += [ProgressEvent(0.1, "scale 1"), TileEvent(0, 0, img())]
    clock.t = 1.0
    t.pump()
    assert t.state is State.RUNNING and t.fraction == pytest.approx(0.1)
    job.pending += [ProgressEvent(0.55, "scale 2")]
    clock.t = 10.0
    t.pump()
    assert t.eta_s == pytest.approx(9 * 0.45 / 0.45)   # 9 s for 0.45 -> 0.45 left
    assert "scale 2" in t.status_text() and "s left" in t.status_text()
    job.pending += [ResultEvent(img(), {"engine": "gatys"})]
    clock.t = 12.0
    assert not t.pump()
    assert t.state is State.DONE and sink.calls == [("tile", 0, 0), ("result",)]
    assert "done in 12.0 s" in t.status_text()


def test_error_and_cancel_abort_the_sink():
    sink = RecordingSink()
    t = JobTracker(FakeJob([ErrorEvent("out_of_memory", "try a smaller size")]), "stylize", "Stylize", sink)
    t.pump()
    assert t.state is State.FAILED and sink.calls == [("abort", "try a smaller size")]
    assert "failed: try a smaller size" in t.status_text()
    sink2 = RecordingSink()
    job = FakeJob([ProgressEvent(0.2)])
    t2 = JobTracker(job, "stylize", "Stylize", sink2)
    t2.pump()
    t2.cancel()
    assert job.cancelled and t2.state is State.CANCELLING
    t2.pump()
    assert t2.state is State.CANCELLED and sink2.calls == [("abort", "cancelled")]
    assert "nothing was changed" in t2.status_text()


def test_failure_while_inserting_fails_the_job_and_cleans_up():
    sink = RecordingSink(fail_on_result=True)
    job = FakeJob([ResultEvent(img())])
    t = JobTracker(job, "stylize", "Stylize", sink)
    t.pump()
    assert t.state is State.FAILED and "could not insert the result: boom" in t.message
    assert sink.calls[-1][0] == "abort"


def test_lost_connection_is_a_failure_not_a_traceback():
    class Broken(FakeJob):
        def poll(self):
            raise ConnectionError("gone")
    t = JobTracker(Broken(), "stylize", "Stylize", RecordingSink())
    assert not t.pump()
    assert t.state is State.FAILED and "lost the connection" in t.message


def test_eta_needs_progress_and_formats():
    clock = Clock()
    eta = EtaEstimator(clock)
    assert eta.update(0.0) is None
    clock.t = 0.2
    assert eta.update(0.5) is None            # too early to tell
    clock.t = 5.0
    assert eta.update(0.5) == pytest.approx(5.0)
    assert format_eta(None) == "" and format_eta(42) == "42 s left"
    assert format_eta(125) == "2 min 05 s left" and format_eta(3720) == "1 h 02 min left"


def test_settings_to_options_and_names():
    s = Settings(engine="gatys", style_source="file", style_file="/x/Starry Night.jpg", size=512)
    o = s.to_options(300)
    assert o.max_side == 300 and o.size == 300 and o.engine == "gatys" and o.keypoint_mode == "none"
    assert s.layer_name() == "Starry Night · Gatys"
    s.output_mode, s.max_side = "max_side", 200
    assert s.to_options(3000).max_side == 200 and s.to_options(3000).size == 200
    assert s.to_options(3000, preview=True).max_side == 256
    mt = Settings(engine="mt", style_name="mosaic")
    assert mt.to_options(64).style_name == "mosaic" and mt.layer_name() == "mosaic · MT"
    assert mt.layer_name("Mosaic") == "Mosaic · MT" and s.layer_name("ignored") == "Starry Night · Gatys"
    assert not mt.needs_style_image
    with pytest.raises(OptionsError):
        Settings(engine="mt").to_options(64)


def test_dst_keypoint_modes():
    kp = [KeypointPair((1.0, 2.0), (3.0, 4.0))]
    d = Settings(engine="dst", keypoint_mode="markers")
    o = d.to_options(100, kp)
    assert o.keypoint_mode == "markers" and o.keypoints == kp
    with pytest.raises(OptionsError, match="marker pairs"):
        d.to_options(100, [])
    d.keypoint_mode = "both"
    assert d.to_options(100, []).keypoint_mode == "auto"    # no markers: automatic only
    assert Settings(engine="gatys", keypoint_mode="markers").to_options(100, kp).keypoints == []


def test_settings_json_tolerates_junk():
    s = Settings(engine="strotss", strength=0.5)
    assert Settings.from_json(s.to_json()) == s
    assert Settings.from_json("not json") == Settings()
    assert Settings.from_json('{"engine": 3, "unknown": 1, "size": 256}') == Settings(size=256)


def test_missing_pyzmq_says_what_to_run(monkeypatch):
    import sys
    from impasto_plugin import deps
    monkeypatch.setitem(sys.modules, "zmq", None)                  # import zmq -> ImportError
    msg = deps.zmq_problem("krita")
    assert msg is not None and "impasto install-plugin krita --python-version" in msg
    assert f"{sys.version_info.major}.{sys.version_info.minor}" in msg
