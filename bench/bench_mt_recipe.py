"""Why the MT upper levels take the stylization back: small recipe trials on one shipped style.

Each *variant* starts from a shipped model, keeps its style and enhance subnets fixed and trains the refine subnet
(the level that takes the stylization back, docs/mt.md) for ``--steps`` more steps (512-px crops of
``../shared/data/train``, Adam 1e-3, batch 1, the training code's ``level_loss`` at the refine level), then prints
the strength (``mt_eval``: output loss / the photo's own loss, mean over the validation photos) at 512 and 1024
outputs.  Variants:

* ``today``    -- the shipped recipe, continued: the refine subnet sees the 512 enhance output without the x2
                  upsampling it meets at test time, against the painting's 1024-px Gram.
* ``window``   -- the refine subnet is trained at its test-time scale: a random 512 window of the x2-upsampled
                  enhance output (what a 1024 output feeds it), against the 1024-px Gram and the upsampled photo's
                  window; same cost per step as ``today``.
* ``window_strong`` -- ``window`` with the refine level's style weight raised to the style level's.
* ``strong``   -- ``today`` with the refine level's style weight raised to the style level's.

    python bench/bench_mt_recipe.py --style the_scream --variants today,window,window_strong --steps 150

Checkpoints (every 25 steps) go to ``--out``/<style>/<variant>.pt and a rerun resumes them; ``--eval-only`` measures
what is there.  Validation photos only: this chooses a recipe, it reports nothing.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import time
from pathlib import Path

import torch

from impasto.engines.mt.model_file import load_model
from impasto.engines.mt.network import resize
from impasto.engines.mt.styles import find_style
from impasto.engines.mt.train import LAMBDAS, ContentPhotos, StyleTargets, TrainConfig, level_loss
from impasto.precision import policy
from impasto.vgg import get_vgg
from mt_eval import SHARED, VALIDATION, StyleMeasure, load_photos, painting_path, resize_long

VARIANTS = ("today", "window", "window_strong", "strong")
CROP = 512


def trial_config(name: str, painting: Path, shipped: dict, variant: str) -> TrainConfig:
    weights = tuple(shipped["style_weights"])
    if variant.endswith("strong"):
        weights = (weights[0], weights[1], weights[0])
    return TrainConfig(name=name, style_paths=(str(painting),) * 3, content_dir=str(SHARED / "train"),
                       style_weights=weights, content_weight=shipped.get("content_weight", 1.0), tv_weight=0.0,
                       content_layer=shipped.get("content_layer", "relu4_2"))


def trial_step(net, vgg, x: torch.Tensor, targets: StyleTargets, cfg: TrainConfig, variant: str,
               rng: random.Random) -> dict[str, float]:
    """One step's refine-level loss (a tensor under key 'loss') for the variant; the lower levels are fixed."""
    with torch.no_grad():
        _, enhance_out = net(x, levels=2, upsample_refine=False)              # 256, 512
    if variant.startswith("window"):
        up, photo = resize(enhance_out, (2 * CROP, 2 * CROP)), resize(x, (2 * CROP, 2 * CROP))
        y0, x0 = rng.randrange(CROP + 1), rng.randrange(CROP + 1)
        refine_in = up[..., y0:y0 + CROP, x0:x0 + CROP]
        refine_content = photo[..., y0:y0 + CROP, x0:x0 + CROP]
    else:
        refine_in, refine_content = enhance_out, x
    refine_out = net.refine(refine_in)
    loss, c, s = level_loss(vgg, refine_out, refine_content, targets.grams[2], cfg, 2)
    return {"content": c, "style": s, "loss": LAMBDAS[2] * loss}


