"""Stylization strength of the MT styles: a loss of the output divided by the same loss of the unstylized photo
(``mt_eval``: training style loss relu1_1..relu4_1, plain Gram distance relu1_1..relu5_1, content at relu4_2),
per output size and per *level plan* -- the long side each level runs at.

    python bench/bench_mt_strength.py [--styles a,b] [--photos validation|test] [--sizes 512,1024,2048] [--plans ...]

A plan is written ``256/512/1024``: style subnet, enhance subnet, then one refine pass per further number (the result
is resized to the output size if the last level is smaller: ``256/512`` at 1024 = the enhance output upsampled).
``prop`` is the network's own sizing (output/4, output/2, output), what the engine ran until 2026-12-02;
``engine`` is the engine's ``level_plan`` (fp32 here, whatever the device's inference precision).  Choose plans on
``--photos validation``; report on ``--photos test``.

``gatys`` is not an MT plan but the reference of what "stylized" means for the painting: Impasto's Gatys engine
(its defaults, the device's precision policy) optimizing the photo at the output size against the painting; use
``--first 1`` for it, it costs minutes per image.  ``--models DIR`` measures the model files in DIR (e.g. an
earlier commit's ``weights/styles``) instead of the installed styles:

    python bench/bench_mt_strength.py --photos test --sizes 512,1024,2048 --plans engine
    python bench/bench_mt_strength.py --photos test --sizes 512,1024 --plans prop --models scratch/old_styles
    python bench/bench_mt_strength.py --photos test --first 1 --sizes 512,1024 --plans gatys
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch

from impasto.engines.mt.level_plan import level_plan
from impasto.engines.mt.model_file import load_model
from impasto.engines.mt.network import resize
from impasto.engines.mt.styles import find_style, list_styles
from impasto.imageio import load_image
from impasto.vgg import get_vgg
from mt_eval import TEST, VALIDATION, StyleMeasure, load_photos, painting_path, resize_long


def scaled(h: int, w: int, long_side: int) -> tuple[int, int]:
    s = long_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


@torch.inference_mode()
def run_plan(net, x: torch.Tensor, plan: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    if plan == "prop":
        return net(x)[-1].clamp(0, 1)
    if plan == "engine":
        lp = level_plan(h, w)
        y = net.enhance(resize(net.style(resize(x, lp.style)), lp.enhance))
        if lp.refine is not None:
            y = net.refine(resize(y, lp.refine))
        return resize(y, lp.output).clamp(0, 1)
    sides = [int(s) for s in plan.split("/")]
    y = net.style(resize(x, scaled(h, w, sides[0])))
    if len(sides) > 1:
        y = net.enhance(resize(y, scaled(h, w, sides[1])))
    for side in sides[2:]:
        y = net.refine(resize(y, scaled(h, w, side)))
    return resize(y, (h, w)).clamp(0, 1)


def gatys_reference(photo: torch.Tensor, painting: torch.Tensor) -> torch.Tensor:
    """Impasto's Gatys engine at the photo's size with its default settings (the ``gatys`` plan)."""
    from impasto.engines.optim import gatys
    from impasto_protocol.options import StylizeOptions
    return gatys.stylize(photo, painting, StylizeOptions(engine="gatys", size=max(photo.shape[-2:]))).float()


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--styles", default=None, help="comma list (default: every installed style)")
    ap.add_argument("--photos", choices=("validation", "test"), default="validation")
    ap.add_argument("--sizes", default="512,1024,2048")
    ap.add_argument("--plans", default="prop", help="semicolon list of plans, e.g. 'prop;256/512/512;256/512'")
    ap.add_argument("--first", type=int, default=0, help="only the first N photos of the set (0 = all)")
    ap.add_argument("--models", default=None, help="folder of NAME.safetensors files to measure instead")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    styles = args.styles.split(",") if args.styles else [s.name for s in list_styles() if s.ok]
    photos = load_photos(VALIDATION if args.photos == "validation" else TEST)
    photos = photos[:args.first] if args.first else photos
    vgg = get_vgg("cpu")
    print(f"MT strength on the {args.photos} photos ({len(photos)}): output loss / photo's loss, mean over photos")
    print(f"{'style':<26} {'size':>5} {'plan':<18} {'style':>6} {'gram':>6} {'content':>10}")
    for name in styles:
        if args.models:
            path = Path(args.models) / f"{name}.safetensors"
        else:
            info = find_style(name)
            if info is None or not info.ok:
                raise SystemExit(f"style {name!r} not found or unreadable")
            path = info.path
        net, _ = load_model(path)
        measure = StyleMeasure(vgg, painting_path(name))
        painting = load_image(painting_path(name))[:, :3]
        for size in (int(s) for s in args.sizes.split(",")):
            xs = [resize_long(img, size) for _, img in photos]
            base = [measure.losses(x) for x in xs]
            feats = [measure.content_features(x) for x in xs]
            for plan in args.plans.split(";"):
                if plan == "gatys":
                    out = [measure.losses(gatys_reference(x, painting), f) for x, f in zip(xs, feats)]
                else:
                    out = [measure.losses(run_plan(net, x, plan), f) for x, f in zip(xs, feats)]
                sr = sum(o["style"] / b["style"] for o, b in zip(out, base)) / len(out)
                gr = sum(o["gram"] / b["gram"] for o, b in zip(out, base)) / len(out)
                c = sum(o["content"] for o in out) / len(out)
                print(f"{name:<26} {size:5d} {plan:<18} {sr:6.2f} {gr:6.2f} {c:10.4g}", flush=True)


if __name__ == "__main__":
    main()
