"""``impasto stylize``: the one command-line entry to every engine (MT, DST, Gatys, STROTSS).

``--style`` is a painting (image file) or, for the fast engine, the name of a trained MT style.  Without
``--engine``: MT when STYLE is not a file but a known style name, Gatys otherwise.  ``--demo`` stylizes
scikit-image's astronaut photo with a generated brush-stroke picture (no files needed).
``--daemon`` runs the job through the daemon (the path the editor plugins use) instead of in this process.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from impasto_protocol.options import ENGINES, StylizeOptions

from ..errors import ImpastoError

NAME = "stylize"
HELP = "stylize a picture with a painting (Gatys, STROTSS, DST) or a trained fast style (MT)"

log = logging.getLogger(__name__)

DEMO_SIZE = 256
DEMO_STEPS = 60
NO_ALPHA_SUFFIXES = (".jpg", ".jpeg", ".bmp")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("content", nargs="?", metavar="CONTENT", help="the picture to stylize (not with --demo)")
    p.add_argument("--style", metavar="STYLE", help="painting (image file), or an MT style name (see `impasto styles`)")
    p.add_argument("-o", "--output", metavar="OUT", help="result image file (PNG keeps alpha and 16 bit→8 bit)")
    p.add_argument("--engine", metavar="ENGINE",
                   help=f"{' | '.join(ENGINES)} (default: mt for a style name, gatys for a style image)")
    p.add_argument("--size", default=None, metavar="N|full",
                   help="working long side in pixels, or 'full' for the content's own size "
                        "(default 512; 256 with --demo)")
    p.add_argument("--max-side", type=int, default=None, metavar="N",
                   help="long side of the result (default: same as --size; larger results are tiled)")
    p.add_argument("--tile-size", type=int, default=None, metavar="N", help="tile size for large results")
    p.add_argument("--steps", type=int, default=None, metavar="N", help="iterations (per scale for STROTSS/DST)")
    p.add_argument("--schedule", default="fast", choices=("fast", "paper"),
                   help="STROTSS/DST: 'fast' (default: fewer, larger steps, measured to reach the same losses) or "
                        "'paper' (the papers' learning rate and steps per scale)")
    p.add_argument("--content-weight", type=float, default=None, metavar="W")
    p.add_argument("--style-weight", type=float, default=None, metavar="W")
    p.add_argument("--tv-weight", type=float, default=None, metavar="W")
    p.add_argument("--optimizer", default=None, metavar="NAME", help="lbfgs | adam | rmsprop | sgd (engine default)")
    p.add_argument("--lr", type=float, default=None, metavar="LR", help="learning rate (engine default)")
    p.add_argument("--init", default="content", metavar="content|noise", help="start from the content or from noise")
    p.add_argument("--preserve-color", action="store_true", help="keep the content's colours (luminance-only transfer)")
    p.add_argument("--strength", type=float, default=1.0, metavar="S", help="0 = the content, 1 = full style")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variant", default="strotss", metavar="gatys|strotss", help="DST: style/content losses")
    p.add_argument("--points", metavar="PAIRS.json",
                   help='DST: artist keypoints {"pairs": [{"content": [x, y], "style": [x, y]}, ...]}')
    p.add_argument("--auto-points", action="store_true", help="DST: find keypoints automatically (NBB)")
    p.add_argument("--save-keypoints", metavar="OUT.json", help="DST: write the keypoints used (same JSON format)")
    p.add_argument("--debug-dir", metavar="DIR", help="write the engine's debug images there (DST)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA if available)")
    p.add_argument("--daemon", action="store_true", help="run the job through the daemon (started if needed)")
    p.add_argument("--demo", action="store_true",
                   help="stylize a bundled sample photo with a generated brush-stroke picture")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


# ---------------------------------------------------------------------------------------------- argument checks

def _parse_size(value: str | None, content_long_side: int, demo: bool) -> int:
    if value is None:
        return DEMO_SIZE if demo else 512
    if value.strip().lower() == "full":
        return content_long_side
    try:
        return int(value)
    except ValueError:
        raise ImpastoError(f"--size must be a number of pixels or 'full', got {value!r}") from None


def _choose_engine(args: argparse.Namespace) -> tuple[str, bool]:
    """(engine, style_is_name)."""
    style = args.style
    is_file = Path(style).is_file()
    engine = args.engine.strip().lower() if args.engine else None
    if engine is not None and engine not in ENGINES:
        raise ImpastoError(f"unknown engine {args.engine!r}; choose one of {', '.join(ENGINES)}")
    is_model_file = is_file and Path(style).suffix.lower() == ".safetensors"   # a style model, not a painting
    if engine == "mt" or (engine is None and (not is_file or is_model_file)):
        if engine is None and Path(style).suffix.lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"):
            raise ImpastoError(f"{style}: no such file")
        find_style = _mt_find_style()
        if find_style(style) is None:
            if engine == "mt":
                raise ImpastoError(f"no fast (MT) style called {style!r}; `impasto styles` lists them, "
                                   "`impasto train` makes one")
            raise ImpastoError(f"{style}: no such file, and no fast (MT) style of that name (`impasto styles`)")
        return "mt", True
    if not is_file:
        raise ImpastoError(f"{style}: no such file")
    return engine or "gatys", False


def _mt_find_style():
    try:
        from ..engines.mt.styles import find_style
    except ImportError as e:
        raise ImpastoError(f"the fast (MT) engine is not available ({e}); pass a style image instead") from None
    return find_style


def _check_output(path: str) -> Path:
    from PIL import Image
    out = Path(path)
    if out.is_dir():
        raise ImpastoError(f"{out}: is a folder; give a file name such as {out / 'stylized.png'}")
    if not out.parent.exists():
        raise ImpastoError(f"{out}: folder {out.parent} does not exist")
    if out.suffix.lower() not in Image.registered_extensions():
        raise ImpastoError(f"{out}: unknown image type {out.suffix or '(no extension)'!r}; use .png or .jpg")
    return out


def build_options(args: argparse.Namespace, engine: str, style_name: str | None, content_long_side: int):
    from ..engines.dst.keypoints import load_pairs

    keypoints = load_pairs(args.points) if args.points else []
    mode = {(False, False): "none", (True, False): "markers", (False, True): "auto",
            (True, True): "both"}[(bool(args.points), bool(args.auto_points))]
    if mode != "none" and engine != "dst":
        raise ImpastoError("--points/--auto-points are keypoints for --engine dst")
    if args.save_keypoints and engine != "dst":
        raise ImpastoError("--save-keypoints writes the keypoints of --engine dst")
    if (args.save_keypoints or args.debug_dir) and args.daemon:
        raise ImpastoError("--save-keypoints/--debug-dir need the job run here; drop --daemon")
    size = _parse_size(args.size, content_long_side, args.demo)
    opts = StylizeOptions(
        engine=engine, style_name=style_name, size=size, max_side=args.max_side, steps=args.steps, schedule=args.schedule,
        content_weight=args.content_weight, style_weight=args.style_weight, tv_weight=args.tv_weight,
        optimizer=args.optimizer.lower() if args.optimizer else None, learning_rate=args.lr,
        init=args.init.lower(), preserve_color=args.preserve_color, strength=args.strength, seed=args.seed,
        variant=args.variant.lower(), keypoints=keypoints, keypoint_mode=mode, tile_size=args.tile_size)
    if args.demo and args.steps is None and engine == "gatys":
        opts.steps = DEMO_STEPS
    return opts.validate()


# ------------------------------------------------------------------------------------------------------ running

class _Bar:
    """tqdm progress bar over the job's fraction, on stderr, with the stage and loss values."""

    def __init__(self, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=1000, file=sys.stderr, unit="‰", mininterval=0.5, leave=True,
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def __call__(self, p) -> None:
        if self.bar is None:
            return
        target = int(round(max(0.0, min(1.0, p.fraction)) * 1000))
        if target > self.bar.n:
            self.bar.update(target - self.bar.n)
        self.bar.set_description(p.stage[:40], refresh=False)
        if p.losses:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in p.losses.items() if k in ("style", "content", "total")},
                                 refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run(args: argparse.Namespace) -> int:
    import torch

    from .. import engines
    from ..imageio import load_image, save_image

    if args.demo:
        from ..demo import demo_content, demo_style
        if args.content:
            raise ImpastoError("--demo brings its own content picture; drop CONTENT")
        content = demo_content()
        if args.style:
            engine, style_is_name = _choose_engine(args)
        else:
            engine, style_is_name = (args.engine or "gatys").lower(), False
            if engine not in ENGINES:
                raise ImpastoError(f"unknown engine {args.engine!r}; choose one of {', '.join(ENGINES)}")
            if engine == "mt":
                raise ImpastoError("--demo with --engine mt needs --style NAME (`impasto styles`)")
        style = (None if style_is_name else load_image(args.style)) if args.style else demo_style()
        output = _check_output(args.output or "stylized.png")
    else:
        if not args.content:
            raise ImpastoError("give the picture to stylize (CONTENT), or --demo")
        if not args.style:
            raise ImpastoError("give --style: a painting (image file) or a fast style name (`impasto styles`)")
        if not args.output:
            raise ImpastoError("give the result file with -o OUT.png")
        output = _check_output(args.output)
        engine, style_is_name = _choose_engine(args)
        content = load_image(args.content, keep_alpha=True)
        style = None if style_is_name else load_image(args.style)

    options = build_options(args, engine, args.style if style_is_name else None, max(content.shape[2:]))
    device = torch.device(args.device) if args.device else None
    if device is not None and device.type == "cuda" and not torch.cuda.is_available():
        raise ImpastoError(f"--device {args.device}: CUDA is not available here")

    bar = _Bar(enabled=not args.no_progress)
    artifacts: dict = {}
    t0 = time.perf_counter()
    try:
        if args.daemon:
            from ..daemon.cli_bridge import run_via_daemon
            result = run_via_daemon(content, style, options, progress=bar)
        else:
            result = engines.stylize(content, style, options, progress=bar, device=device, artifacts=artifacts)
    finally:
        bar.close()
    if output.suffix.lower() in NO_ALPHA_SUFFIXES:
        result = result[:, :3]
    save_image(result, output)
    log.info("stylized in %.1f s", time.perf_counter() - t0)
    _write_artifacts(args, artifacts, content, style)
    print(f"wrote {output} ({result.shape[3]}×{result.shape[2]}, {options.engine}, "
          f"{time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    return 0


def _write_artifacts(args: argparse.Namespace, artifacts: dict, content, style) -> None:
    from ..imageio import save_image

    if args.save_keypoints:
        from ..engines.dst.keypoints import save_pairs
        pairs = artifacts.get("keypoints") or []
        save_pairs(args.save_keypoints, pairs, content_size=(content.shape[3], content.shape[2]),
                   style_size=(style.shape[3], style.shape[2]) if style is not None else None)
    if args.debug_dir:
        d = Path(args.debug_dir)
        d.mkdir(parents=True, exist_ok=True)
        for name, img in (artifacts.get("debug_images") or {}).items():
            save_image(img, d / f"{name}.png")
