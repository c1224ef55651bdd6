"""Round trip of a 4096×4096 RGBA8 job through a CURVE daemon (``serve --listen``) against the plain loopback TCP
daemon, with and without compression (zlib level 1), on loopback.  Target (issue 18): CURVE's overhead ≤ 20 %.

    .venv/bin/python bench/bench_remote.py [--size 4096] [--repeat 5] [--image photo|noise]

One round trip = the upload (64 MiB, streamed in chunks), the weight-free ``identity`` engine, the result back (64 MiB)
and its check, measured by the client from submit to the last byte.  Every daemon runs the same test engines with
the same frame limit (TCP's), all are started first and the transports are measured in interleaved rounds, so each
sees the same machine load; the figure is the median per transport, and CURVE's overhead is the median of its
paired differences to plain TCP in the same round.  ``photo`` is a content photo upscaled (compressible like a
painting's canvas), ``noise`` uniform random bytes (the worst case: nothing compresses).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                 # the repository root, for tests.support

from impasto_protocol import StylizeOptions  # noqa: E402
from impasto_protocol.client import Client  # noqa: E402
from impasto_protocol.images import ImageBuffer  # noqa: E402
from tests.support.daemon import DaemonProcess  # noqa: E402
from tests.support.remote import RemoteDaemon, free_port  # noqa: E402

PHOTO = ROOT.parent / "shared" / "data" / "content" / "kodim01.png"


def test_image(kind: str, n: int) -> np.ndarray:
    if kind == "noise":
        return np.random.default_rng(0).integers(0, 256, size=(n, n, 4), dtype=np.uint8)
    from PIL import Image
    rgb = np.asarray(Image.open(PHOTO).convert("RGB").resize((n, n), Image.BICUBIC))
    return np.ascontiguousarray(np.concatenate([rgb, np.full((n, n, 1), 255, np.uint8)], axis=2))


def round_trip(client: Client, img: ImageBuffer, options: StylizeOptions, expect: bytes) -> float:
    client.poll_all()
    t0 = time.perf_counter()
    job = client.stylize(img, options).wait(timeout=600)
    dt = time.perf_counter() - t0
    assert job.result is not None, job.error
    assert bytes(job.result.data) == expect, "the result differs from the content"
    return dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--image", choices=("photo", "noise"), default="photo")
    args = ap.parse_args()
    n = args.size
    arr = test_image(args.image, n)
    img = ImageBuffer(n, n, 4, "u8", memoryview(arr).cast("B"))
    expect = arr.tobytes()
    options = StylizeOptions(engine="identity", size=n)          # type: ignore[arg-type]
    load = os.getloadavg()[0]
    print(f"image {args.image} {n}×{n} RGBA8 = {arr.nbytes / 2**20:.0f} MiB each way; load average {load:.2f}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    with tempfile.TemporaryDirectory() as tmp:
        plain = DaemonProcess(Path(tmp) / "plain", "--tcp")
        curve = RemoteDaemon(Path(tmp) / "curve", "127.0.0.1", free_port("127.0.0.1"))
        with plain, curve:
            profile = curve.invite("bench")
            curve_raw, curve_zlib = Client.connect(remote=profile), Client.connect(remote=profile)
            curve_raw.compression, curve_zlib.compression = None, "zlib"
            clients = {"plain tcp": plain.client(compression=None), "plain+zlib": plain.client(compression="zlib"),
                       "curve": curve_raw, "curve+zlib": curve_zlib}
            times: dict[str, list[float]] = {k: [] for k in clients}
            for c in clients.values():                  # warm-up (first job allocates, loads the engine)
                round_trip(c, img, options, expect)
            for _ in range(args.repeat):
                for name, c in clients.items():
                    times[name].append(round_trip(c, img, options, expect))
            curve_raw.close()
            curve_zlib.close()
    print(f"{'transport':<12} {'median s':>9} {'min s':>7} {'MiB/s':>7}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<12} {med:9.3f} {min(ts):7.3f} {2 * arr.nbytes / 2**20 / med:7.0f}")
    for curve, plain_name in (("curve", "plain tcp"), ("curve+zlib", "plain+zlib")):
        diffs = [c - p for c, p in zip(times[curve], times[plain_name])]
        base = statistics.median(times[plain_name])
        print(f"CURVE overhead ({curve} vs {plain_name}): median paired difference {statistics.median(diffs):+.3f} s "
              f"= {100 * statistics.median(diffs) / base:+.1f} % (target ≤ 20 %)")


if __name__ == "__main__":
    main()
