"""``impasto stylize``: the one command-line entry to every engine (MT, DST, Gatys, STROTSS).

``--style`` is a painting (image file) or, for the fast engine, the name of a trained MT style.  Without
``--engine``: MT when STYLE is not a file but a known style name, Gatys otherwise.  ``--demo`` stylizes
scikit-image's astronaut photo with a generated brush-stroke picture (no files needed).
``--daemon`` runs the job through the daemon (the path the editor plugins use) instead of in this process.

Several CONTENT files, or folders of them, make a batch: ``-o`` is then a folder, each result is ``<name>.png``
there, one progress bar runs over all files, a file that fails is reported and skipped, the failures are listed at
the end and the exit status is 1 if any failed.  The style (painting or MT model) is loaded once for the batch.

Every PNG result carries its recipe (``impasto_protocol.recipe``) in the text chunk ``impasto:recipe``;
``--recipe RESULT.png`` runs the same job again from it.  A 16-bit PNG/TIFF content gives a 16-bit PNG/TIFF result.
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
    p.add_argument("content", nargs="*", metavar="CONTENT",
                   help="the picture(s) to stylize, or folders of them (a batch; not with --demo)")
    p.add_argument("--style", metavar="STYLE", help="painting (image file), or an MT style name (see `impasto styles`)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="result image file (PNG/TIFF keep alpha and 16 bit), or a folder for a batch")
    p.add_argument("--recipe", metavar="RESULT.png",
                   help="make a result again: take every option from the recipe stored in an earlier result "
                        "(or a .json recipe); CONTENT, --style, -o and --device still come from the command line")
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
    p.add_argument("--daemon", nargs="?", const="", default=None, metavar="NAME",
                   help="run the job through the daemon (the local one, started if needed; or the remote server "
                        "NAME paired with `impasto remote add`)")
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
    if (args.save_keypoints or args.debug_dir) and args.daemon is not None:
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

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


class _Bar:
    """tqdm progress bar over the job's fraction, on stderr, with the stage and loss values.

    For a batch, ``slot(i, n)`` makes the next job's fraction fill the i-th of n equal parts of the one bar."""

    def __init__(self, enabled: bool):
        self.bar = None
        self.offset, self.span = 0, 1000
        if enabled:
            from tqdm import tqdm
            self.bar = tqdm(total=1000, file=sys.stderr, unit="‰", mininterval=0.5, leave=True,
                            bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}")

    def slot(self, i: int, n: int) -> None:
        self.offset, self.span = i * 1000 // n, (i + 1) * 1000 // n - i * 1000 // n
        self._goto(self.offset)

    def _goto(self, target: int) -> None:
        if self.bar is not None and target > self.bar.n:
            self.bar.update(target - self.bar.n)

    def __call__(self, p) -> None:
        if self.bar is None:
            return
        self._goto(self.offset + int(round(max(0.0, min(1.0, p.fraction)) * self.span)))
        self.bar.set_description(p.stage[:40], refresh=False)
        if p.losses:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in p.losses.items() if k in ("style", "content", "total")},
                                 refresh=False)

    def write(self, line: str) -> None:
        """A line on stderr that does not tear the bar."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self._goto(1000)
            self.bar.close()


def _read_recipe(path: str):
    from impasto_protocol.options import OptionsError
    from impasto_protocol.recipe import RECIPE_KEY, Recipe

    from ..imageio import read_image

    p = Path(path)
    if p.suffix.lower() == ".json":
        if not p.is_file():
            raise ImpastoError(f"{p}: no such file")
        text = p.read_text(encoding="utf-8")
    else:
        text = (read_image(p).text or {}).get(RECIPE_KEY)
        if text is None:
            raise ImpastoError(f"{p}: has no Impasto recipe (only PNG results made by Impasto carry one)")
    try:
        return Recipe.from_json(text)
    except OptionsError as e:
        raise ImpastoError(f"{p}: {e}") from None


def _expand_inputs(items: list[str]) -> list[Path]:
    """CONTENT arguments as files: folders give their image files (sorted, not recursive); a missing path is kept
    so that it is reported as a failure of its own."""
    files: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                log.warning("%s: no image files in this folder", p)
            files.extend(found)
        else:
            files.append(p)
    return files


def _batch_outputs(inputs: list[Path], outdir: Path) -> list[Path]:
    """``outdir/<stem>.png`` per input (TIFF inputs give .tif), ``<stem>_2.png`` ... when two inputs share a name."""
    taken: set[str] = set()
    outs = []
    for f in inputs:
        suffix = ".tif" if f.suffix.lower() in (".tif", ".tiff") else ".png"
        name, k = f"{f.stem}{suffix}", 2
        while name in taken:
            name, k = f"{f.stem}_{k}{suffix}", k + 1
        taken.add(name)
        outs.append(outdir / name)
    return outs


def run(args: argparse.Namespace) -> int:
    import torch

    from ..imageio import load_image

    recipe = _read_recipe(args.recipe) if args.recipe else None
    if recipe is not None and not args.style and recipe.engine == "mt" and recipe.style is not None:
        args.style = recipe.style.name
    if args.demo:
        from ..demo import demo_style
        if args.content:
            raise ImpastoError("--demo brings its own content picture; drop CONTENT")
        if args.style:
            engine, style_is_name = _choose_engine(args)
        else:
            engine, style_is_name = (args.engine or "gatys").lower(), False
            if engine not in ENGINES:
                raise ImpastoError(f"unknown engine {args.engine!r}; choose one of {', '.join(ENGINES)}")
            if engine == "mt":
                raise ImpastoError("--demo with --engine mt needs --style NAME (`impasto styles`)")
        style = (None if style_is_name else load_image(args.style)) if args.style else demo_style()
        jobs = [(None, _check_output(args.output or "stylized.png"))]
    else:
        if not args.content:
            raise ImpastoError("give the picture to stylize (CONTENT), or --demo")
        if not args.style:
            raise ImpastoError("give --style: a painting (image file) or a fast style name (`impasto styles`)")
        if not args.output:
            raise ImpastoError("give the result file with -o OUT.png" + (" (a folder for several pictures)"
                                                                          if len(args.content) > 1 else ""))
        batch = len(args.content) > 1 or Path(args.content[0]).is_dir()
        if batch:
            outdir = Path(args.output)
            if outdir.exists() and not outdir.is_dir():
                raise ImpastoError(f"{outdir}: is a file; with several pictures -o is a folder")
            if not outdir.parent.exists():
                raise ImpastoError(f"{outdir}: folder {outdir.parent} does not exist")
            inputs = _expand_inputs(args.content)
            if not inputs:
                raise ImpastoError("no image files to stylize in " + ", ".join(args.content))
            if args.save_keypoints or args.debug_dir:
                raise ImpastoError("--save-keypoints/--debug-dir are for one picture, not a batch")
            outdir.mkdir(exist_ok=True)
            jobs = list(zip(inputs, _batch_outputs(inputs, outdir)))
        else:
            jobs = [(Path(args.content[0]), _check_output(args.output))]
        if recipe is not None and args.engine is None:
            args.engine = recipe.engine
        engine, style_is_name = _choose_engine(args)
        style = None if style_is_name else load_image(args.style)

    device = torch.device(args.device) if args.device else None
    if device is not None and device.type == "cuda" and not torch.cuda.is_available():
        raise ImpastoError(f"--device {args.device}: CUDA is not available here")
    if recipe is not None:
        _check_recipe_style(recipe, style, args.style if style_is_name else None)

    failures: list[tuple[Path, str]] = []
    t0 = time.perf_counter()
    if len(jobs) == 1:               # one picture: a bad file or option is reported before any bar is drawn
        content_path, output = jobs[0]
        prepared = _prepare(args, content_path, engine, style_is_name, recipe)
        bar = _Bar(enabled=not args.no_progress)
        try:
            _stylize_one(args, prepared, output, style, style_is_name, device, bar)
        finally:
            bar.close()
        return 0
    bar = _Bar(enabled=not args.no_progress)
    try:
        for i, (content_path, output) in enumerate(jobs):
            bar.slot(i, len(jobs))
            try:
                prepared = _prepare(args, content_path, engine, style_is_name, recipe)
                _stylize_one(args, prepared, output, style, style_is_name, device, bar)
            except (ImpastoError, ValueError, RuntimeError, OSError) as e:    # keep going; reported below
                log.debug("batch item %s failed", content_path, exc_info=True)
                failures.append((content_path, str(e)))
    finally:
        bar.close()
    print(f"stylized {len(jobs) - len(failures)} of {len(jobs)} pictures into {args.output} "
          f"({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    if failures:
        print(f"{len(failures)} failed:", file=sys.stderr)
        for path, why in failures:
            print(f"  {why}" if str(path) in why else f"  {path}: {why}", file=sys.stderr)
        return 1
    return 0


def _check_recipe_style(recipe, style, style_name: str | None) -> None:
    """Warn when the style given now is not the one the recipe was made with (the result will differ)."""
    from ..recipe import pixels_sha256

    if recipe.style is None:
        return
    if recipe.style.kind == "painting" and style is not None and pixels_sha256(style) != recipe.style.sha256:
        log.warning("--style is not the painting this recipe was made with; the result will differ")
        print("impasto: warning: --style is not the painting of this recipe (its pixels differ)", file=sys.stderr)
    elif recipe.style.kind == "model" and style_name and style_name != recipe.style.name:
        print(f"impasto: warning: the recipe used the style {recipe.style.name!r}, not {style_name!r}",
              file=sys.stderr)


def _prepare(args: argparse.Namespace, content_path: Path | None, engine: str, style_is_name: bool, recipe):
    """(content tensor, its bit depth, the job's options) for one picture; raises for a bad file or option."""
    from ..demo import demo_content
    from ..imageio import read_image

    if content_path is None:
        content, bits = demo_content(), 8
    else:
        pic = read_image(content_path, keep_alpha=True)
        content, bits = pic.tensor, pic.bits
    if recipe is not None:
        options = recipe.stylize_options()
        if options.engine != engine:
            raise ImpastoError(f"the recipe is for engine {options.engine!r}, not {engine!r}")
    else:
        options = build_options(args, engine, args.style if style_is_name else None, max(content.shape[2:]))
    return content, bits, options


def _stylize_one(args: argparse.Namespace, prepared, output: Path, style, style_is_name: bool, device,
                 bar: _Bar) -> Path:
    """Stylize one prepared picture and write ``output`` with its recipe.  Raises on failure."""
    from impasto_protocol.recipe import RECIPE_KEY

    from .. import engines
    from ..imageio import output_bits, save_image
    from ..recipe import make_recipe

    content, bits, options = prepared
    artifacts: dict = {}
    t0 = time.perf_counter()
    if args.daemon is not None:
        from ..daemon.cli_bridge import run_via_daemon
        result = run_via_daemon(content, style, options, progress=bar, remote=args.daemon or None)
    else:
        result = engines.stylize(content, style, options, progress=bar, device=device, artifacts=artifacts)
    if output.suffix.lower() in NO_ALPHA_SUFFIXES:
        result = result[:, :3]
    made = make_recipe(options, style, device=device, content=content,
                       style_file=None if style_is_name or not args.style else args.style)
    save_image(result, output, bits=bits, text={RECIPE_KEY: made.to_json()})
    log.info("stylized %s in %.1f s", output, time.perf_counter() - t0)
    _write_artifacts(args, artifacts, content, style)
    bar.write(f"wrote {output} ({result.shape[3]}×{result.shape[2]}, {options.engine}, "
              f"{output_bits(output, bits)} bit, {time.perf_counter() - t0:.1f} s)")
    return output


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
