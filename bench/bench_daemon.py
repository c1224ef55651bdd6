"""Round-trip overhead of the daemon: a 4096×4096 RGBA8 identity job through `impasto serve` vs the same work
in-process (wire image -> tensor -> engine -> wire image).  Target: overhead ≤ 150 ms.

    .venv/bin/python bench/bench_daemon.py [--size 4096] [--repeat 5] [--ipc]

Runs in-process and daemon jobs interleaved (so both see the same load on a shared machine) and prints both medians
and the overhead (median of the paired differences).  Large images stream in 4 MiB row bands both ways, decoded
and encoded band by band while the rest is in flight, so most of the transport hides behind the conversions.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from impasto_protocol import StylizeOptions
from impasto_protocol.images import ImageBuffer
from impasto.daemon.convert import PixelFormat, buffer_to_tensor, tensor_to_array
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the repository root, for tests.support
from tests.support.engines import stylize as test_stylize
from tests.support.daemon import DaemonProcess


def in_process(img: ImageBuffer, options: StylizeOptions) -> np.ndarray:
    t = buffer_to_tensor(img)
    out = test_stylize("identity", t, None, options)
    return tensor_to_array(out, PixelFormat.of(img))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--ipc", action="store_true", help="use ipc:// instead of tcp://127.0.0.1")
    args = ap.parse_args()
    n = args.size
    arr = np.random.default_rng(0).integers(0, 256, size=(n, n, 4), dtype=np.uint8)
    img = ImageBuffer(n, n, 4, "u8", memoryview(arr).cast("B"))
    options = StylizeOptions(engine="identity", size=n)          # type: ignore[arg-type]
    print(f"image {n}×{n} RGBA8 = {arr.nbytes / 2**20:.0f} MiB; torch threads {torch.get_num_threads()}")

    with tempfile.TemporaryDirectory() as tmp:
        extra = ["--ipc", str(Path(tmp) / "d.sock")] if args.ipc else []
        with DaemonProcess(tmp, *extra) as d:
            with d.client() as c:
                # warm-up, and the exactness check
                ref = in_process(img, options)
                assert ref.tobytes() == arr.tobytes()
                job = c.stylize(img, options).wait(timeout=300)
                assert job.result is not None, job.error
                assert bytes(job.result.data) == arr.tobytes(), "daemon result differs"
                # interleaved pairs, so both sides see the same machine load
                in_times, rt, server, in_cpu, rt_cpu = [], [], [], [], []
                daemon_proc = psutil.Process(d.proc.pid)

                def daemon_cpu() -> float:
                    t = daemon_proc.cpu_times()
                    return t.user + t.system

                for _ in range(args.repeat):
                    c0, t0 = time.process_time(), time.perf_counter()
                    in_process(img, options)
                    in_times.append(time.perf_counter() - t0)
                    in_cpu.append(time.process_time() - c0)
                    c.poll_all()
                    c0, d0, t0 = time.process_time(), daemon_cpu(), time.perf_counter()
                    job = c.stylize(img, options).wait(timeout=300)
                    rt.append(time.perf_counter() - t0)
                    rt_cpu.append(time.process_time() - c0 + daemon_cpu() - d0)
                    assert job.result is not None, job.error
                    server.append(job.info["seconds"])
                transport = d.info.endpoint.split(":", 1)[0]
    diffs = [r - i for r, i in zip(rt, in_times)]
    ms = lambda xs: ", ".join(f"{x * 1e3:.0f}" for x in xs)  # noqa: E731
    print(f"transport           {transport}")
    print(f"in-process          {statistics.median(in_times) * 1e3:8.1f} ms  (median; runs: {ms(in_times)})")
    print(f"daemon round trip   {statistics.median(rt) * 1e3:8.1f} ms  (median; runs: {ms(rt)})")
    print(f"daemon job time     {statistics.median(server) * 1e3:8.1f} ms  (inside the worker after the upload: "
          f"engine + encode + send)")
    print(f"overhead (median of paired round trip - in-process)  {statistics.median(diffs) * 1e3:8.1f} ms  "
          f"(target ≤ 150; pairs: {ms(diffs)})")
    print(f"overhead (difference of medians)                     "
          f"{(statistics.median(rt) - statistics.median(in_times)) * 1e3:8.1f} ms")
    print(f"overhead (difference of best runs; least disturbed by other load)  "
          f"{(min(rt) - min(in_times)) * 1e3:8.1f} ms  (best: daemon {min(rt) * 1e3:.0f}, in-process "
          f"{min(in_times) * 1e3:.0f})")
    print(f"CPU time (load-independent): in-process {statistics.median(in_cpu) * 1e3:.0f} ms, daemon path "
          f"(client + daemon processes) {statistics.median(rt_cpu) * 1e3:.0f} ms, extra "
          f"{(statistics.median(rt_cpu) - statistics.median(in_cpu)) * 1e3:.0f} ms")
    print(f"machine load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
