"""``impasto train``: train an MT style model from a painting (or one painting per level) and a folder of photos.

The model is written to the user's styles folder (``impasto styles`` lists it; ``impasto stylize --style NAME``
uses it).  Interrupt at any time; ``--resume`` continues from the last checkpoint.  Runs unchanged under
``torchrun --nproc_per_node N -m impasto train ...`` (DistributedDataParallel).
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from ..errors import ImpastoError

NAME = "train"
HELP = "train a fast (MT) style model from a painting and a folder of photos"

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--style", required=True, metavar="PAINTING", help="the painting (all levels unless overridden)")
    p.add_argument("--style-enhance", metavar="P2", help="painting for the enhance level (512) of a mixed style")
    p.add_argument("--style-refine", metavar="P3", help="painting for the refine level (1024) of a mixed style")
    p.add_argument("--content-dir", required=True, metavar="DIR", help="folder of training photos")
    p.add_argument("--name", required=True, help="style name (letters, digits, - and _)")
    p.add_argument("--steps", type=int, default=None,
                   help="total steps (default 1600 = 1200 style-subnet steps + 400 hierarchical); split 3:1")
    p.add_argument("--style-steps", type=int, default=None, help="phase 1: style subnet alone at 256 px")
    p.add_argument("--hier-steps", type=int, default=None, help="phase 2: all three levels at 512 px")
    p.add_argument("--batch", type=int, default=4, help="phase-1 batch size (phase 2 uses --hier-batch)")
    p.add_argument("--hier-batch", type=int, default=1)
    p.add_argument("--crop", type=int, default=512, help="phase-2 crop size (phase 1 uses half)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--style-weight", default="5", metavar="B or B1,B2,B3",
                   help="beta per level (style, enhance, refine); one number B means B, 0.4B, B")
    p.add_argument("--content-layer", default="relu4_2", choices=("relu2_1", "relu2_2", "relu3_1", "relu4_2"),
                   help="VGG layer of the content loss (deeper: looser content, bolder style)")
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--tv-weight", type=float, default=0.0)
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--resume", action="store_true", help="continue from the last checkpoint of --name")
    p.add_argument("--init-from", default=None, metavar="STYLE|FILE|nearest",
                   help="start from a trained style's weights instead of random ones ('nearest': the installed "
                        "style whose painting is closest by Gram distance); the network widths come from it, "
                        "and the default schedule is then 400 whole-stack steps (~20 min on 2 CPU cores; "
                        "--steps N: N such steps)")
    p.add_argument("--work-dir", default=None, help="checkpoints go to WORK_DIR/NAME (default: user data dir)")
    p.add_argument("--output", default=None, help="model file (default: <user data dir>/styles/NAME.safetensors)")
    p.add_argument("--title", default="", help="painting title (stored in the model)")
    p.add_argument("--artist", default="")
    p.add_argument("--year", default="")
    p.add_argument("--style-sizes", default="256,512,1024", metavar="S1,S2,S3",
                   help="painting short side for the style targets of the three levels")
    p.add_argument("--log-every", type=int, default=10, help="log line every N steps when there is no progress bar")
    p.add_argument("--net", choices=("default", "tiny"), default="default", help="network widths (tiny: tests)")
    p.add_argument("--max-photos", type=int, default=0, help="use only the first N photos")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA if available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (log lines instead)")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..engines.mt.network import MTConfig
    from ..engines.mt.styles import user_data_dir, user_styles_dir
    from ..engines.mt.train import (TrainConfig, TrainError, _dist_info, cpu_schedule, export_model,
                                     level_style_weights, split_steps, train,
                                     warm_schedule)
    from ..engines.mt.warm_start import model_config

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", args.name):
        raise ImpastoError(f"style name {args.name!r}: use letters, digits, '-' and '_' (max 64)")
    paths = (args.style, args.style_enhance or args.style, args.style_refine or args.style)
    for pth in paths:
        if not Path(pth).is_file():
            raise TrainError(f"painting {pth} does not exist")
    # from a trained model every level already paints: all steps go to the whole stack (train.warm_schedule)
    style_steps, hier_steps = (warm_schedule() if args.init_from else cpu_schedule()).values()
    if args.steps is not None:
        style_steps, hier_steps = (0, args.steps) if args.init_from else split_steps(args.steps)
    if args.style_steps is not None:
        style_steps = args.style_steps
    if args.hier_steps is not None:
        hier_steps = args.hier_steps
    if style_steps < 0 or hier_steps < 0 or style_steps + hier_steps == 0:
        raise ImpastoError("need a positive number of steps")
    try:
        style_sizes = tuple(int(v) for v in args.style_sizes.split(","))
        assert len(style_sizes) == 3 and min(style_sizes) >= 16
    except (ValueError, AssertionError):
        raise ImpastoError(f"--style-sizes must be three sizes >= 16 like 256,512,1024, got {args.style_sizes!r}")
    work_dir = args.work_dir or str(user_data_dir() / "training")
    try:
        sw = tuple(float(v) for v in str(args.style_weight).split(","))
        if len(sw) == 1:
            sw = level_style_weights(sw[0])
        assert len(sw) == 3 and min(sw) >= 0
    except (ValueError, AssertionError):
        raise ImpastoError(f"--style-weight must be B or B1,B2,B3 (>= 0), got {args.style_weight!r}")
    cfg = TrainConfig(
        name=args.name, style_paths=paths, content_dir=args.content_dir, out_dir=work_dir,
        style_steps=style_steps, hier_steps=hier_steps, style_batch=args.batch, hier_batch=args.hier_batch,
        crop=args.crop, lr=args.lr, content_weight=args.content_weight, style_weights=sw,
        content_layer=args.content_layer, tv_weight=args.tv_weight, checkpoint_every=args.checkpoint_every,
        seed=args.seed,
        net=(MTConfig.tiny() if args.net == "tiny" else MTConfig()).to_dict(), max_photos=args.max_photos,
        style_sizes=style_sizes)
    if args.init_from:
        cfg.init_from = str(_init_model(args.init_from, paths[2]))
        cfg.net = model_config(cfg.init_from).to_dict()
    device = torch.device(args.device) if args.device else None
    if device is not None and device.type == "cuda" and "WORLD_SIZE" in __import__("os").environ:
        device = torch.device("cuda", int(__import__("os").environ.get("LOCAL_RANK", "0")))

    bar = None
    show_bar = not args.no_progress and sys.stderr.isatty()

    def on_progress(p) -> None:
        nonlocal bar
        short = {k: f"{v:.3g}" for k, v in p.losses.items() if k.endswith("_s") or k == "total"}
        if show_bar:
            from tqdm import tqdm
            if bar is None:
                bar = tqdm(total=p.total_steps, initial=p.step - 1, desc=args.name, unit="step")
            bar.update(1)
            bar.set_postfix(phase=p.phase, **short)
        elif p.step % args.log_every == 0 or p.step == p.total_steps:
            print(f"step {p.step}/{p.total_steps} {p.phase} {p.seconds_per_step:.2f}s/step "
                  + " ".join(f"{k}={v}" for k, v in short.items()), flush=True)

    net = train(cfg, resume=args.resume, device=device, on_progress=on_progress)
    if bar is not None:
        bar.close()
    rank, _ = _dist_info()
    if rank == 0:
        out = Path(args.output) if args.output else user_styles_dir() / f"{args.name}.safetensors"
        export_model(net, cfg, out, title=args.title, artist=args.artist, year=args.year)
        print(f"wrote style model {out}")
    if torch.distributed.is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return 0


def _init_model(choice: str, painting: str) -> Path:
    """--init-from: a style name or file, or 'nearest' to the painting (its Grams at the 1024 level)."""
    from ..engines.mt.train import painting_grams
    from ..engines.mt.warm_start import NEAREST, nearest_style, resolve_init_model

    if choice != NEAREST:
        return resolve_init_model(choice)
    info, distance = nearest_style(painting_grams(painting))
    log.info("starting from the nearest installed style: %s (Gram distance %.4g)", info.name, distance)
    print(f"starting from {info.name} (nearest installed style, Gram distance {distance:.4g})", flush=True)
    return info.path
