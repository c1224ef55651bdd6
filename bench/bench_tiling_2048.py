"""Tiled vs untiled MT on the same 2048x2048 input (both fit in memory): 8-bit per-channel mean/max |delta| and the
seam metric (mean gradient magnitude across tile borders / elsewhere).

    nice -n 19 .venv/bin/python bench/bench_tiling_2048.py [--side 2048] [--tile 512] [--precision fp32|auto]

Acceptance: mean |delta| <= 0.5/255, max |delta| <= 2/255 per channel, seam ratio within 5 % of 1.  Untiled = the
MT network's own forward (style 512, enhance 1024, refine 2048 in one piece, IN statistics of the whole image) --
the sizing ``stylize_tiled`` uses above 2048, where it is the engine's path (the engine's level plan runs a 2048
output at 384/768/1536 and upsamples; tests/test_tiling_mt.py checks the tiled path on that plan too).
Network: default MTConfig, random weights (refine/enhance last convs randomised: they start at zero) unless
--model.  Input: scikit-image's astronaut upscaled.  Timings are noisy (2 shared cores).
"""
from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=2048)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--precision", choices=["fp32", "auto"], default="fp32",
                    help="fp32 for both (default), or the device policy (bf16 autocast on this CPU) for both")
    ap.add_argument("--model")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", help="directory for 100%% crops")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    if a.precision == "fp32":
        os.environ["IMPASTO_PRECISION"] = "fp32"

    from bench_tiling_8192 import make_net
    from impasto.precision import policy
    from impasto.imageio import sample_image
    from impasto.tiling.mt_tiled import REFINE_CONTEXT, REFINE_OVERLAP, stylize_tiled
    from impasto.tiling.tiles import TileGrid, seam_ratio

    net = make_net(a.model)
    x = F.interpolate(sample_image("astronaut"), size=(a.side, a.side), mode="bicubic",
                      align_corners=False).clamp(0, 1)
    dev = torch.device("cpu")

    def untiled(mode):
        prec = policy(dev, "inference", mode=mode)
        with torch.inference_mode(), prec.autocast():
            return net(x.contiguous(memory_format=prec.memory_format))[-1].float().clamp(0, 1)

    t = time.perf_counter()
    ref = untiled("fp32" if a.precision == "fp32" else None)
    t_untiled = time.perf_counter() - t

    t = time.perf_counter()
    out = stylize_tiled(net, x, None, device=dev, tile_size=a.tile,
                        precision="fp32" if a.precision == "fp32" else None)
    t_tiled = time.perf_counter() - t

    q = lambda im: (im * 255 + 0.5).floor().clamp(0, 255)        # noqa: E731 -- 8-bit quantisation
    d = (q(out) - q(ref)).abs()
    per_mean = d.mean(dim=(0, 2, 3)).tolist()
    per_max = d.amax(dim=(0, 2, 3)).tolist()
    grid = TileGrid.plan(-(-a.side // 4) * 4, -(-a.side // 4) * 4, a.tile, REFINE_OVERLAP, REFINE_CONTEXT, 4)
    seam_t, seam_u = seam_ratio(q(out), grid, 4), seam_ratio(q(ref), grid, 4)
    print(f"{a.side}x{a.side}, tile {a.tile} ({len(grid)} tiles, context {REFINE_CONTEXT}, overlap {REFINE_OVERLAP}), "
          f"precision {a.precision}")
    print("8-bit |delta| per channel (R, G, B): mean " + ", ".join(f"{v:.4f}" for v in per_mean)
          + " /255 [limit 0.5]; max " + ", ".join(f"{v:.0f}" for v in per_max) + " /255 [limit 2]  "
          + ("OK" if max(per_mean) <= 0.5 and max(per_max) <= 2 else "FAIL"))
    print(f"seam ratio (border / elsewhere gradient): tiled {seam_t:.4f}, untiled {seam_u:.4f} on the same lines "
          f"[limit |ratio - 1| <= 0.05] {'OK' if abs(seam_t - 1) <= 0.05 else 'FAIL'}")
    if a.precision == "auto":
        # the noise floor of bf16 itself: the untiled pass in bf16 vs the same pass in fp32
        ref32 = untiled("fp32")
        d32 = (q(ref) - q(ref32)).abs()
        print("bf16 noise floor, untiled bf16 vs untiled fp32: mean " +
              ", ".join(f"{v:.4f}" for v in d32.mean(dim=(0, 2, 3)).tolist()) + " /255; max " +
              ", ".join(f"{v:.0f}" for v in d32.amax(dim=(0, 2, 3)).tolist()) + " /255")
    print(f"time: untiled {t_untiled:.1f} s, tiled {t_tiled:.1f} s (tiled includes exact streamed IN statistics: one "
          f"pass per IN layer); load average {os.getloadavg()}")
    if a.save:
        from impasto.imageio import save_image
        os.makedirs(a.save, exist_ok=True)
        c = a.side // 2
        save_image(out[..., c - 256:c + 256, c - 256:c + 256], os.path.join(a.save, f"tiled_{a.side}_crop.png"))
        save_image(ref[..., c - 256:c + 256, c - 256:c + 256], os.path.join(a.save, f"untiled_{a.side}_crop.png"))


if __name__ == "__main__":
    main()
