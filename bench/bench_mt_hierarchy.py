"""The paper's central claim, measured: hierarchical MT vs "singular transfer" (the style subnet alone run at the
output size) at 1024 px on held-out photos.  Style loss = sum over relu1_1..relu4_1 of MSE between the output's Gram
matrix and the painting's Gram at the 1024 level (stored in the model file); content loss = MSE against the photo at
the VGG layer the style was trained with (its ``training.content_layer`` metadata; the training default
relu4_2 where the metadata predates that setting).  Prints one row per image and the mean ratios.

    python bench/bench_mt_hierarchy.py [--styles starry_night,...] [--size 1024] [--images NAMES | --photos test]
                                       [--baselines DIR]

Held-out photos: ../shared/data/content (not used in training) when present, else scikit-image samples;
``--photos validation|test`` takes ``mt_eval``'s split (report on ``test``).
Claim to check: style loss >= 20 % lower (ratio <= 0.80), content loss <= 10 % higher (ratio <= 1.10).

"Singular" is the model's own style subnet run at the output size -- a weak baseline (it was trained on 256-px
Grams while the refine level trained against the 1024 target).  ``--baselines DIR`` adds the fair ones: networks of
the style subnet's architecture trained *alone* by ``bench/train_mt_baselines.py`` (``<style>-singular256``: 256
crops against the painting at 256; ``<style>-singular1024``: 512 crops against the painting at 1024), each run at
the output size and compared with the hierarchical result the same way.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
import torch.nn.functional as F

from impasto.engines.mt.model_file import load_model, read_style_grams
from impasto.engines.mt.styles import find_style, list_styles
from impasto.engines.mt.train import CONTENT_LAYER, STYLE_LAYERS
from impasto.imageio import load_image, sample_image
from impasto.vgg import get_vgg, gram_matrix
from mt_eval import TEST, VALIDATION, resize_long

BASELINES = ("singular256", "singular1024")

SHARED_CONTENT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "content"
DEFAULT_SHARED = ["tubingen.jpg", "kodim23.png", "kodim13.png", "kodim20.png"]
DEFAULT_SKIMAGE = ["astronaut", "coffee", "chelsea", "rocket"]


@torch.inference_mode()
def losses(vgg, out: torch.Tensor, content: torch.Tensor, grams: dict[str, torch.Tensor],
           content_layer: str = CONTENT_LAYER) -> tuple[float, float]:
    f = vgg(out, STYLE_LAYERS + (content_layer,))
    c = vgg(content, (content_layer,))[content_layer]
    style = sum(F.mse_loss(gram_matrix(f[k])[0], grams[k]).item() for k in STYLE_LAYERS)
    return style, F.mse_loss(f[content_layer], c).item()


def trained_content_layer(info) -> str:
    return (info.metadata.training or {}).get("content_layer", CONTENT_LAYER)


@torch.inference_mode()
def compare(style_name: str, images: list[tuple[str, torch.Tensor]], size: int = 1024,
            baselines: Path | None = None) -> list[dict]:
    """Per image: the losses of the hierarchical result, of the model's own style subnet alone ("single") and, with
    ``baselines``, of each trained singular baseline found there (keys ``<flavour>_style`` / ``_content``)."""
    info = find_style(style_name)
    if info is None or not info.ok:
        raise SystemExit(f"style {style_name!r} not found or unreadable")
    net, _ = load_model(info.path)
    grams = read_style_grams(info.path)
    if not grams:
        raise SystemExit(f"{info.path} holds no target Gram matrices; re-export it")
    others = {}
    for flavour in BASELINES if baselines else ():
        f = Path(baselines) / f"{style_name}-{flavour}.safetensors"
        if f.exists():
            others[flavour] = load_model(f)[0].style
    vgg = get_vgg("cpu")
    rows = []
    for name, img in images:
        x = resize_long(img, size)
        hier = net(x)[-1].clamp(0, 1)
        single = net.style(x).clamp(0, 1)
        layer = trained_content_layer(info)
        hs, hc = losses(vgg, hier, x, grams, layer)
        ss, sc = losses(vgg, single, x, grams, layer)
        row = {"style": style_name, "image": name, "content_layer": layer, "hier_style": hs, "single_style": ss,
               "hier_content": hc, "single_content": sc}
        for flavour, subnet in others.items():
            row[f"{flavour}_style"], row[f"{flavour}_content"] = losses(vgg, subnet(x).clamp(0, 1), x, grams, layer)
        rows.append(row)
    return rows


def load_images(names: list[str]) -> list[tuple[str, torch.Tensor]]:
    out = []
    for n in names:
        p = SHARED_CONTENT / n
        img = load_image(p) if p.exists() else sample_image(n)
        img = img if img.dim() == 4 else img.unsqueeze(0)
        out.append((n, img[:, :3]))
    return out


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--styles", default=None, help="comma list (default: all shipped)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--images", default=None, help="comma list of files in ../shared/data/content or skimage names")
    ap.add_argument("--photos", choices=("validation", "test"), default=None, help="mt_eval's photo split")
    ap.add_argument("--baselines", default=None, help="folder of trained singular baselines (train_mt_baselines)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    styles = args.styles.split(",") if args.styles else [s.name for s in list_styles() if s.ok]
    if args.photos:
        names = VALIDATION if args.photos == "validation" else TEST
    else:
        names = args.images.split(",") if args.images else (
            DEFAULT_SHARED if SHARED_CONTENT.is_dir() else DEFAULT_SKIMAGE)
    images = load_images(names)
    print(f"hierarchical vs singular (style subnet alone) at {args.size} px; losses as in training (unweighted)")
    w = max([5] + [len(s) for s in styles])
    print(f"{'style':<{w}} {'image':<14} {'style H':>10} {'style S':>10} {'H/S':>6} {'content H':>10} "
          f"{'content S':>10} {'H/S':>6}")
    for style in styles:
        rows = compare(style, images, args.size, Path(args.baselines) if args.baselines else None)
        for r in rows:
            print(f"{r['style']:<{w}} {r['image'][:14]:<14} {r['hier_style']:10.4g} {r['single_style']:10.4g} "
                  f"{r['hier_style'] / r['single_style']:6.2f} {r['hier_content']:10.4g} {r['single_content']:10.4g} "
                  f"{r['hier_content'] / r['single_content']:6.2f}", flush=True)
        s_ratio = sum(r["hier_style"] for r in rows) / sum(r["single_style"] for r in rows)
        c_ratio = sum(r["hier_content"] for r in rows) / sum(r["single_content"] for r in rows)
        verdict = "MET" if s_ratio <= 0.8 and c_ratio <= 1.1 else "NOT MET"
        print(f"{style:<{w}} {'MEAN':<14} style H/S = {s_ratio:.2f} (target <= 0.80), "
              f"content ({rows[0]['content_layer']}) H/S = {c_ratio:.2f} (target <= 1.10): {verdict}")
        for flavour in BASELINES:
            if f"{flavour}_style" not in rows[0]:
                continue
            s_ratio = sum(r["hier_style"] for r in rows) / sum(r[f"{flavour}_style"] for r in rows)
            c_ratio = sum(r["hier_content"] for r in rows) / sum(r[f"{flavour}_content"] for r in rows)
            verdict = "MET" if s_ratio <= 0.8 and c_ratio <= 1.1 else "NOT MET"
            print(f"{style:<{w}} {'vs trained ' + flavour:<14} style H/B = {s_ratio:.2f}, content H/B = "
                  f"{c_ratio:.2f}: {verdict}", flush=True)


if __name__ == "__main__":
    main()
