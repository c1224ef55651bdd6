"""4096x4096 through DST at working resolution 512, then the tiled full-resolution pass: peak RSS and a 100 % crop.

    nice -n 19 .venv/bin/python bench/bench_tiling_dst.py [--side 4096] [--steps N] [--refine-steps N] [--max-tiles N]

The DST engine (impasto.engines.dst) optimizes at 512 and returns its result at the output size, warped there
(its TPS field is resolution independent); ``impasto.tiling.optim_tiled.refine_full_resolution`` then adds
full-size brushwork tile by tile against the globally accumulated Gram statistics of the style.  Runs in a child
process whose peak RSS (ru_maxrss) is the figure.  Keypoints: four marker pairs (no NBB, to keep it short).
Images: scikit-image samples (astronaut content, coffee as the "style").  Timings noisy (2 shared cores).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def child(a) -> dict:
    from impasto.engines import stylize
    from impasto.engines.base import Cancelled
    from impasto.imageio import sample_image, save_image
    from impasto.tiling.optim_tiled import refine_full_resolution
    from impasto_protocol.options import KeypointPair, StylizeOptions

    content = sample_image("astronaut")
    style = sample_image("coffee")
    opts = StylizeOptions(engine="dst", size=a.work, max_side=a.side, steps=a.steps, variant="gatys",
                          keypoint_mode="markers",
                          keypoints=[KeypointPair((128, 128), (150, 100)), KeypointPair((384, 128), (450, 100)),
                                     KeypointPair((128, 384), (150, 300)), KeypointPair((384, 384), (450, 300))])
    t = time.perf_counter()
    full = stylize(content, style, opts)            # (1, 3, side, side): DST at 512, warped at full size
    t_dst = time.perf_counter() - t
    out = torch.empty_like(full) if not a.max_tiles else full.clone()
    calls = []

    def on_tile(x, y, tile):
        out[:, :, y:y + tile.shape[2], x:x + tile.shape[3]] = tile
        calls.append((x, y))

    t = time.perf_counter()
    try:
        refine_full_resolution(full, tuple(full.shape[2:]), style, opts, steps=a.refine_steps, on_tile=on_tile,
                               read=lambda b: full[:, :, b[0]:b[1], b[2]:b[3]], assemble=False,
                               cancel=(lambda: len(calls) >= a.max_tiles) if a.max_tiles else (lambda: False))
    except Cancelled:
        pass
    t_ref = time.perf_counter() - t
    Path(a.out).mkdir(parents=True, exist_ok=True)
    save_image(full[..., :1024, :1024], Path(a.out) / f"dst_{a.side}_before_refine_crop100.png")
    save_image(out[..., :1024, :1024], Path(a.out) / f"dst_{a.side}_refined_crop100.png")
    return {"dst_seconds": t_dst, "refine_seconds": t_ref, "tiles": len(calls)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--work", type=int, default=512)
    ap.add_argument("--steps", type=int, default=50, help="DST iterations per scale")
    ap.add_argument("--refine-steps", type=int, default=30)
    ap.add_argument("--max-tiles", type=int, default=0, help="cancel the refine pass after N tiles (memory check)")
    ap.add_argument("--out", default="bench_out/tiling")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.child:
        print(json.dumps(child(a)))
        return
    args = [sys.executable, __file__, "--child"] + [f"--{k.replace('_', '-')}={v}" for k, v in vars(a).items()
                                                     if k != "child"]
    p = subprocess.run(args, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(p.stderr[-4000:])
    res = json.loads(p.stdout.strip().splitlines()[-1])
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    print(f"DST {a.side}x{a.side} (working {a.work}, {a.steps} steps/scale): {res['dst_seconds']:.1f} s; tiled "
          f"full-resolution pass ({a.refine_steps} steps/tile): {res['tiles']} tiles in {res['refine_seconds']:.1f} s"
          + (f" (cancelled after {a.max_tiles} tiles: memory check)" if a.max_tiles else ""))
    print(f"peak RSS (ru_maxrss of the child): {rss:.2f} GiB [limit 4 GB = 3.73 GiB] {'OK' if rss * 2**30 <= 4e9 else 'OVER'}")
    print(f"100% crops: {a.out}/dst_{a.side}_before_refine_crop100.png, {a.out}/dst_{a.side}_refined_crop100.png")


if __name__ == "__main__":
    main()
