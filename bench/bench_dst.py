"""DST benchmarks: synthetic ground truth at 256 px, and the time of full 3-scale runs.

    python bench/bench_dst.py synthetic [--size 256] [--steps 60] [--variant gatys|strotss]
    python bench/bench_dst.py timing [--sizes 256 512] [--steps N] [--variant ...] [--device cpu|cuda]

synthetic: a painting-like picture deformed by a known smooth warp is the style, with the known keypoints as
markers.  Prints how far the warped output puts the content keypoints from the style keypoints (mean px; target
<= 2 at 256), and the style distance of the output vs the same run without the warp (beta = 0; target within 10 %).
timing: one full run per size (3 scales x --steps, default the engine's 150) with markers from the synthetic case;
prints total seconds, seconds per step at each scale, and the peak RSS (or CUDA peak memory).  With --steps below
the default it also prints the extrapolation to 150 steps per scale, marked as such.
Runs with the OpenMP settings the product runs with (the default wait policy; PASSIVE costs ~25 % at 256 px on an
idle machine).  On a busy shared machine, set OMP_WAIT_POLICY=PASSIVE: spinning threads on busy cores made every
op 5-10x slower.
"""
from __future__ import annotations

import os
import argparse  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402


def _peak(device) -> str:
    if device.type == "cuda":
        return f"CUDA peak {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB"
    return f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB (process so far)"


def synthetic(args, device) -> None:
    from impasto.engines import stylize
    from impasto.engines.dst.engine import style_distance
    from impasto.engines.dst.synthetic import make_case
    from impasto_protocol.options import StylizeOptions

    case = make_case(args.size, points=8, displacement=0.05, seed=3)
    before = (case.content_points - case.style_points).norm(dim=1)
    res = {}
    for name, beta in (("dst", None), ("no-warp", 0.0)):
        art: dict = {}
        opts = StylizeOptions(engine="dst", size=args.size, steps=args.steps, variant=args.variant,
                              keypoint_mode="markers", keypoints=case.pairs(), warp_weight=beta, seed=args.seed)
        t0 = time.perf_counter()
        out = stylize(case.content, case.style, opts, device=device, artifacts=art)
        res[name] = (out, art, time.perf_counter() - t0)
    out, art, t_dst = res["dst"]
    plain, _, t_plain = res["no-warp"]
    after = (art["warped_points"].double() - case.style_points).norm(dim=1)
    print(f"synthetic ground truth at {args.size} px, variant {args.variant}, {args.steps} steps/scale, "
          f"{len(case.pairs())} keypoints, device {device}")
    print(f"  keypoint distance content->style: before {before.mean():.2f} px mean (max {before.max():.2f}); "
          f"after DST {after.mean():.3f} px mean (max {after.max():.3f})   [target <= 2 px mean]")
    for metric in ("gatys", "strotss"):
        d_dst = style_distance(out, case.style, metric, device=device)
        d_plain = style_distance(plain, case.style, metric, device=device)
        print(f"  style distance ({metric}): DST {d_dst:.5f}, no warp {d_plain:.5f}, ratio {d_dst / d_plain:.3f}"
              "   [target <= 1.10]")
    print(f"  pixel L1 to the style image: DST {(out - case.style).abs().mean():.4f}, "
          f"no warp {(plain - case.style).abs().mean():.4f}")
    print(f"  time: DST {t_dst:.1f} s, no warp {t_plain:.1f} s; {_peak(device)}")
    if args.save:
        from impasto.imageio import save_image
        os.makedirs(args.save, exist_ok=True)
        for name, img in (("content", case.content), ("style", case.style), ("dst", out), ("nowarp", plain),
                          *art["debug_images"].items()):
            save_image(img, os.path.join(args.save, f"synthetic_{name}.png"))


def timing(args, device) -> None:
    from impasto.engines import stylize
    from impasto.engines.dst.engine import DEFAULTS
    from impasto.engines.dst.synthetic import make_case
    from impasto_protocol.options import StylizeOptions

    steps = args.steps or DEFAULTS.steps_per_scale
    for size in args.sizes:
        case = make_case(size, points=8, displacement=0.05, seed=3)
        warm = StylizeOptions(engine="dst", size=64, steps=1, variant=args.variant, keypoint_mode="markers",
                              keypoints=make_case(64, points=8).pairs())
        stylize(make_case(64).content, make_case(64).style, warm, device=device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            torch.cuda.synchronize(device)
        stamps: dict[str, list[float]] = {}

        def progress(p):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            stamps.setdefault(p.stage.split(" step")[0], []).append(time.perf_counter())

        opts = StylizeOptions(engine="dst", size=size, steps=steps, variant=args.variant, keypoint_mode="markers",
                              keypoints=case.pairs(), seed=args.seed)
        t0 = time.perf_counter()
        stylize(case.content, case.style, opts, device=device, progress=progress)
        total = time.perf_counter() - t0
        per = {k: (v[-1] - v[0]) / max(1, len(v) - 1) for k, v in stamps.items() if k.startswith("scale")}
        first = {k: v[0] for k, v in stamps.items() if k.startswith("scale")}
        print(f"DST {args.variant} at {size} px on {device}, {len(per)} scales x {steps} steps: {total:.1f} s; "
              + ", ".join(f"{k} {v:.3f} s/step" for k, v in per.items()) + f"; {_peak(device)}")
        if steps < DEFAULTS.steps_per_scale:
            overhead = total - sum(per.values()) * steps
            est = overhead + sum(per.values()) * DEFAULTS.steps_per_scale
            print(f"  extrapolated to {DEFAULTS.steps_per_scale} steps/scale: ~{est:.0f} s (setup "
                  f"{overhead:.1f} s + per-step times above)")
        del first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("what", choices=("synthetic", "timing"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--variant", default="gatys", choices=("gatys", "strotss"))
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", metavar="DIR", help="synthetic: write the images there")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.what == "synthetic":
        args.steps = args.steps or 60
        synthetic(args, device)
    else:
        timing(args, device)


if __name__ == "__main__":
    main()
