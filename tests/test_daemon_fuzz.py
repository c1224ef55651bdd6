"""Fuzzing a real daemon: it never crashes or hangs, answers exactly the signed bad requests with specific
errors, drops the rest unanswered, and afterwards still serves a valid job correctly."""
from __future__ import annotations

import numpy as np
import pytest

from impasto_protocol import StylizeOptions
from impasto_protocol.images import ImageBuffer
from tests.support.fuzz import run_fuzz
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(180)


def test_fuzz_2000_messages_then_a_valid_job(tmp_path):
    with DaemonProcess(tmp_path, "--max-pixels", "4000000") as d:
        report = run_fuzz(d.info, n=2000, seed=1234)
        assert report.ok, "\n".join(report.failures[:20])
        assert sum(report.sent.values()) >= 2000
        # every category was exercised, and the signed ones were answered
        for cat in ("garbage", "unsigned", "bad_signature", "tampered", "truncated", "replay", "huge_dims",
                    "wrong_size", "mutated_content", "mutated_header", "unknown_type", "stale", "version"):
            assert report.sent[cat] > 0, cat
        assert report.answered.get("garbage", 0) == report.answered.get("bad_signature", 0) == 0
        assert report.codes["too_large"] > 0 and report.codes["replay"] > 0 and report.codes["bad_header"] > 0
        assert d.alive(), d.log()
        with d.client() as c:
            st = c.status()
            assert st["dropped"].get("bad_signature", 0) > 0
            arr = np.random.default_rng(0).integers(0, 256, size=(20, 30, 4), dtype=np.uint8)
            job = c.stylize(ImageBuffer(30, 20, 4, "u8", arr.tobytes()), StylizeOptions(engine="identity", size=30))
            job.wait(timeout=30)
            assert job.result is not None and bytes(job.result.data) == arr.tobytes()


def test_resigned_mutations_never_crash_a_handler(tmp_path):
    """Valid requests of every kind, structurally mutated and signed with the real key, reach the handlers: each
    gets one answer, none is ``internal``, and the daemon still serves a job."""
    with DaemonProcess(tmp_path, "--max-pixels", "4000000") as d:
        report = run_fuzz(d.info, n=1500, seed=99, resigned=1.0)
        assert report.ok, "\n".join(report.failures[:20])
        assert report.sent["resigned"] >= 1500 and report.codes.get("internal", 0) == 0
        assert len([c for c in report.codes if c not in ("accepted", "progress", "result")]) >= 5
        with d.client() as c:
            st = c.status()
            assert st["refused"].get("internal", 0) == 0 and st["dropped"].get("internal", 0) == 0
            arr = np.random.default_rng(1).integers(0, 256, size=(20, 30, 4), dtype=np.uint8)
            job = c.stylize(ImageBuffer(30, 20, 4, "u8", arr.tobytes()), StylizeOptions(engine="identity", size=30))
            job.wait(timeout=30)
            assert job.result is not None and bytes(job.result.data) == arr.tobytes()
