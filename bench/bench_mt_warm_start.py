"""Learning a new MT style from scratch vs from a trained model (``impasto train --init-from``): style and content
loss against training wall time, from snapshots taken during each run.

    python bench/bench_mt_warm_start.py --painting vangogh_wheat_field --init-from nearest \\
        --scratch-minutes 60 --warm-minutes 20 --snapshot-minutes 5 [--out scratch/warm_start]

Both runs train the same painting on ``../shared/data/train`` with the CPU schedule's settings (from scratch: the
full schedule; warm: ``--warm-steps``, a shorter style phase because the style subnet already paints) and stop at
their time budget.  Every ``--snapshot-minutes`` of training time (snapshot writing excluded) the weights are saved;
afterwards each snapshot is measured at 1024 on the validation photos (``mt_eval``: strength = output loss / the
photo's own; content loss at relu4_2), the table is printed, the first warm snapshot that reaches the scratch run's
final style strength with no worse content loss (within 10 %) is named, and the curves are drawn into ``--plot``
(default ``docs/mt_warm_start.png``).  A rerun resumes an interrupted training (the trainer's checkpoints, plus the
elapsed time kept beside them) and measures what is there.  Run it on a quiet machine: the x axis is wall time.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
from impasto.engines.mt.train import TrainConfig, painting_grams, train
from impasto.engines.mt.warm_start import (NEAREST, init_from_model, model_config, nearest_style,
                                           resolve_init_model)
from impasto.vgg import get_vgg
from line_chart import line_chart
from mt_eval import SHARED, VALIDATION, StyleMeasure, load_photos, painting_path, resize_long

ROOT = Path(__file__).resolve().parents[1]


class _TimeUp(Exception):
    pass


def run(kind: str, cfg: TrainConfig, minutes: float, every: float, out: Path) -> None:
    """Train until ``minutes`` of training time; snapshot every ``every`` minutes into out/kind/."""
    folder = out / kind
    folder.mkdir(parents=True, exist_ok=True)
    clock_file = folder / "elapsed.json"
    clock = json.loads(clock_file.read_text()) if clock_file.exists() else {"seconds": 0.0, "done": False}
    if clock["done"]:
        return
    start = time.perf_counter() - clock["seconds"]
    paused = 0.0

    steps_file = folder / "steps.json"          # snapshot -> training step (the per-step cost depends on the CPU)
    steps = json.loads(steps_file.read_text()) if steps_file.exists() else {}

    def snapshot(net: torch.nn.Module, seconds: float, step: int) -> None:
        name = f"t{seconds / 60:06.1f}.pt"
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()}, folder / name)
        steps[name] = step
        steps_file.write_text(json.dumps(steps))

    def on_progress(p) -> None:
        nonlocal paused
        elapsed = time.perf_counter() - start - paused
        due = (int(clock["seconds"] // (every * 60)) + 1) * every * 60
        if elapsed >= due or elapsed >= minutes * 60:
            t0 = time.perf_counter()
            snapshot(p.net, min(elapsed, minutes * 60), p.step)
            clock["seconds"] = elapsed
            clock_file.write_text(json.dumps(clock))
            paused += time.perf_counter() - t0
        if elapsed >= minutes * 60:
            raise _TimeUp

    if clock["seconds"] == 0:                     # the starting point: random weights, or the model's
        first = MultimodalTransferNet(MTConfig.from_dict(cfg.net))
        if cfg.init_from:
            init_from_model(first, cfg.init_from)
        snapshot(first, 0.0, 0)
    try:
        train(cfg, resume=True, device=torch.device("cpu"), on_progress=on_progress)
    except _TimeUp:
        pass
    clock["done"] = True
    clock_file.write_text(json.dumps(clock))


@torch.inference_mode()
def measure(out: Path, kind: str, net_config: dict, painting: Path, photos) -> list[tuple[float, float, float, int]]:
    """(minutes, style strength, content loss, training step) per snapshot, mean over the photos, at 1024."""
    m = StyleMeasure(get_vgg("cpu"), painting)
    xs = [resize_long(img, 1024) for _, img in photos]
    base = [m.losses(x)["style"] for x in xs]
    feats = [m.content_features(x) for x in xs]
    rows = []
    steps_file = out / kind / "steps.json"
    steps = json.loads(steps_file.read_text()) if steps_file.exists() else {}
    for f in sorted((out / kind).glob("t*.pt")):
        net = MultimodalTransferNet(MTConfig.from_dict(net_config))
        net.load_state_dict(torch.load(f, weights_only=True))
        net.eval()
        losses = [m.losses(net(x)[-1].clamp(0, 1), c) for x, c in zip(xs, feats)]
        rows.append((float(f.stem[1:]), sum(o["style"] / b for o, b in zip(losses, base)) / len(xs),
                     sum(o["content"] for o in losses) / len(xs), steps.get(f.name, -1)))
    return rows


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser()
    ap.add_argument("--painting", default="vangogh_wheat_field", help="a painting in ../shared/data/style")
    ap.add_argument("--init-from", default=NEAREST, help="style name, model file or 'nearest'")
    ap.add_argument("--scratch-minutes", type=float, default=60)
    ap.add_argument("--warm-minutes", type=float, default=20)
    ap.add_argument("--snapshot-minutes", type=float, default=5)
    ap.add_argument("--scratch-steps", default="1200,400", help="style,hierarchical steps from scratch")
    ap.add_argument("--warm-steps", default="300,400", help="style,hierarchical steps from the trained model")
    ap.add_argument("--photos", type=int, default=3, help="validation photos to measure on")
    ap.add_argument("--out", default=str(ROOT / "scratch" / "warm_start"))
    ap.add_argument("--plot", default=str(ROOT / "docs" / "mt_warm_start.png"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    painting = painting_path(args.painting)
    out = Path(args.out) / args.painting
    if args.init_from == NEAREST:
        info, d = nearest_style(painting_grams(painting))
        init, init_name = info.path, info.name
        print(f"nearest installed style to {args.painting}: {info.name} (Gram distance {d:.4g})")
    else:
        init = resolve_init_model(args.init_from)
        init_name = init.stem
    if init_name == args.painting:
        raise SystemExit(f"{args.painting} is an installed style: warm-starting from itself measures nothing")
    configs = {}
    for kind, steps in (("scratch", args.scratch_steps), ("warm", args.warm_steps)):
        style_steps, hier_steps = (int(v) for v in steps.split(","))
        configs[kind] = TrainConfig(name=f"{args.painting}-{kind}", style_paths=(str(painting),) * 3,
                                    content_dir=str(SHARED / "train"), out_dir=str(out / "checkpoints"),
                                    style_steps=style_steps, hier_steps=hier_steps,
                                    init_from=str(init) if kind == "warm" else "",
                                    net=(model_config(init) if kind == "warm" else MTConfig()).to_dict())
    run("scratch", configs["scratch"], args.scratch_minutes, args.snapshot_minutes, out)
    run("warm", configs["warm"], args.warm_minutes, args.snapshot_minutes, out)

    photos = load_photos(VALIDATION[:args.photos])
    curves = {kind: measure(out, kind, configs[kind].net, painting, photos) for kind in configs}
    print(f"\n{args.painting}: style strength (output / photo) and content loss at 1024, {len(photos)} "
          f"validation photos; warm = from {init_name}")
    print(f"{'run':<8} {'minutes':>7} {'step':>6} {'style':>7} {'content':>10}")
    for kind, rows in curves.items():
        for minutes, s, c, step in rows:
            print(f"{kind:<8} {minutes:7.1f} {step:6d} {s:7.3f} {c:10.4g}")
    s_end, c_end = curves["scratch"][-1][1:3]
    reached = [m for m, s, c, _ in curves["warm"] if s <= s_end and c <= 1.1 * c_end]
    print(f"scratch after {curves['scratch'][-1][0]:.1f} min: style {s_end:.3f}, content {c_end:.4g}; warm reaches "
          + (f"it at {reached[0]:.1f} min" if reached else "it in none of its snapshots"))
    chart = line_chart([
        {"title": f"{args.painting}: style loss / photo's (1024)", "xlabel": "training minutes",
         "series": {"from scratch": [(m, s) for m, s, _, _ in curves["scratch"]],
                    f"from {init_name}": [(m, s) for m, s, _, _ in curves["warm"]]}},
        {"title": "content loss (relu4_2)", "xlabel": "training minutes",
         "series": {"from scratch": [(m, c) for m, _, c, _ in curves["scratch"]],
                    f"from {init_name}": [(m, c) for m, _, c, _ in curves["warm"]]}}])
    Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
    chart.save(args.plot)
    print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
