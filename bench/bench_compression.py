"""Compression of image buffers (protocol 1.1, docs/remote.md): zlib figures, and daemon round trips with it on/off.

    .venv/bin/python bench/bench_compression.py [--photo ../shared/data/content/kodim23.png] [--size 4096]
                                                [--levels 1,3,6,9] [--repeat 3] [--transports ipc,tcp]
                                                [--images photo8,photo16,noise8] [--links 100mbit,1gbit]
                                                [--remote-repeat 2] [--skip-codec] [--skip-daemon] [--skip-remote]

Images, all size x size RGBA: ``photo8`` (a photo upscaled with Pillow's bicubic filter, opaque alpha), ``photo16``
(the same photo upscaled in float and quantized to 16 bits, so the low bytes carry interpolation, not zeros) and
``noise8`` (uniform random bytes: the worst case, incompressible).

1. Codec, per image and zlib level, on the 4 MiB pieces a streamed upload sends: the ratio deflate reaches, the
   ratio actually sent (``compress_buffer``: a piece goes raw unless it is >= 1/16 smaller; a sample is tried
   first), compress MB/s on one thread and on the wire module's thread pool (``compress_ahead``, as the client
   streams), and inflate MB/s through the receiver's bounded path (``wire._inflate``).  MB/s are of raw bytes.
2. Round trips through a real local daemon (tests/support: the ``identity`` engine): upload + job + result, with
   ``Client(compression=None)`` and ``"zlib"`` (level 1) interleaved, medians of ``--repeat``; the bytes that
   crossed the socket both ways; and a *model* of a remote link: the local round trip plus those bytes at 50 Mbit/s
   and 1 Gbit/s (no overlap assumed, so an upper bound).
3. The same against a remote CURVE server (``serve --listen``) in a network namespace behind a veth pair shaped
   with ``tc tbf`` to each ``--links`` rate, both ways: the remote case measured (needs root and iproute2, else
   skipped with the reason; tests/support/remote.py).
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
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                                    # the repository root, for tests.support

from impasto_protocol import StylizeOptions, client as client_mod, wire  # noqa: E402
from impasto_protocol.client import Client  # noqa: E402
from impasto_protocol.images import ImageBuffer  # noqa: E402
from impasto_protocol.wire import Compressed, Compression, compress_ahead, compress_buffer  # noqa: E402
from tests.support.daemon import DaemonProcess  # noqa: E402

PIECE = 4 << 20
LINKS = {"50 Mbit/s": 50e6 / 8, "1 Gbit/s": 1e9 / 8}


def load_images(photo: Path, n: int) -> dict[str, np.ndarray]:
    src = Image.open(photo).convert("RGB")
    rgb8 = np.asarray(src.resize((n, n), Image.BICUBIC))
    alpha8 = np.full((n, n, 1), 255, np.uint8)
    t = torch.from_numpy(np.asarray(src, np.float32) / 255).permute(2, 0, 1)[None]
    up = F.interpolate(t, size=(n, n), mode="bicubic", align_corners=False).clamp_(0, 1)[0].permute(1, 2, 0)
    rgb16 = (up.numpy() * 65535).round().astype(np.uint16)
    return {"photo8": np.ascontiguousarray(np.concatenate([rgb8, alpha8], -1)),
            "photo16": np.ascontiguousarray(np.concatenate([rgb16, np.full((n, n, 1), 65535, np.uint16)], -1)),
            "noise8": np.random.default_rng(0).integers(0, 256, size=(n, n, 4), dtype=np.uint8)}


def mbps(nbytes: int, seconds: float) -> float:
    return nbytes / seconds / 1e6 if seconds > 0 else float("inf")


def codec_table(images: dict[str, np.ndarray], levels: list[int]) -> None:
    print(f"\n1. zlib on {PIECE >> 20} MiB pieces (MB/s of raw bytes; pool = {wire.POOL_THREADS} "
          f"threads on {os.cpu_count()} CPUs)")
    print(f"{'image':8} {'level':>5} {'deflate':>8} {'sent':>6} {'compress':>9} {'pool':>7} {'inflate':>8}")
    for name, arr in images.items():
        mv = memoryview(arr).cast("B")
        pieces = [mv[o:o + PIECE] for o in range(0, mv.nbytes, PIECE)]
        n = mv.nbytes
        for level in levels:
            comp = Compression("zlib", level)
            deflate_ratio = n / sum(len(wire.zlib.compress(p, level)) for p in pieces)    # deflate alone
            t0 = time.perf_counter()
            out = [compress_buffer(p, comp) for p in pieces]
            t_one = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in compress_ahead(iter(pieces), comp):
                pass
            t_pool = time.perf_counter() - t0
            sent = sum(len(o.data) if isinstance(o, Compressed) else o.nbytes for o in out)
            zipped = [o for o in out if isinstance(o, Compressed)]
            t0 = time.perf_counter()
            for o in zipped:
                wire._inflate(o.data, o.raw_size, 0)
            t_inf = time.perf_counter() - t0
            inflate = f"{mbps(sum(o.raw_size for o in zipped), t_inf):8.0f}" if zipped else f"{'(raw)':>8}"
            print(f"{name:8} {level:5d} {deflate_ratio:7.2f}x {n / sent:5.2f}x {mbps(n, t_one):9.0f} "
                  f"{mbps(n, t_pool):7.0f} {inflate}")


class WireCount:
    """Bytes of every frame the client sends (its serialize) and receives (its dispatch), in this process."""

    def __init__(self) -> None:
        self.up = self.down = 0
        real_serialize, real_dispatch = client_mod.serialize, Client._dispatch
        count = self

        def serialize(*a, **kw):
            frames = real_serialize(*a, **kw)
            count.up += sum(memoryview(f).nbytes for f in frames)
            return frames

        def dispatch(self, frames):
            count.down += sum(memoryview(getattr(f, "buffer", f)).nbytes for f in frames)
            return real_dispatch(self, frames)

        client_mod.serialize = serialize
        Client._dispatch = dispatch                                   # type: ignore[method-assign]

    def take(self) -> tuple[int, int]:
        up, down, self.up, self.down = self.up, self.down, 0, 0
        return up, down


SPECS = ("off", "zlib:1")


def measure(label: str, connect, images: dict[str, np.ndarray], repeat: int, count: WireCount,
            model: bool = False) -> None:
    """Median round trips of an identity job per image and compression setting, interleaved; ``connect(spec)``
    opens a client (a small job warms each one up first)."""
    for name, arr in images.items():
        h, w, c = arr.shape
        img = ImageBuffer(w, h, c, "u8" if arr.dtype == np.uint8 else "u16", memoryview(arr).cast("B"))
        options = StylizeOptions(engine="identity", size=max(h, w))                 # type: ignore[arg-type]
        runs: dict[str, list] = {spec: [] for spec in SPECS}
        clients = {spec: connect(None if spec == "off" else spec) for spec in SPECS}
        try:
            for cl in clients.values():
                small = np.ascontiguousarray(arr[:256, :256])
                cl.stylize(ImageBuffer(256, 256, c, img.dtype, memoryview(small).cast("B")),
                           StylizeOptions(engine="identity", size=256)).wait(timeout=120)   # type: ignore[arg-type]
            for _ in range(repeat):
                for spec, cl in clients.items():
                    count.take()
                    t0 = time.perf_counter()
                    job = cl.stylize(img, options).wait(timeout=900)
                    rt = time.perf_counter() - t0
                    up, down = count.take()
                    assert job.result is not None, job.error
                    assert bytes(job.result.data) == arr.tobytes(), "the result differs"
                    runs[spec].append((rt, job.info["seconds"], up + down))
        finally:
            for cl in clients.values():
                cl.close()
        for spec, rs in runs.items():
            rt = statistics.median(r[0] for r in rs)
            job_s = statistics.median(r[1] for r in rs)
            moved = statistics.median(r[2] for r in rs)
            extra = ("   " + "   ".join(f"{rt + moved / rate:13.2f} s" for rate in LINKS.values())) if model else ""
            print(f"{label:14} {name:8} {spec:7} {rt:9.2f}s {job_s:6.2f}s {moved / 2**20:12.1f}  "
                  f"{moved / 2**20 / rt:8.1f}{extra}", flush=True)


HEAD = f"{'transport':14} {'image':8} {'compr.':7} {'round trip':>10} {'job':>7} {'MiB up+down':>12}  {'MiB/s':>8}"


def local_round_trips(images: dict[str, np.ndarray], transports: list[str], repeat: int, count: WireCount) -> None:
    print(f"\n2. round trip through a local daemon (identity engine; median of {repeat}; MiB up+down = every frame "
          f"of the upload and the result; job = inside the worker: decode, engine, encode + send)")
    print(HEAD + "   " + "   ".join(f"model at {k}" for k in LINKS))
    for transport in transports:
        with tempfile.TemporaryDirectory() as tmp:
            with DaemonProcess(tmp, *(["--tcp"] if transport == "tcp" else [])) as d:
                measure(transport, lambda spec: d.client(compression=spec), images, repeat, count, model=True)


def shape(ns, rate: str) -> None:
    """A token-bucket limit of ``rate`` on both directions of the namespace's veth pair."""
    import subprocess
    tbf = ["tbf", "rate", rate, "burst", "256kb", "latency", "200ms"]
    subprocess.run(["tc", "qdisc", "add", "dev", ns.host_if, "root", *tbf], check=True, capture_output=True)
    subprocess.run([*ns.prefix(), "tc", "qdisc", "add", "dev", ns.ns_if, "root", *tbf], check=True,
                   capture_output=True)


