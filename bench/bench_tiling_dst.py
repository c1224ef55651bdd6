"""4096x4096 through DST at working resolution 512, finished by the tiled full-resolution pass: peak RSS, a 100 % crop.

    .venv/bin/python bench/bench_tiling_dst.py [--side 4096] [--steps N] [--max-tiles N]

The registry's ``stylize`` with ``max_side`` 4096: the DST engine optimizes at 512, then (outputs above 2048 px)
``impasto.tiling.optim_tiled.refine_full_resolution`` reads the warped result box by box (``tps.WarpedImage``: the
TPS field is resolution independent, evaluated per box) and adds full-size brushwork tile by tile against the
globally accumulated Gram statistics of the style; finished tiles arrive through ``on_tile``.  Runs in a child
process whose peak RSS (ru_maxrss) is the figure.  Keypoints: four marker pairs (no NBB, to keep it short).
Images: scikit-image samples (astronaut content, coffee as the "style").
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


def child(a) -> dict:
    from impasto.engines import stylize
    from impasto.engines.base import Cancelled
    from impasto.imageio import sample_image, save_image
    from impasto_protocol.options import KeypointPair, StylizeOptions

    content = sample_image("astronaut")
    style = sample_image("coffee")
    opts = StylizeOptions(engine="dst", size=a.work, max_side=a.side, steps=a.steps, variant="gatys",
                          keypoint_mode="markers",
                          keypoints=[KeypointPair((128, 128), (150, 100)), KeypointPair((384, 128), (450, 100)),
                                     KeypointPair((128, 384), (150, 300)), KeypointPair((384, 384), (450, 300))])
    out = torch.zeros(1, 3, a.side, a.side)
    calls, stages = [], []

    def on_tile(x, y, tile):
        out[:, :, y:y + tile.shape[2], x:x + tile.shape[3]] = tile
        calls.append((x, y))

    def progress(p):
        stages.append((time.perf_counter(), p.stage))

    t = time.perf_counter()
    try:
        stylize(content, style, opts, on_tile=on_tile, progress=progress,
                cancel=(lambda: len(calls) >= a.max_tiles) if a.max_tiles else (lambda: False))
    except Cancelled:
        pass
    total = time.perf_counter() - t
    t_refine = next((ts for ts, st in stages if st.startswith("global style")), t + total)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    save_image(out[..., 1024:2048, 1024:2048], Path(a.out) / f"dst_{a.side}_refined_crop100.png")
    save_image(out[..., ::4, ::4], Path(a.out) / f"dst_{a.side}_quarter.png")
    return {"dst_seconds": t_refine - t, "refine_seconds": t + total - t_refine, "tiles": len(calls)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--work", type=int, default=512)
    ap.add_argument("--steps", type=int, default=50, help="DST iterations per scale")
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
          f"full-resolution pass: {res['tiles']} tiles in {res['refine_seconds']:.1f} s"
          + (f" (cancelled after {a.max_tiles} tiles: memory check)" if a.max_tiles else ""))
    print(f"peak RSS (ru_maxrss of the child): {rss:.2f} GiB [limit 4 GB = 3.73 GiB] {'OK' if rss * 2**30 <= 4e9 else 'OVER'}")
    print(f"100% crop (centre 1024^2): {a.out}/dst_{a.side}_refined_crop100.png; whole at 1/4: "
          f"{a.out}/dst_{a.side}_quarter.png")


if __name__ == "__main__":
    main()
