"""Fuzz a real daemon with 20 000 messages: half from the fixed categories (random frames, truncated/extra frames,
mutated JSON, wrong sizes, huge dimensions, bad signatures, replays...), half re-signed structural mutations of valid
requests of every kind (they reach the handlers), then check it is alive and still serves a valid job exactly.

    .venv/bin/python bench/bench_daemon_fuzz.py [--n 20000] [--resigned 0.5] [--seed 0]

Prints messages per category, what was answered with which code, the daemon's own counts (``internal`` among them:
a handler that crashed), the daemon's memory, and the failures (none expected).  Exit status 1 on any failure.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
import tempfile
import time

import numpy as np

from impasto_protocol import StylizeOptions
from impasto_protocol.images import ImageBuffer
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the repository root, for tests.support
from tests.support.fuzz import run_fuzz
from tests.support.daemon import DaemonProcess


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--resigned", type=float, default=0.5, help="fraction of re-signed mutations")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, DaemonProcess(tmp, "--max-pixels", "4000000") as d:
        r = run_fuzz(d.info, n=args.n, seed=args.seed, resigned=args.resigned)
        total = sum(r.sent.values())
        print(f"{total} messages in {r.seconds:.1f} s ({total / r.seconds:.0f}/s)")
        print(f"{'category':<20} {'sent':>6} {'answered':>9}")
        for cat in sorted(r.sent):
            print(f"{cat:<20} {r.sent[cat]:>6} {r.answered.get(cat, 0):>9}")
        print(f"bad_header replies (no parent): {r.answered.get('bad_header(no parent)', 0)}")
        print("reply codes:", ", ".join(f"{k}={v}" for k, v in sorted(r.codes.items())))
        alive = d.alive()
        with d.client() as c:
            st = c.status()
            print("daemon counted dropped (unanswered):", st["dropped"])
            print("daemon counted refused (answered):  ", st["refused"])
            internal = st["dropped"].get("internal", 0) + st["refused"].get("internal", 0) + r.codes.get("internal", 0)
            print(f"internal errors: {internal}; daemon RSS {d.rss_mib():.0f} MiB")
            arr = np.random.default_rng(0).integers(0, 256, size=(64, 48, 4), dtype=np.uint8)
            job = c.stylize(ImageBuffer(48, 64, 4, "u8", arr.tobytes()), StylizeOptions(engine="identity", size=64))
            job.wait(timeout=60)
            valid_ok = job.result is not None and bytes(job.result.data) == arr.tobytes()
            # and a real engine (Gatys, VGG19 on this machine's device) still runs a job to its result
            style = np.random.default_rng(1).integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
            t0 = time.perf_counter()
            real = c.stylize(ImageBuffer(48, 64, 4, "u8", arr.tobytes()), StylizeOptions(engine="gatys", size=48,
                             steps=3), style=ImageBuffer(48, 48, 3, "u8", style.tobytes())).wait(timeout=600)
            real_ok = real.result is not None and (real.result.width, real.result.height) == (36, 48)
            print(f"real Gatys job after fuzzing: {'ok' if real_ok else real.error} in {time.perf_counter() - t0:.1f} s")
        print(f"daemon alive after fuzzing: {alive}; valid job afterwards exact: {valid_ok}")
        print(f"failures: {len(r.failures)}")
        for f in r.failures[:30]:
            print("  ", f)
        return 0 if (r.ok and alive and valid_ok and real_ok and not internal) else 1


if __name__ == "__main__":
    sys.exit(main())