def remote_round_trips(images: dict[str, np.ndarray], rates: list[str], repeat: int, count: WireCount) -> None:
    """A CURVE server (``serve --listen``) in a network namespace behind a veth pair shaped to each rate: the
    remote case measured, not modelled (the server still shares this machine's CPUs)."""
    from tests.support.remote import NetNamespace, RemoteDaemon, unavailable
    print(f"\n3. round trip to a remote CURVE server (serve --listen in a network namespace, veth shaped with tc "
          f"tbf both ways; median of {repeat})")
    why = unavailable()
    if why:
        print(f"   skipped: {why}")
        return
    print(HEAD)
    for rate in rates:
        with NetNamespace() as ns, tempfile.TemporaryDirectory() as tmp:
            if rate != "veth":
                shape(ns, rate)
            with RemoteDaemon(Path(tmp), ns.server_ip, 5555, netns=ns) as d:
                profile = d.invite("bench")

                def connect(spec):
                    cl = Client.connect(remote=profile, timeout=30)
                    cl.compression = spec
                    return cl
                measure(f"remote {rate}", connect, images, repeat, count)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photo", type=Path, default=ROOT.parent / "shared" / "data" / "content" / "kodim23.png")
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--levels", default="1,3,6,9")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--transports", default="ipc,tcp")
    ap.add_argument("--links", default="100mbit,1gbit", help="tc rates of the remote link (section 3); veth: unshaped")
    ap.add_argument("--remote-repeat", type=int, default=2)
    ap.add_argument("--images", default="photo8,photo16,noise8")
    ap.add_argument("--skip-codec", action="store_true")
    ap.add_argument("--skip-daemon", action="store_true")
    ap.add_argument("--skip-remote", action="store_true")
    args = ap.parse_args()
    images = {k: v for k, v in load_images(args.photo, args.size).items() if k in args.images.split(",")}
    print(f"{args.size}x{args.size} RGBA from {args.photo.name}: "
          + ", ".join(f"{k} {v.nbytes / 2**20:.0f} MiB" for k, v in images.items())
          + f"; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    if not args.skip_codec:
        codec_table(images, [int(x) for x in args.levels.split(",")])
    count = WireCount()
    if not args.skip_daemon:
        local_round_trips(images, args.transports.split(","), args.repeat, count)
    if not args.skip_remote:
        remote_round_trips(images, args.links.split(","), args.remote_repeat, count)
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
