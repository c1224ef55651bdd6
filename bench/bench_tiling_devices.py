"""Tiled MT on one device vs its refine tiles spread over several (``stylize_tiled(..., helpers=[...])``): time,
tiles per device, and whether the outputs are identical.

    nice -n 19 .venv/bin/python bench/bench_tiling_devices.py [--side 3072] [--tile 512] [--devices cpu,cpu]
        [--threads 2] [--model weights/styles/starry_night.safetensors] [--precision fp32|auto]

After a small warm-up run, it times (a) ``--devices``' first entry alone with ``--threads`` torch threads,
(b) the same with ``--threads`` divided by the number of devices, and (c) every listed device at once with that
divided count each (as the daemon gives k CPU workers, ``daemon/devices.share_cpu_threads``).  On CPU all use the
same cores, so (c) vs (a) is the cost or gain of running tiles side by side instead of one tile with more intra-op
threads; with two GPUs (``--devices cuda:0,cuda:1``) it is the multi-device speed-up.  (b) and (c) run with the
same thread count, so their outputs must be identical on CPU (a different thread count may change float rounding).
Timings are noisy on a shared machine; the load average is printed.
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=3072)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--devices", default="cpu,cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="weights/styles/starry_night.safetensors")
    ap.add_argument("--precision", choices=["fp32", "auto"], default="fp32")
    a = ap.parse_args()

    from bench_tiling_8192 import make_net
    from impasto.imageio import sample_image
    from impasto.tiling.mt_tiled import stylize_tiled

    devices = [torch.device(d) for d in a.devices.split(",")]
    net = make_net(a.model).to(devices[0])
    x = F.interpolate(sample_image("astronaut"), size=(a.side, a.side), mode="bicubic",
                      align_corners=False).clamp(0, 1)
    prec = "fp32" if a.precision == "fp32" else None

    def run(helpers, threads):
        torch.set_num_threads(threads)
        report: dict = {}
        t = time.perf_counter()
        out = stylize_tiled(net, x, None, device=devices[0], tile_size=a.tile, precision=prec, helpers=helpers,
                            report=report)
        return out, time.perf_counter() - t, report

    print(f"load average {os.getloadavg()[0]:.2f}; {a.side}x{a.side}, tile {a.tile}, precision {a.precision}, "
          f"model {a.model}")
    small = x
    x = F.interpolate(small, size=(a.tile, a.tile), mode="bilinear", align_corners=False)
    run(devices[1:], a.threads)                                     # warm-up: kernel plans, allocator, threads
    x = small
    per = max(1, a.threads // len(devices)) if all(d.type == "cpu" for d in devices) else a.threads
    _, t1, r1 = run(None, a.threads)
    print(f"(a) one device ({devices[0]}, {a.threads} threads): {t1:.1f} s, {r1['tiles']} tiles")
    one, t2, _ = run(None, per)
    print(f"(b) one device ({devices[0]}, {per} threads): {t2:.1f} s")
    many, t3, r3 = run(devices[1:], per)
    print(f"(c) {len(devices)} devices ({a.devices}, {per} threads each): {t3:.1f} s, tiles by device "
          f"{r3['tiles_by_device']}; vs (a) {t1 / t3:.2f}x, vs (b) {t2 / t3:.2f}x")
    print(f"(b) and (c) identical: {torch.equal(one, many)}; max |delta| {float((one - many).abs().max()):.3g}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
