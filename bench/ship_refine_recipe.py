"""Build style model files whose refine subnet is the one trained by the ``window_strong`` recipe.

``bench/bench_mt_recipe.py --variants window_strong --steps 200`` trained, for each shipped style, only its refine
subnet (the style and enhance subnets fixed) on a 512 window of the x2-upsampled enhance output with the style
level's style weight -- what ``impasto train`` now does by default (``TrainConfig.refine_window``,
``level_style_weights``).  Those refine subnets are kept in ``bench/recipe_checkpoints/``.  This script writes, per
style, the shipped model with that refine subnet in place, and records it in the file's training metadata:

    python bench/ship_refine_recipe.py --out weights/styles            # or a scratch folder to measure first
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from impasto.engines.mt.model_file import load_model, read_style_grams, save_model

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINTS = ROOT / "bench" / "recipe_checkpoints"
SHIPPED = ROOT / "weights" / "styles"


def rebuild(style: str, out_dir: Path, source_dir: Path = SHIPPED) -> Path:
    ckpt_path = CHECKPOINTS / f"{style}.refine_window_strong.pt"
    src = source_dir / f"{style}.safetensors"
    net, meta = load_model(src)
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    net.refine.load_state_dict({k: v.float() for k, v in ckpt["refine"].items()})
    training = dict(meta.training)
    if "refine_recipe" in training:
        raise SystemExit(f"{src} already has a recipe refine subnet ({training['refine_recipe']})")
    weights = list(training["style_weights"])
    training["refine_recipe"] = {
        "recipe": "window_strong", "steps": int(ckpt["step"]), "lr": 1e-3, "crop": 512,
        "style_weight": weights[0], "trained_by": "bench/bench_mt_recipe.py",
        "replaced_style_weight": weights[2],
    }                                               # steps_done stays the two phases' count; these steps are extra
    training["style_weights"] = [weights[0], weights[1], weights[0]]
    training["refine_window"] = True
    meta.training = training
    return save_model(out_dir / src.name, net, meta, style_grams=read_style_grams(src))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--styles", default=None, help="comma list (default: every checkpoint present)")
    args = ap.parse_args()
    styles = (args.styles.split(",") if args.styles else
              sorted(p.name.split(".")[0] for p in CHECKPOINTS.glob("*.refine_window_strong.pt")))
    for style in styles:
        path = rebuild(style, args.out)
        print(f"{style}: {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
