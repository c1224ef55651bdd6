"""Seconds per STROTSS step at each scale of a 512 px run: the engine's objective (fast terms), RMSprop on the
Laplacian pyramid, as in ``engines/optim/strotss.py``.

    python bench/bench_strotss_steps.py [--row 1] [--threads 2] [--steps 8]

Prints the median of the steps after the first two, per scale (64, 128, 256, 512 px long side), for one
content/style pair of ``../shared/data/portrait_pairs.tsv`` (default row 1, a validation pair).
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=str(Path(__file__).resolve().parents[2] / "shared/data/portrait_pairs.tsv"))
    ap.add_argument("--row", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from impasto.engines.optim.common import prepare, resize_long_side
    from impasto.engines.optim.pyramid import laplacian_pyramid, synthesize
    from impasto.engines.optim.strotss import StrotssObjective, scale_sizes
    from impasto.imageio import load_image

    pairs = Path(args.pairs)
    with open(pairs) as f:
        row = list(csv.DictReader(f, delimiter="\t"))[args.row]
    content = load_image(str(pairs.parent / row["content"]))[:, :3]
    style = load_image(str(pairs.parent / row["style"]))[:, :3]
    device, _, vgg = prepare(torch.device("cpu"))
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.threads} threads")
    for side in scale_sizes(512):
        gen = torch.Generator().manual_seed(0)
        c, s = resize_long_side(content.float(), side), resize_long_side(style.float(), side)
        objective = StrotssObjective(vgg, c, s, 4.0, gen)
        pyr = [p.clone().requires_grad_(True) for p in laplacian_pyramid(c, 5)]
        opt = torch.optim.RMSprop(pyr, lr=1e-3)
        times = []
        for _ in range(args.steps):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss, _ = objective(synthesize(pyr))
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        print(f"{side:4d} px: {1000 * statistics.median(times[2:]):6.0f} ms a step", flush=True)


if __name__ == "__main__":
    main()