def train_variant(style: str, variant: str, steps: int, out: Path) -> Path:
    info = find_style(style)
    net, meta = load_model(info.path)
    cfg = trial_config(style, painting_path(style), meta.training, variant)
    ckpt = out / style / f"{variant}.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    opt = torch.optim.Adam(net.refine.parameters(), lr=1e-3)
    step = 0
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step = state["step"]
    if step >= steps:
        return ckpt
    for p in list(net.style.parameters()) + list(net.enhance.parameters()):
        p.requires_grad_(False)
    vgg = get_vgg("cpu")
    targets = StyleTargets(vgg, cfg.style_paths, torch.device("cpu"), cfg.style_sizes)
    photos = ContentPhotos(cfg.content_dir, cfg.photo_cache_side)
    prec = policy(torch.device("cpu"), "training")     # bf16 where the CPU has it natively, else fp32
    net.train()
    t0 = time.perf_counter()
    while step < steps:
        x = photos.batch(1000 + cfg.seed, step, 0, 1, CROP)       # photos the shipped runs did not draw
        with prec.autocast():
            logs = trial_step(net, vgg, x, targets, cfg, variant, random.Random(f"{variant}/{step}"))
        opt.zero_grad(set_to_none=True)
        logs["loss"].backward()
        opt.step()
        step += 1
        if step % 25 == 0 or step == steps:
            tmp = ckpt.with_suffix(".tmp")
            torch.save({"step": step, "model": net.state_dict(), "optimizer": opt.state_dict()}, tmp)
            os.replace(tmp, ckpt)
            print(f"  {variant} step {step}: " + " ".join(f"{k} {v:.3g}" for k, v in logs.items() if k != "loss")
                  + f"  ({(time.perf_counter() - t0) / step:.1f} s/step this run)", flush=True)
    return ckpt


@torch.inference_mode()
def strength(net, measure: StyleMeasure, photos, size: int, plan: str) -> tuple[float, float, float]:
    sr = gr = c = 0.0
    for _, img in photos:
        x = resize_long(img, size)
        base = measure.losses(x)
        h, w = x.shape[-2:]
        if plan == "prop":
            y = net(x)[-1].clamp(0, 1)
        else:   # 256/512/512: style subnet near 256, refine without the last upsampling
            s = 256 / max(h, w)
            y = net.style(resize(x, (round(h * s), round(w * s))))
            y = net.refine(net.enhance(resize(y, (h, w)))).clamp(0, 1)
        o = measure.losses(y, measure.content_features(x))
        sr, gr, c = sr + o["style"] / base["style"], gr + o["gram"] / base["gram"], c + o["content"]
    n = len(photos)
    return sr / n, gr / n, c / n


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--style", default="the_scream")
    ap.add_argument("--variants", default="today,window,window_strong")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--photos", type=int, default=3, help="how many validation photos to measure on")
    ap.add_argument("--out", default="scratch/mt_recipe")
    ap.add_argument("--eval-only", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            raise SystemExit(f"unknown variant {v!r}; one of {', '.join(VARIANTS)}")
    out = Path(args.out)
    ckpts = {}
    for v in variants:
        ckpts[v] = out / args.style / f"{v}.pt" if args.eval_only else train_variant(args.style, v, args.steps, out)
    photos = load_photos(VALIDATION[:args.photos])
    measure = StyleMeasure(get_vgg("cpu"), painting_path(args.style))
    shipped, _ = load_model(find_style(args.style).path)
    print(f"{args.style}: strength on {len(photos)} validation photos (style / gram ratio, content loss)")
    rows = [("shipped", shipped)]
    for v, path in ckpts.items():
        net, _ = load_model(find_style(args.style).path)
        state = torch.load(path, weights_only=True)
        net.load_state_dict(state["model"])
        rows.append((f"{v} +{state['step']}", net.eval()))
    for label, net in rows:
        figs = [strength(net, measure, photos, 512, "256/512/512"), strength(net, measure, photos, 1024, "prop")]
        print(f"{label:<22} 512 {figs[0][0]:.2f} {figs[0][1]:.2f} {figs[0][2]:8.4g}   "
              f"1024 {figs[1][0]:.2f} {figs[1][1]:.2f} {figs[1][2]:8.4g}", flush=True)


if __name__ == "__main__":
    main()
