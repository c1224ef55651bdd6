"""Neural Best Buddies: time at 256 px and accuracy on an image and a scaled + shifted copy of it.

    python bench/bench_nbb.py [--size 256] [--repeat 3] [--full]

Prints seconds per NBB run (median of --repeat, after one warm-up), the raw pair count per level, the pairs left
after DST's cleaning, the median/90th-percentile error against the known transform, and the peak RSS.
The reference code took 164 s for the same job on this kind of machine (notes/reference-timings.md).
Runs with the OpenMP settings the product runs with (the default wait policy).  On a busy shared machine, run it
with OMP_WAIT_POLICY=PASSIVE: spinning OpenMP threads on busy cores made every op 5-10x slower.
"""
from __future__ import annotations

import argparse  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def scaled_shifted(img, s, t):
    _, _, h, w = img.shape
    theta = torch.tensor([[[1 / s, 0, -2 * t[0] / w / s], [0, 1 / s, -2 * t[1] / h / s]]], dtype=torch.float32)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, padding_mode="reflection", align_corners=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--full", action="store_true", help="go down to relu1_1 (default: relu2_1, 'fast')")
    ap.add_argument("--image", default="astronaut", help="scikit-image sample name")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from impasto.engines.dst.cleaning import clean_correspondences
    from impasto.engines.dst.nbb import NBBConfig, neural_best_buddies
    from impasto.imageio import sample_image
    from impasto.vgg import get_vgg

    n = args.size
    img = F.interpolate(sample_image(args.image), size=(n, n), mode="bilinear", antialias=True,
                        align_corners=False).clamp(0, 1)
    s, t = 0.85, (0.047 * n, -0.031 * n)
    style = scaled_shifted(img, s, t)
    vgg = get_vgg("cpu")
    cfg = NBBConfig(image_size=n, fast=not args.full)
    neural_best_buddies(img, style, cfg, vgg=vgg)           # warm-up
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        c = neural_best_buddies(img, style, cfg, vgg=vgg)
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    cl = clean_correspondences(c.content, c.style, c.activation, content_size=(n, n), style_size=(n, n), im_size=n)
    t_clean = time.perf_counter() - t0
    shift = torch.tensor(t, dtype=torch.float64)
    err = (s * (c.content - n / 2) + n / 2 + shift - c.style).norm(dim=1)
    err_cl = (s * (cl.content - n / 2) + n / 2 + shift - cl.style).norm(dim=1)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"NBB {'full (relu1_1)' if args.full else 'fast (relu2_1)'} at {n} px, {args.image} vs itself scaled "
          f"{s} and shifted {t[0]:.0f},{t[1]:.0f} px; {torch.get_num_threads()} threads")
    print(f"  time: median {statistics.median(times):.2f} s (runs: {', '.join(f'{x:.2f}' for x in times)})")
    print(f"  pairs per level: {c.per_level}; returned {c.content.shape[0]}")
    print(f"  error vs the known transform: median {err.median():.2f} px, p90 {err.quantile(0.9):.2f} px")
    print(f"  cleaning: {t_clean:.2f} s, {cl.counts} -> {cl.content.shape[0]} pairs, median error "
          f"{err_cl.median():.2f} px, similarity scale {cl.similarity.scale:.3f} (true {s})")
    print(f"  peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
