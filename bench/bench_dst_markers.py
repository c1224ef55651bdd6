"""What DST's marker count costs before and during its steps: the keypoint cleaning (quadratic crossing loop) and
one TPS fit + dense flow (done every step), at the daemon's cap (``MAX_KEYPOINTS``) and at the 3000 markers of
issue 17's finding 5 (which the options now refuse; measured here by calling the functions directly).

    .venv/bin/python bench/bench_dst_markers.py [--counts 16 64 256 3000] [--size 512]

Prints seconds and the process's peak RSS growth per count (CPU, one thread unless OMP_NUM_THREADS says more).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

import torch

from impasto_protocol.options import MAX_KEYPOINTS
from impasto.engines.dst.cleaning import clean_correspondences
from impasto.engines.dst.tps import fit_displacement, smooth_flow


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--counts", type=int, nargs="+", default=[16, 64, MAX_KEYPOINTS, 3000])
    ap.add_argument("--size", type=int, default=512, help="working long side (the flow's size)")
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    s = args.size
    print(f"cap: {MAX_KEYPOINTS} markers per job; frame {s}x{s}")
    print(f"{'markers':>8} {'cleaning s':>11} {'TPS fit+flow s':>15} {'peak RSS +MiB':>14}")
    for k in args.counts:
        rss0 = peak_rss_mib()
        c = torch.rand(k, 2, generator=g, dtype=torch.float64) * s
        st = (c + torch.randn(k, 2, generator=g, dtype=torch.float64) * 8).clamp(0, s - 1)
        empty = torch.zeros(0, 2, dtype=torch.float64)
        t0 = time.perf_counter()
        kp = clean_correspondences(empty, empty, torch.zeros(0, dtype=torch.float64), content_size=(s, s),
                                   style_size=(s, s), markers=(c, st))
        t1 = time.perf_counter()
        src = kp.content.float()
        dst = kp.targets.float()
        tps = fit_displacement(src, dst, (s, s))
        smooth_flow(tps, (s, s), (s, s))
        t2 = time.perf_counter()
        print(f"{k:>8} {t1 - t0:>11.3f} {t2 - t1:>15.3f} {peak_rss_mib() - rss0:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
