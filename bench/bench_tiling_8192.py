"""8192x8192 RGBA canvas through tiled MT: completes, peak RSS (kernel's ru_maxrss of a child process), time per
megapixel against the untiled 2048x2048 MT pass (the MT engine's own ``run_levels``) measured the same way.

    nice -n 19 .venv/bin/python bench/bench_tiling_8192.py [--side 8192] [--model PATH] [--out DIR]

The canvas stays uint8 (what an editor sends); tiles arrive through ``on_tile`` and are written into a uint8 result,
as the daemon streams them (``assemble=False``: no full-size float tensor exists).  Network: the default MTConfig
with random weights (the refine subnet's last conv randomised, since it starts at zero) unless --model is given --
speed and memory do not depend on the weights.  The CPU here is shared with other jobs: timings are noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch


def make_net(model: str | None):
    from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
    if model:
        from impasto.engines.mt.model_file import load_model
        return load_model(model, "cpu")[0]
    torch.manual_seed(0)
    net = MultimodalTransferNet(MTConfig()).eval()
    with torch.no_grad():
        for p in net.refine.out.parameters():
            p.normal_(0, 0.05)
        for p in net.enhance.out.parameters():
            p.normal_(0, 0.05)
    return net


def make_canvas(side: int) -> np.ndarray:
    """(side, side, 4) uint8: scikit-image's astronaut upscaled (PIL, bicubic) + a radial alpha ramp."""
    from PIL import Image
    from skimage import data
    img = Image.fromarray(data.astronaut()).resize((side, side), Image.BICUBIC)
    rgba = np.empty((side, side, 4), np.uint8)
    rgba[..., :3] = np.asarray(img)
    del img
    yy = np.linspace(-1, 1, side, dtype=np.float32)
    for r0 in range(0, side, 1024):
        r = np.sqrt(yy[r0:r0 + 1024, None] ** 2 + yy[None, :] ** 2)
        rgba[r0:r0 + 1024, :, 3] = np.clip(255 * (1.3 - r), 0, 255).astype(np.uint8)
    return rgba


def child_untiled(side: int, model: str | None) -> dict:
    from impasto.engines.mt.engine import run_levels
    net = make_net(model)
    rgba = make_canvas(side)
    x = torch.from_numpy(rgba[..., :3]).permute(2, 0, 1)[None].float() / 255
    dev = torch.device("cpu")
    run_levels(net, x[..., :512, :512], dev)          # warm-up (kernel plans)
    times = []
    for _ in range(2):
        t = time.perf_counter()
        run_levels(net, x, dev)
        times.append(time.perf_counter() - t)
    return {"seconds": min(times), "all_seconds": times}


