"""Time to equal style loss, Gatys L-BFGS: our engine (default precision, and fp32) vs pastiche 1.6 (issue 14.3).

Seconds per iteration (``bench/bench_gatys.py``) do not show what a user waits for. This script measures the time
each engine needs to reach the same Gram style loss. One shared fp32 loss function scores the *output images*. No
engine's own loss value is used, so a low-precision engine cannot flatter itself.

Variants (each in its own subprocess; same content, style, working size, threads and L-BFGS setting):

* ``ours``       -- ``impasto.engines.optim.gatys.stylize`` under the default precision policy (bf16 autocast +
  channels_last on a CPU with AVX512-BF16/AMX; whatever the policy picks elsewhere, printed as ``precision``);
* ``ours fp32``  -- the same with ``IMPASTO_PRECISION=fp32``;
* ``pastiche``   -- ``pastiche.pastiche.PasticheArtist(..., optimizer="lbfgs")``, one ``draw()`` per iteration (fp32).

Both engines run L-BFGS with ``max_iter=1`` and no line search: one iteration is one VGG19 forward and backward.
Both start from the content image. The content (the astronaut, resized by us) and the style (the demo painting)
are written once as ``size``×``size`` PNGs, and both engines read those files. So neither engine resizes, and the
two start images are the same pixels.

What the clock includes (the same for every variant): from just before the images are read, through building the
targets (and pastiche's initial loss evaluation), to the end of iteration k. It does not include the Python imports
or the VGG19 weight load. For ours, the load is done by ``optim.common.prepare`` before the clock starts (the engine
then finds the shared network cached). For pastiche, ``VGG19.from_quantized_bin`` is called once before the clock,
and the constructor is handed that network. The first iterations' kernel set-up (oneDNN primitives) is included: a
user pays it too.

Checkpoint images: every ``--every`` iterations the working-resolution image is copied out. The copy time is
measured and left off the clock. For pastiche the script drives the ``draw()`` loop itself. Our engine returns only
its final image, so the progress callback (called once per iteration, right after the step and the clamp to [0, 1])
reads the optimized tensor ``x`` from the engine's frame (``sys._getframe(1)``) at checkpoint iterations. We chose
this over re-running the engine with ``steps=k`` for each checkpoint. That would also work, because L-BFGS without
line search is deterministic. But it costs O(iters²/every) iterations (about 10x the run at the defaults). It would
also time a different run from the one that makes the images. One run, one clock: it costs what pastiche's run
costs. The trade is a dependency on the engine's local variable name. The worker fails loudly if ``x`` is missing,
and it checks that the last checkpoint is bit-identical to the image ``stylize`` returns. The script also checks
the shared loss function against the engine's own report. Under fp32 the style loss the engine reports at step k+1
(evaluated at the image after step k) must match the shared measure of checkpoint k (printed as "shared vs engine").

The shared measure, in the parent process, fp32, no autocast, our VGG19 (the same Caffe weights as pastiche's,
dequantized and cached as fp16 values). It is ``GatysObjective``'s style term: ``gram_style_loss`` over relu1_1 ..
relu5_1 against the style image's Gram matrices at the working size, each layer divided by the mean square of the
style's Gram at that layer, then the mean over the 5 layers. Beside it is the content term: MSE at relu4_2 divided by
the content features' mean square. Images are clamped to [0, 1] before measuring, as saving them would. pastiche does
not clamp while it optimizes, so the script reports how many of its pixels are out of range.

Headline. The target style loss is the largest of the variants' best (lowest) checkpoint losses. So every variant
reaches it within ``--iters``: it is the best quality that all of them reach. The time to reach it is interpolated
linearly in (time, log loss) between the two checkpoints that bracket the first crossing. The first checkpoint at or
below the target is printed beside it. The script reports the ratios ours/pastiche and ours-fp32/pastiche (the issue's
target: ours ≤ 0.4×).

    python bench/bench_gatys_quality.py [--size 512] [--iters 200] [--every 10] [--threads 2]
    python bench/bench_gatys_quality.py --quick            # tiny dry run (64 px, 10 iterations)

The two objectives are not the same, so "same style loss" is not "same image". pastiche's own objective weighs the
style layers by the magnitude of their Gram matrices rather than normalising each layer, and it has its own content
weight. The script prints pastiche's effective weights in our normalised units, and the content loss of every
checkpoint, so the trade-off shows.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYERS = ("relu4_2",)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


# ------------------------------------------------------------------------------------------------ worker processes

def checkpoint_iters(iters: int, every: int) -> list[int]:
    return sorted(set(range(every, iters + 1, every)) | {iters})


def worker_ours(content: str, style: str, size: int, iters: int, every: int, out: Path) -> dict:
    import torch
    from impasto.engines.optim import gatys
    from impasto.engines.optim.common import prepare
    from impasto.imageio import load_image
    from impasto.precision import policy
    from impasto_protocol import StylizeOptions

    prepare(None)                         # VGG19 weight load + memory format: outside the clock (see docstring)
    label = policy("cpu", "optimization").label
    wanted = set(checkpoint_iters(iters, every))
    snaps: dict[int, torch.Tensor] = {}
    times: dict[int, float] = {}
    engine_losses: dict[int, dict] = {}
    state = {"step": 0, "excluded": 0.0}

    t0 = time.perf_counter()
    c, s = load_image(content), load_image(style)
    if max(c.shape[2:]) != size or max(s.shape[2:]) != size:
        raise SystemExit(f"expected {size}-px inputs, got {tuple(c.shape)} and {tuple(s.shape)}")
    state["excluded"] += _timed(lambda: snaps.__setitem__(0, c[:, :3].float().clone()))   # init="content"

    def on_progress(p) -> None:
        t = time.perf_counter()
        state["step"] += 1
        k = state["step"]
        engine_losses[k] = dict(p.losses or {})      # evaluated at the start of step k, i.e. at image k-1
        if k in wanted:
            frame = sys._getframe(1)
            x = frame.f_locals.get("x")
            if frame.f_code.co_name != "stylize" or not isinstance(x, torch.Tensor):
                raise RuntimeError("cannot read the optimized image from gatys.stylize's frame "
                                   f"(caller {frame.f_code.co_name!r}, x={type(x).__name__}); update this bench")
            snaps[k] = x.detach().float().clone().cpu()
            times[k] = t - t0 - state["excluded"]
        state["excluded"] += time.perf_counter() - t

    result = gatys.stylize(c, s, StylizeOptions(engine="gatys", size=size, steps=iters, optimizer="lbfgs"),
                           progress=on_progress)
    total = time.perf_counter() - t0 - state["excluded"]
    if state["step"] != iters:
        raise RuntimeError(f"progress was called {state['step']} times for {iters} iterations")
    if not torch.equal(result, snaps[iters]):
        raise RuntimeError("the last checkpoint differs from the image stylize returned")
    return _save(out, snaps, times, {k: v.get("style") for k, v in engine_losses.items()}, total, label, None)


def worker_pastiche(content: str, style: str, size: int, iters: int, every: int, out: Path) -> dict:
    import torch
    import pastiche.pastiche as pp

    wanted = set(checkpoint_iters(iters, every))
    weights = Path(pp.__file__).with_name("vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin")
    vgg = pp.VGG19.from_quantized_bin(str(weights), pooling="max")     # the weight load, outside the clock
    pp.VGG19.from_quantized_bin = staticmethod(lambda path, pooling="max": vgg)
    mean = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)

    def rgb01(t: torch.Tensor) -> torch.Tensor:      # pastiche's BGR, 0-255, minus mean -> RGB [0, 1] (unclamped)
        return ((t.detach().cpu().float() + mean).flip(1) / 255.0).clone()

    snaps: dict[int, torch.Tensor] = {}
    times: dict[int, float] = {}
    own_losses: dict[int, float] = {}
    excluded = 0.0
    t0 = time.perf_counter()
    artist = pp.PasticheArtist(content, [style], device="cpu", optimizer="lbfgs", size=None,
                               size_pixels=size * size)
    setup = time.perf_counter() - t0
    if max(artist.content_size) != size:
        raise SystemExit(f"pastiche resized the content to {artist.content_size}, expected {size}")
    excluded += _timed(lambda: snaps.__setitem__(0, rgb01(artist.pastiche)))
    for k in range(1, iters + 1):
        artist.draw()
        own_losses[k] = artist.loss                  # pastiche's own objective, at image k-1
        if k in wanted:
            t = time.perf_counter()
            times[k] = t - t0 - excluded
            snaps[k] = rgb01(artist.pastiche)
            excluded += time.perf_counter() - t
    total = time.perf_counter() - t0 - excluded
    return _save(out, snaps, times, own_losses, total, "fp32", setup)


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _save(out: Path, snaps, times, engine_losses, total, label, setup) -> dict:
    import torch
    torch.save({k: v for k, v in snaps.items()}, out.with_suffix(".pt"))
    meta = {"times": times, "engine_losses": engine_losses, "total_s": total, "precision": label,
            "setup_s": setup, "iters": sorted(snaps)}
    out.with_suffix(".json").write_text(json.dumps(meta))
    return meta


def worker_main(argv: list[str]) -> None:
    which, content, style, size, iters, every, threads, out = argv
    import torch
    torch.set_num_threads(int(threads))
    fn = worker_ours if which == "ours" else worker_pastiche
    fn(content, style, int(size), int(iters), int(every), Path(out))


# ---------------------------------------------------------------------------------------------- the shared measure

class SharedMeasure:
    """GatysObjective's style and content terms, fp32, no autocast, on our VGG19 (see the module docstring)."""

    def __init__(self, content, style):
        import torch
        from impasto.losses.gram import gram_targets
        from impasto.vgg import get_vgg
        self.torch = torch
        self.vgg = get_vgg("cpu")
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            sf = self.vgg(style.float(), STYLE_LAYERS)
            cf = self.vgg(content.float(), CONTENT_LAYERS)
        self.gram = gram_targets(sf, STYLE_LAYERS)
        self.gram_ms = {l: g.pow(2).mean().clamp(min=1e-12).item() for l, g in self.gram.items()}
        self.style_norm = {l: 1.0 / v for l, v in self.gram_ms.items()}
        self.content_targets = {l: f.float() for l, f in cf.items()}
        self.content_ms = sum(f.pow(2).mean().item() for f in self.content_targets.values())

    def __call__(self, img) -> tuple[float, float]:
        from impasto.losses.content import content_loss
        from impasto.losses.gram import gram_style_loss
        torch = self.torch
        with torch.no_grad(), torch.autocast("cpu", enabled=False):
            feats = self.vgg(img.float().clamp(0, 1).contiguous(), STYLE_LAYERS + CONTENT_LAYERS)
            ls = gram_style_loss(feats, self.gram, self.style_norm) / len(STYLE_LAYERS)
            lc = content_loss(feats, self.content_targets, CONTENT_LAYERS) / self.content_ms
        return ls.item(), lc.item()

    def pastiche_weights(self) -> tuple[dict[str, float], float]:
        """pastiche's objective in our normalised terms, scaled so that its style weights sum to 1 (ours: 0.2 each,
        content 0.05).  pastiche: Σ_l 10/C_l² · mse(FFᵀ/(HW)) + 0.01 · mse(F4_2) = Σ_l 10·mean(G_l^s ²)·ŝ_l
        + 0.01·mean(F_c²)·ĉ, with ŝ_l, ĉ our normalised layer and content terms."""
        w = {l: 10.0 * v for l, v in self.gram_ms.items()}
        tot = sum(w.values())
        return {l: v / tot for l, v in w.items()}, 0.01 * self.content_ms / tot


