"""DST puts things where the artist's markers say, measured in the output image (issue 14, part 5).

    python bench/bench_dst_alignment.py [--variants gatys strotss] [--size 192] [--steps N] [--threads 1]

The reported case: a dark disk on a light ground; the style has the disk 26 px to the right; 9 marker pairs (the
disk's centre, 4 points on its rim, 4 fixed points near the corners) ask for the move.  Prints, per variant, where
the cleaned targets put the disk centre (θ-space: the error the optimiser cannot fix) and where the disk's centroid
(darkness-weighted, pixels darker than mid-grey) lies in the output, both as the distance from the asked-for
position, plus the time.  ``--steps`` is per scale (default: the engine's 150).
"""
from __future__ import annotations

import argparse
import time

import torch


def disk_image(size: int, centre: tuple[float, float], radius: float) -> torch.Tensor:
    """(1, 3, size, size): a dark disk (0.15) on a light ground (0.85), antialiased over one pixel."""
    ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    d = ((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2).sqrt()
    inside = (radius + 0.5 - d).clamp(0, 1)
    return (0.85 - 0.7 * inside).expand(1, 3, size, size).contiguous()


def dark_centroid(img: torch.Tensor) -> tuple[float, float]:
    """Darkness-weighted centroid (x, y) of the pixels darker than mid-grey."""
    lum = img[0, :3].mean(0)
    w = (0.5 - lum).clamp(min=0)
    ys, xs = torch.meshgrid(torch.arange(lum.shape[0]) + 0.5, torch.arange(lum.shape[1]) + 0.5, indexing="ij")
    return float((w * xs).sum() / w.sum()), float((w * ys).sum() / w.sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["gatys", "strotss"])
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from impasto.engines.dst.engine import stylize
    from impasto_protocol.options import KeypointPair, StylizeOptions

    n = args.size
    r, move = 0.125 * n, 26.0 * n / 192
    c0 = (0.42 * n, 0.5 * n)
    s0 = (c0[0] + move, c0[1])
    content, style = disk_image(n, c0, r), disk_image(n, s0, r)
    pairs = [KeypointPair(c0, s0)]
    for dx, dy in ((r, 0), (-r, 0), (0, r), (0, -r)):
        pairs.append(KeypointPair((c0[0] + dx, c0[1] + dy), (s0[0] + dx, s0[1] + dy)))
    m = 0.06 * n
    for x, y in ((m, m), (n - m, m), (m, n - m), (n - m, n - m)):
        pairs.append(KeypointPair((x, y), (x, y)))
    print(f"disk r={r:.0f} px at {c0[0]:.0f},{c0[1]:.0f} -> style {s0[0]:.0f},{s0[1]:.0f} ({move:.0f} px), "
          f"{len(pairs)} markers, {n} px, {torch.get_num_threads()} thread(s)")
    for variant in args.variants:
        art: dict = {}
        opts = StylizeOptions(engine="dst", size=n, variant=variant, steps=args.steps, keypoint_mode="markers",
                              keypoints=pairs)
        t0 = time.perf_counter()
        out = stylize(content, style, opts, artifacts=art)
        dt = time.perf_counter() - t0
        tgt = art["targets"][0].tolist()
        cx, cy = dark_centroid(out)
        cx0, cy0 = dark_centroid(content)
        print(f"  {variant:8s} steps/scale {args.steps or 'default'}: target of the centre "
              f"{((tgt[0] - s0[0]) ** 2 + (tgt[1] - s0[1]) ** 2) ** 0.5:.2f} px from the asked-for position; "
              f"output disk moved {cx - cx0:+.2f},{cy - cy0:+.2f} px, centroid "
              f"{((cx - s0[0]) ** 2 + (cy - s0[1]) ** 2) ** 0.5:.2f} px from it; {dt:.0f} s", flush=True)


if __name__ == "__main__":
    main()