def child_tiled(side: int, model: str | None, out_dir: str | None, tile: int | None, max_tiles: int = 0,
                stats_side: int = 2048) -> dict:
    from impasto.engines.base import Cancelled
    from impasto.tiling.mt_tiled import stylize_tiled
    net = make_net(model)
    rgba = make_canvas(side)
    content = torch.from_numpy(rgba).permute(2, 0, 1)[None]        # (1, 4, H, W) uint8 view
    out = np.empty_like(rgba)
    out[..., 3] = rgba[..., 3]
    calls = []

    def on_tile(x, y, t):
        h, w = t.shape[2:]
        out[y:y + h, x:x + w, :3] = (t[0].permute(1, 2, 0) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
        calls.append((x, y, w, h))

    stages = []

    def progress(p):
        stages.append((time.perf_counter(), p.stage))

    t = time.perf_counter()
    try:
        stylize_tiled(net, content, None, progress=progress, on_tile=on_tile, device=torch.device("cpu"),
                      tile_size=tile, assemble=False, stats_side=stats_side,
                      cancel=(lambda: len(calls) >= max_tiles) if max_tiles else (lambda: False))
    except Cancelled:
        pass
    seconds = time.perf_counter() - t
    total_tiles = [st for _, st in stages if st.startswith("tile ")]
    cover = sum(w * h for _, _, w, h in calls)
    stats_end = max((ts for ts, st in stages if st.startswith("global")), default=t)
    res = {"seconds": seconds, "tiles": len(calls), "covered_pixels": cover, "canvas_pixels": side * side,
           "stats_seconds": stats_end - t, "last_stage": total_tiles[-1] if total_tiles else ""}
    if out_dir:
        from PIL import Image
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        # top-left 1024^2 at 100 % (the part the first tiles cover, also when cancelled early), and a reduced view
        r = min(1024, side)
        Image.fromarray(out[:r, :r]).save(Path(out_dir) / f"mt_tiled_{side}_crop100.png")
        Image.fromarray(rgba[:r, :r]).save(Path(out_dir) / f"content_{side}_crop100.png")
        step = max(1, side // 1024)
        Image.fromarray(out[::step, ::step]).save(Path(out_dir) / f"mt_tiled_{side}_small.png")
    return res


def run_child(args: list[str]) -> tuple[dict, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    p = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{p.stderr[-4000:]}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if peak_kib < before:
        peak_kib = before
    return json.loads(p.stdout.strip().splitlines()[-1]), peak_kib / 2**20    # GiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=8192)
    ap.add_argument("--ref-side", type=int, default=2048)
    ap.add_argument("--model")
    ap.add_argument("--tile", type=int)
    ap.add_argument("--out", default="bench_out/tiling")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tiles", type=int, default=0,
                    help="cancel after this many tiles (memory check only: peak RSS is reached by the first tiles)")
    ap.add_argument("--stats-side", type=int, default=2048)
    ap.add_argument("--child", choices=["untiled", "tiled"])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.child == "untiled":
        print(json.dumps(child_untiled(a.ref_side, a.model)))
        return
    if a.child == "tiled":
        print(json.dumps(child_tiled(a.side, a.model, a.out, a.tile, a.max_tiles, a.stats_side)))
        return
    common = ["--threads", str(a.threads)] + (["--model", a.model] if a.model else [])
    # the tiled child first: ru_maxrss of children is the max over all of them, so measure it before the other
    tiled, tiled_rss = run_child(["--child", "tiled", "--side", str(a.side), "--out", a.out, *common,
                                  "--max-tiles", str(a.max_tiles), "--stats-side", str(a.stats_side)]
                                 + (["--tile", str(a.tile)] if a.tile else []))
    if a.max_tiles:
        print(f"memory check: {a.side}x{a.side} RGBA, statistics over a {a.stats_side} thumbnail, cancelled after "
              f"{tiled['tiles']} tiles ({tiled['last_stage']}) in {tiled['seconds']:.1f} s; peak RSS (ru_maxrss of "
              f"the child) {tiled_rss:.2f} GiB [limit 4 GB = 3.73 GiB] {'OK' if tiled_rss * 2**30 <= 4e9 else 'OVER'}")
        return
    untiled, _ = run_child(["--child", "untiled", "--ref-side", str(a.ref_side), *common])
    mp_t, mp_u = a.side ** 2 / 1e6, a.ref_side ** 2 / 1e6
    spm_t, spm_u = tiled["seconds"] / mp_t, untiled["seconds"] / mp_u
    print(f"tiled MT {a.side}x{a.side} RGBA: {tiled['seconds']:.1f} s ({tiled['stats_seconds']:.1f} s global IN "
          f"statistics), {tiled['tiles']} tiles, covered {tiled['covered_pixels']}/{tiled['canvas_pixels']} px")
    print(f"peak RSS (ru_maxrss of the child process): {tiled_rss:.2f} GiB  [limit 4 GB = 3.73 GiB] "
          f"{'OK' if tiled_rss * 2**30 <= 4e9 else 'OVER'}")
    print(f"untiled MT {a.ref_side}x{a.ref_side}: {untiled['seconds']:.1f} s (runs {untiled['all_seconds']})")
    print(f"time per megapixel: tiled {spm_t:.3f} s/MP, untiled {spm_u:.3f} s/MP, ratio {spm_t / spm_u:.2f} "
          f"[limit 1.25] {'OK' if spm_t / spm_u <= 1.25 else 'OVER'}")
    print(f"load average during the run: {os.getloadavg()} (2 cores shared with other jobs: timings are noisy)")
    print(f"100% crops: {a.out}/mt_tiled_{a.side}_crop100.png, {a.out}/content_{a.side}_crop100.png")


if __name__ == "__main__":
    main()
