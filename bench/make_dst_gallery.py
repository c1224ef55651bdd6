"""Make the DST gallery in docs/dst/: no-warp vs DST side by side, keypoints and warp-grid overlays.

    python bench/make_dst_gallery.py [--out docs/dst] [--schedule paper] [--pairs ../shared/data/portrait_pairs.tsv]

Defaults: the default variant (STROTSS terms) at the paper's settings (``--schedule paper``: 3 x 150 SGD steps);
``--steps N`` runs N steps a scale instead, ``--variant gatys`` the Gatys terms.

1. Synthetic: a generated brush-stroke picture and the same picture deformed by a known warp (both generated, so
   they may be shown): content, style, the same optimisation without the warp (β = 0), DST with the known
   keypoints, the keypoints on the content (with the targets) and the warp grid.
2. With --pairs (a TSV of content/style paths relative to its folder, like shared/data/portrait_pairs.tsv): for
   each pair, the no-warp result, the DST result with automatic (NBB) keypoints, the same with the default fast
   schedule (``--compare-fast``), and the warp grid; the content keypoints.  Only results are written, never the inputs, and the content keypoint overlay only when the content
   is a scikit-image sample (--show-content NAME=skimage_name, e.g. content/astronaut.png=astronaut): pictures
   from the shared data folder must not end up in the repository.
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import csv  # noqa: E402
import logging  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

log = logging.getLogger("gallery")


def sheet(images: list[torch.Tensor], height: int = 256, gap: int = 4) -> torch.Tensor:
    """Images side by side at a common height, white gaps."""
    row = []
    for img in images:
        h, w = img.shape[2:]
        img = F.interpolate(img[:, :3].float(), size=(height, max(1, round(w * height / h))), mode="bilinear",
                            antialias=True, align_corners=False).clamp(0, 1)
        row += [img, torch.ones(1, 3, height, gap)]
    return torch.cat(row[:-1], dim=3)


def run_pair(content, style, size, steps, variant, seed=0, schedule="paper", **kw):
    from impasto.engines import stylize
    from impasto_protocol.options import StylizeOptions
    art: dict = {}
    opts = StylizeOptions(engine="dst", size=size, steps=steps, variant=variant, seed=seed, schedule=schedule, **kw)
    return stylize(content, style, opts, artifacts=art), art


def synthetic(out: Path, size: int, steps: int | None, variant: str) -> None:
    from impasto.engines.dst.synthetic import make_case
    from impasto.imageio import save_image
    case = make_case(size, points=8, displacement=0.05, seed=3)
    plain, _ = run_pair(case.content, case.style, size, steps, variant, keypoint_mode="markers",
                        keypoints=case.pairs(), warp_weight=0.0)
    dst, art = run_pair(case.content, case.style, size, steps, variant, keypoint_mode="markers",
                        keypoints=case.pairs())
    dbg = art["debug_images"]
    save_image(sheet([case.content, case.style, plain, dst]), out / "synthetic_results.png")
    save_image(sheet([dbg["keypoints_content"], dbg["keypoints_style"], dbg["warp_grid"]]),
               out / "synthetic_keypoints.png")
    after = (art["warped_points"].double() - case.style_points).norm(dim=1).mean()
    log.info("synthetic: keypoints %.3f px from the style's after DST", after)


def pairs(out: Path, tsv: Path, size: int, steps: int | None, variant: str, show: dict[str, str], limit: int,
          compare_fast: bool = False, row_numbers: list[int] | None = None) -> None:
    from impasto.imageio import load_image, sample_image, save_image
    from impasto.engines.dst.debug import draw_keypoints
    base = tsv.parent
    with open(tsv, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    rows = [rows[r] for r in row_numbers] if row_numbers else rows[:limit]
    for row in rows:
        c_path, s_path = row["content"], row["style"]
        name = f"{Path(c_path).stem}__{Path(s_path).stem}"
        content = sample_image(show[c_path]) if c_path in show else load_image(base / c_path)
        style = load_image(base / s_path)
        plain, _ = run_pair(content, style, size, steps, variant, warp_weight=0.0)
        dst, art = run_pair(content, style, size, steps, variant, keypoint_mode="auto")
        shown = [plain, dst]
        if compare_fast:
            fast, fast_art = run_pair(content, style, size, None, variant, schedule="fast", keypoint_mode="auto")
            shown.append(fast)
            log.info("%s fast schedule: steps %s, losses %s", name, fast_art["steps"], fast_art["losses"])
        save_image(sheet(shown + [art["debug_images"]["warp_grid"]]), out / f"{name}_results.png")
        if c_path in show:      # a scikit-image sample: its keypoint overlay may be shown
            c_small = F.interpolate(content, size=dst.shape[2:], mode="bilinear", antialias=True,
                                    align_corners=False)
            scale = torch.tensor([dst.shape[3] / content.shape[3], dst.shape[2] / content.shape[2]])
            pts = torch.tensor([p.content for p in art["keypoints"]]) * scale
            # "keypoints" are in the given content's pixels; "targets" in the engine's (the output size)
            save_image(draw_keypoints(c_small, pts, art["targets"].float()), out / f"{name}_keypoints.png")
        log.info("%s: %d keypoints, losses %s", name, len(art["keypoints"]), art["losses"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/dst")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--steps", type=int, default=None, help="steps a scale (default: the schedule's)")
    ap.add_argument("--variant", default="strotss", choices=("gatys", "strotss"))
    ap.add_argument("--compare-fast", action="store_true", help="pairs: also the default fast schedule's result")
    ap.add_argument("--rows", type=int, nargs="*", help="pairs: these rows of the TSV (0 = first) instead of --limit")
    ap.add_argument("--pairs", type=Path, help="TSV of content/style pairs (results only are written)")
    ap.add_argument("--limit", type=int, default=2, help="at most this many pairs")
    ap.add_argument("--show-content", nargs="*", default=["content/astronaut.png=astronaut"],
                    metavar="PATH=SKIMAGE_NAME", help="contents that are scikit-image samples (their overlays are "
                                                      "written, loaded from scikit-image)")
    ap.add_argument("--no-synthetic", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if not args.no_synthetic:
        synthetic(out, args.size, args.steps, args.variant)
    if args.pairs:
        show = dict(item.split("=", 1) for item in args.show_content)
        pairs(out, args.pairs, args.size, args.steps, args.variant, show, args.limit, args.compare_fast, args.rows)


if __name__ == "__main__":
    main()
