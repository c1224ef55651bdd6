"""Neural Best Buddies: time at 256 px and accuracy on an image and a scaled + shifted copy of it; accuracy and
coverage across domains (a photo against a painting of it, bent by a known warp); coverage on real portrait pairs.

    python bench/bench_nbb.py [--size 256] [--repeat 3] [--full]
    python bench/bench_nbb.py cross [--style woman_with_hat_matisse] [--debug DIR]
    python bench/bench_nbb.py portraits [--pairs ../shared/data/portrait_pairs.tsv] [--debug DIR]

``cross``: the content is scikit-image's astronaut at 256 px; the style is that photo painted by a shipped MT style
(at 512, shown at 256) and bent by a known smooth warp (``synthetic.make_cross_domain_case``: shrink 0.92, shift, a random local bend of
up to 3 % per control point).  Prints the cleaned pairs' count, their median / p90 error (style px at 256, against
where the warp really put each content point) and their coverage (``cleaning.coverage``: the fraction of a 4×4
grid's cells holding a pair, and the convex hull of the pairs ÷ the image), for DST's similarity targets and for
the frames' targets.  ``portraits``: count and coverage for each pair of the list (no ground truth there).

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


def _auto_pairs(content, style, vgg, **clean_kw):
    """NBB + DST's cleaning at 256 as the engine runs them; returns (raw correspondences, cleaned points)."""
    from impasto.engines.dst.cleaning import clean_correspondences
    from impasto.engines.dst.engine import DEFAULTS
    from impasto.engines.dst.nbb import NBBConfig, neural_best_buddies

    found = neural_best_buddies(content, style, NBBConfig(image_size=DEFAULTS.nbb_size), vgg=vgg)
    cw, ch = content.shape[3], content.shape[2]
    sw, sh = style.shape[3], style.shape[2]
    cl = clean_correspondences(found.content, found.style, found.activation, content_size=(cw, ch),
                               style_size=(sw, sh), im_size=DEFAULTS.nbb_size, max_points=DEFAULTS.max_points,
                               min_distance=DEFAULTS.min_distance, **clean_kw)
    return found, cl


def _save_debug(path, content, style, cl) -> None:
    from impasto.engines.dst.debug import draw_keypoints
    from impasto.imageio import save_image

    a = draw_keypoints(content, cl.content, cl.targets)
    b = draw_keypoints(style, cl.style)
    h = max(a.shape[2], b.shape[2])
    a = F.pad(a, (0, 4, 0, h - a.shape[2]), value=1.0)
    b = F.pad(b, (0, 0, 0, h - b.shape[2]), value=1.0)
    save_image(torch.cat([a, b], 3)[0], path)
    print(f"  wrote {path}")


def cross(args) -> None:
    from impasto.engines.dst.cleaning import coverage
    from impasto.engines.dst.synthetic import make_cross_domain_case
    from impasto.engines.mt.engine import run_levels
    from impasto.engines.mt.model_file import load_model
    from impasto.engines.mt.styles import list_styles
    from impasto.imageio import sample_image
    from impasto.vgg import get_vgg

    n = 256
    img = F.interpolate(sample_image(args.image), size=(n, n), mode="bilinear", antialias=True,
                        align_corners=False).clamp(0, 1)
    style_file = next(s for s in list_styles() if s.name == args.style).path
    net = load_model(style_file)[0]
    # painted at 512 and shown at 256, as a painting of the photo: MT fed 256 px gives a blur with no features
    # (NBB median error 11 px there, 2.8 px on the 512 painting)
    x = F.interpolate(sample_image(args.image), size=(512, 512), mode="bilinear", antialias=True,
                      align_corners=False).clamp(0, 1)
    with torch.no_grad():
        painted = run_levels(net, x, torch.device("cpu"))[-1].clamp(0, 1)
    painted = F.interpolate(painted, size=(n, n), mode="bilinear", antialias=True, align_corners=False)
    case = make_cross_domain_case(img, painted)
    vgg = get_vgg("cpu")
    print(f"cross-domain: {args.image} at {n} px vs itself painted by MT {args.style} and bent by a known warp")
    for mapping in ("similarity", "frame"):
        t0 = time.perf_counter()
        found, cl = _auto_pairs(case.content, case.style, vgg, target_mapping=mapping)
        dt = time.perf_counter() - t0
        err = case.pair_errors(cl.content, cl.style)
        raw_err = case.pair_errors(found.content, found.style)
        cov = coverage(cl.content, (n, n))
        print(f"  targets by {mapping:10s}: raw {found.content.shape[0]} (median error {raw_err.median():.2f} px), "
              f"cleaned {cl.content.shape[0]} pairs {cl.counts}: median error {err.median():.2f} px, p90 "
              f"{err.quantile(0.9):.2f} px; coverage cells {cov.cells:.2f}, hull {cov.hull:.2f}; "
              f"asked-for move median {(cl.targets - cl.content).norm(dim=1).median():.2f} px; {dt:.1f} s",
              flush=True)
        if args.debug and mapping == "similarity":
            _save_debug(f"{args.debug}/cross_{args.style}.png", case.content, case.style, cl)


def portraits(args) -> None:
    from pathlib import Path

    from impasto.engines.dst.cleaning import coverage
    from impasto.imageio import load_image
    from impasto.vgg import get_vgg

    root = Path(args.pairs).parent
    rows = [line.split("\t") for line in Path(args.pairs).read_text().splitlines()[1:] if line.strip()]
    vgg = get_vgg("cpu")
    print(f"portrait pairs ({args.pairs}): NBB + cleaning at 256, as the engine runs them")
    for row in rows:
        content, style = load_image(root / row[0]), load_image(root / row[1])
        found, cl = _auto_pairs(content, style, vgg)
        cov = coverage(cl.content, (content.shape[3], content.shape[2]))
        print(f"  {Path(row[0]).stem:12s} x {Path(row[1]).stem:28s}: raw {found.content.shape[0]:5d}, cleaned "
              f"{cl.content.shape[0]:3d} {cl.counts}; coverage cells {cov.cells:.2f}, hull {cov.hull:.2f}", flush=True)
        if args.debug:
            _save_debug(f"{args.debug}/{Path(row[0]).stem}_x_{Path(row[1]).stem}.png", content, style, cl)


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] in ("cross", "portraits"):
        ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        ap.add_argument("what")
        ap.add_argument("--style", default="woman_with_hat_matisse", help="shipped MT style (cross)")
        ap.add_argument("--image", default="astronaut", help="scikit-image sample name (cross)")
        ap.add_argument("--pairs", default="../shared/data/portrait_pairs.tsv")
        ap.add_argument("--debug", default=None, help="write keypoint overlays here")
        ap.add_argument("--threads", type=int, default=2)
        args = ap.parse_args()
        torch.set_num_threads(args.threads)
        if args.debug:
            from pathlib import Path
            Path(args.debug).mkdir(parents=True, exist_ok=True)
        (cross if args.what == "cross" else portraits)(args)
        return
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
