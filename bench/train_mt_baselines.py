"""Trained *singular* baselines for the claim test (``bench_mt_hierarchy.py --baselines DIR``): one network of the
style subnet's architecture per style, trained alone on the same photos as the hierarchical model, in two flavours
as in the paper's comparison:

* ``<style>-singular256``  -- 256-px crops against the painting at 256 (what the style level is trained on);
* ``<style>-singular1024`` -- 512-px crops against the painting at 1024 (the refine level's target: the control
  that separates "the hierarchy helps" from "training against the 1024 target helps").

    python bench/train_mt_baselines.py --styles the_scream [--steps N] [--out scratch/mt_baselines]

Budget: as many steps as the shipped hierarchical model had (its ``training.steps_done``), batch 4, unless
``--steps`` says otherwise.  Resumable (the trainer's checkpoints: rerun the same command); the model files land
in ``--out``.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from impasto.engines.mt.styles import find_style
from impasto.engines.mt.train import TrainConfig, export_model, train
from mt_eval import SHARED, painting_path

ROOT = Path(__file__).resolve().parents[1]
FLAVOURS = {"singular256": (512, 256), "singular1024": (1024, 1024)}   # crop (phase 1 trains at crop // 2), painting


def baseline_config(style: str, flavour: str, steps: int, out: Path) -> TrainConfig:
    crop, painting_side = FLAVOURS[flavour]
    return TrainConfig(name=f"{style}-{flavour}", style_paths=(str(painting_path(style)),) * 3,
                       content_dir=str(SHARED / "train"), out_dir=str(out / "checkpoints"), style_steps=steps,
                       hier_steps=0, crop=crop, style_sizes=(painting_side, 512, 1024))


def train_baseline(cfg: TrainConfig, out: Path) -> Path:
    model = out / f"{cfg.name}.safetensors"
    if not model.exists():
        net = train(cfg, resume=True, device=torch.device("cpu"))
        export_model(net, cfg, model, title=f"{cfg.name} (singular baseline)")
    return model


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser()
    ap.add_argument("--styles", required=True, help="comma list of shipped styles")
    ap.add_argument("--flavours", default=",".join(FLAVOURS))
    ap.add_argument("--steps", type=int, default=None, help="default: the shipped model's steps_done")
    ap.add_argument("--out", default=str(ROOT / "scratch" / "mt_baselines"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for style in args.styles.split(","):
        info = find_style(style)
        if info is None or not info.ok:
            raise SystemExit(f"style {style!r} not found")
        steps = args.steps or int((info.metadata.training or {}).get("steps_done", 1600))
        for flavour in args.flavours.split(","):
            if flavour not in FLAVOURS:
                raise SystemExit(f"unknown flavour {flavour!r}; one of {', '.join(FLAVOURS)}")
            cfg = baseline_config(style, flavour, steps, out)
            print(f"{cfg.name}: {steps} steps", flush=True)
            print(f"wrote {train_baseline(cfg, out)}", flush=True)


if __name__ == "__main__":
    main()
