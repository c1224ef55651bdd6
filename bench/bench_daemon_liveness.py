"""Daemon liveness figures: cancel latency of a running job, how fast a SIGKILLed client's job is cancelled, and
8 clients × 20 small jobs (throughput, all results checked).

    .venv/bin/python bench/bench_daemon_liveness.py [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path
import tempfile
import threading
import time

import numpy as np

from impasto_protocol import StylizeOptions
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import CancelledEvent, ProgressEvent
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the repository root, for tests.support
from tests.support.daemon import DaemonProcess

CHILD = """
import sys, time
from impasto_protocol import StylizeOptions
from impasto_protocol.client import Client
from impasto_protocol.connection import read_connection_file
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import Accepted, ProgressEvent
c = Client(read_connection_file(sys.argv[1]))
job = c.stylize(ImageBuffer(16, 16, 3, "u8", bytes(768)), StylizeOptions(engine="sleep", size=16, steps=5000,
                learning_rate=0.01))
for ev in job.events(timeout=30):
    if isinstance(ev, ProgressEvent if sys.argv[2] == "running" else Accepted):
        print(job.id, flush=True)
        break
time.sleep(600)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    img = ImageBuffer(16, 16, 3, "u8", bytes(768))
    with tempfile.TemporaryDirectory() as tmp, DaemonProcess(tmp) as d, d.client() as c:
        step = 0.05
        lat, extra_steps = [], []
        for _ in range(args.repeat):
            job = c.stylize(img, StylizeOptions(engine="sleep", size=16, steps=1000, learning_rate=step))
            t_cancel = None
            for ev in job.events(timeout=30):
                if isinstance(ev, ProgressEvent) and t_cancel is None:
                    t_cancel = time.perf_counter()
                    job.cancel()
                if isinstance(ev, CancelledEvent):
                    lat.append(time.perf_counter() - t_cancel)
                    extra_steps.append(ev.info["steps_done"] - ev.info["steps_at_cancel"])
        print(f"cancel of a running job: median {statistics.median(lat) * 1e3:.0f} ms, max {max(lat) * 1e3:.0f} ms "
              f"(progress interval {step * 1e3:.0f} ms); steps after the cancel arrived: {extra_steps}")

        for state in ("running", "queued"):
            kill_lat = []
            for _ in range(args.repeat):
                blocker = None
                if state == "queued":      # found by the 0.5 s queue-position message failing to send
                    blocker = c.stylize(img, StylizeOptions(engine="sleep", size=16, steps=1000, learning_rate=0.01))
                child = subprocess.Popen([sys.executable, "-c", CHILD, str(d.connection_file), state],
                                         stdout=subprocess.PIPE, text=True)
                job_id = child.stdout.readline().strip()
                t_kill = time.time()
                os.kill(child.pid, signal.SIGKILL)
                child.wait()
                while True:
                    s = next((j for j in c.status()["recent"] if j["job_id"] == job_id), None)
                    if s:
                        break
                    time.sleep(0.02)
                kill_lat.append((s["cancel_requested_at"] - t_kill, s["finished_at"] - t_kill, s["reason"]))
                if blocker is not None:
                    blocker.cancel()
                    blocker.wait(timeout=30)
            print(f"SIGKILLed client, its job {state} -> cancelled after (requested, finished) s: "
                  + ", ".join(f"({a:.2f}, {b:.2f}, {r})" for a, b, r in kill_lat))

        ok, errors = [], []

        def run(ci: int) -> None:
            try:
                with d.client() as cc:
                    jobs = []
                    for k in range(20):
                        arr = np.random.default_rng(100 * ci + k).integers(0, 256, (16 + ci, 16 + k % 5, 4), np.uint8)
                        jobs.append((arr, cc.stylize(ImageBuffer(16 + k % 5, 16 + ci, 4, "u8", arr.tobytes()),
                                                     StylizeOptions(engine="identity", size=max(16 + ci, 16 + k % 5)))))
                    for arr, job in jobs:
                        job.wait(timeout=120)
                        ok.append(job.result is not None and bytes(job.result.data) == arr.tobytes())
            except Exception as e:  # noqa: BLE001
                errors.append(repr(e))

        t0 = time.perf_counter()
        threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dt = time.perf_counter() - t0
        print(f"8 clients × 20 jobs: {sum(ok)}/160 correct, {len(errors)} errors, {dt:.2f} s ({160 / dt:.0f} jobs/s)")


if __name__ == "__main__":
    main()