# ---------------------------------------------------------------------------------------------------- the headline

def time_to(target: float, rows: list[tuple[int, float, float]]) -> tuple[float, float, int, float] | None:
    """(interpolated seconds, interpolated iterations, first checkpoint ≤ target, its seconds), or None if never.

    ``rows``: (iteration, seconds, style loss) of the timed checkpoints (iteration 0 left out, so that no variant
    interpolates from its setup).  Interpolation is linear in log loss between the checkpoint before the crossing
    and the first one at or below the target; a crossing at the first checkpoint takes that checkpoint's time."""
    prev = None
    for it, sec, loss in rows:
        if loss <= target:
            if prev is not None and prev[2] > target > 0 and loss > 0:
                f = (math.log(prev[2]) - math.log(target)) / (math.log(prev[2]) - math.log(loss))
                return prev[1] + f * (sec - prev[1]), prev[0] + f * (it - prev[0]), it, sec
            return sec, float(it), it, sec
        prev = (it, sec, loss)
    return None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, help="working size, px (default 512; --quick: 64)")
    ap.add_argument("--iters", type=int, help="L-BFGS iterations per variant (default 200; --quick: 10)")
    ap.add_argument("--every", type=int, help="checkpoint interval, iterations (default 10; --quick: 5)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="a tiny dry run")
    ap.add_argument("--no-fp32", action="store_true", help="skip ours in fp32")
    args = ap.parse_args()
    quick = {"size": 64, "iters": 10, "every": 5}
    full = {"size": 512, "iters": 200, "every": 10}
    for k, v in (quick if args.quick else full).items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    if args.every < 1 or args.iters < 1:
        ap.error("--iters and --every must be >= 1")

    import torch
    torch.set_num_threads(args.threads)
    from impasto.demo import demo_painting
    from impasto.engines.optim.common import resize_long_side
    from impasto.imageio import load_image, sample_image, save_image

    load_start = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench_gatys_quality_"))
    content_png, style_png = tmp / "content.png", tmp / "style.png"
    save_image(resize_long_side(sample_image("astronaut"), args.size), content_png)
    demo_painting(args.size).save(style_png)
    content, style = load_image(content_png), load_image(style_png)
    print(f"Gatys L-BFGS, time to equal style loss: {args.size} px, {args.iters} iterations, checkpoints every "
          f"{args.every}, {args.threads} threads; images in {tmp}", flush=True)
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}", flush=True)

    variants = [("ours", "ours", {}), ("pastiche 1.6", "pastiche", {})]
    if not args.no_fp32:
        variants.append(("ours fp32", "ours", {"IMPASTO_PRECISION": "fp32"}))
    metas = {}
    for name, which, env_extra in variants:
        out = tmp / name.replace(" ", "_").replace(".", "")
        env = {**os.environ, **env_extra, "OMP_NUM_THREADS": str(args.threads)}
        t = time.time()
        subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", which, str(content_png),
                        str(style_png), str(args.size), str(args.iters), str(args.every), str(args.threads),
                        str(out)], env=env, check=True)
        metas[name] = (json.loads(out.with_suffix(".json").read_text()), torch.load(out.with_suffix(".pt")))
        print(f"  ran {name} ({metas[name][0]['precision']}) in {time.time() - t:.0f} s wall, "
              f"load {os.getloadavg()[0]:.2f}", flush=True)

    measure = SharedMeasure(content, style)
    rows: dict[str, list[tuple[int, float | None, float, float]]] = {}
    for name, (meta, snaps) in metas.items():
        times = {int(k): v for k, v in meta["times"].items()}
        rows[name] = []
        for it in sorted(snaps):
            ls, lc = measure(snaps[it])
            sec = meta["setup_s"] if it == 0 else times[it]
            rows[name].append((it, sec, ls, lc))
        save_image(snaps[max(snaps)].clamp(0, 1), tmp / f"{name.replace(' ', '_').replace('.', '')}_final.png")

    for name, (meta, snaps) in metas.items():
        print(f"\n{name} ({meta['precision']}); shared fp32 measure; seconds = cumulative, setup included"
              + ("" if meta["setup_s"] is None else f" (setup {meta['setup_s']:.2f} s)"))
        print(f"  {'iter':>5} {'seconds':>9} {'style':>11} {'content':>11}")
        for it, sec, ls, lc in rows[name]:
            s = "-" if sec is None else f"{sec:.2f}"
            print(f"  {it:>5} {s:>9} {ls:>11.5g} {lc:>11.5g}")
        eng = {int(k): v for k, v in meta["engine_losses"].items()}
        if name.startswith("ours"):
            # the engine's style at step k+1 was evaluated at checkpoint k's image
            pairs = [(ls, eng[it + 1]) for it, _, ls, _ in rows[name] if it + 1 in eng and eng[it + 1] is not None]
            if pairs:
                rel = max(abs(a - b) / max(abs(a), 1e-30) for a, b in pairs)
                print(f"  shared vs engine-reported style loss ({meta['precision']}): max relative difference "
                      f"{rel:.2e} over {len(pairs)} checkpoints")
        else:
            last = snaps[max(snaps)]
            out_of_range = ((last < 0) | (last > 1)).float().mean().item()
            print(f"  pixels outside [0, 1] in its last image (clamped for measuring): {100 * out_of_range:.2f} %"
                  f" (min {last.min().item():.3f}, max {last.max().item():.3f})")

    pw, pc = measure.pastiche_weights()
    print("\npastiche's objective in our normalised terms (style weights summing to 1; ours: 0.2 per layer, "
          "content 0.05):")
    print("  style " + "  ".join(f"{l} {w:.3g}" for l, w in pw.items()) + f";  content {pc:.3g}")

    best = {name: min(r[2] for r in rs if r[0] > 0) for name, rs in rows.items()}
    setter = max(best, key=best.get)
    target = best[setter]
    print(f"\ntarget style loss = {target:.5g} (the largest of the variants' best checkpoint losses: {setter}'s)")
    reach = {name: time_to(target, [(it, sec, ls) for it, sec, ls, _ in rs if it > 0]) for name, rs in rows.items()}
    for name, r in reach.items():
        if r is None:
            print(f"  {name:<14} never reached")
            continue
        sec, it, first_it, first_sec = r
        print(f"  {name:<14} {sec:8.2f} s (~{it:.1f} iterations; first checkpoint at or below: iteration {first_it},"
              f" {first_sec:.2f} s)")
    base = reach.get("pastiche 1.6")
    for name in ("ours", "ours fp32"):
        if name in reach and reach[name] and base:
            print(f"  ratio {name}/pastiche = {reach[name][0] / base[0]:.2f}x"
                  + ("  (target <= 0.4x)" if name == "ours" else "  (fp32: the part of the gain that is not precision)"))
    load_end = os.getloadavg()
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")


if __name__ == "__main__":
    main()
