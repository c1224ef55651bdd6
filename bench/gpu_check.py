"""Every CUDA figure the project claims or targets, in one run of at most ~8 minutes (docs/gpu.md).

    python bench/gpu_check.py            # on a machine with CUDA; prints "no CUDA" and exits 0 elsewhere

Sections (each prints its figures, the target where there is one, and whether the loss fell -- not only that it ran):

* policy      the precision policy in force (``impasto.precision.describe``) and the GPU;
* mt          MT forward (the engine's ``run_levels``: three levels) at 1024 and 2048, ms per precision
              (target <= 15 ms at 1024), and each precision's max |difference| to fp32;
* gatys       s/iter at 512 (L-BFGS, one VGG fwd+bwd) and time-to-quality (seconds until the style loss is 1/10 of
              its start), per precision: the policy's, fp16 + loss scaling, fp16 unscaled (the negative control),
              fp32;
* strotss     a default STROTSS run at 256: time and the loss falling;
* dst         the default DST run (STROTSS terms, NBB keypoints, 3 x 150 steps) at 256 and 512 on the synthetic
              case (target <= 10 s at 256): time, peak memory, style distance before/after, keypoint miss;
* nbb         NBB at 256: median time, pairs, error against the known transform;
* train       MT training, a few hundred steps on sample photos: the loss falling;
* tiled       tiled MT at 8192² (uint8 RGBA canvas, tiles streamed as the daemon does): s and peak GPU memory
              (target <= 5 s);
* daemon      the daemon's round trip for a 4096² RGBA8 result (identity job, ``impasto serve``), and its
              overhead over the same work in-process (target <= 150 ms).

Images are generated or scikit-image samples (nothing from ../shared).  ``--device cpu --quick`` runs every section
at tiny sizes on the CPU: a dry run of this script's code, not a measurement.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))       # the other bench scripts, for their helpers

MODES_CUDA = ("auto", "fp16", "fp16-unscaled", "fp32")


class Check:
    """The run's device, sizes and deadline; ``sync()`` makes wall-clock times honest on CUDA."""

    def __init__(self, device: torch.device, quick: bool, budget_s: float):
        self.device, self.quick = device, quick
        self.t0 = time.perf_counter()
        self.budget_s = budget_s
        self.failures: list[str] = []

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def reset_peak(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)

    def peak(self) -> str:
        if self.device.type == "cuda":
            return f"peak GPU memory {torch.cuda.max_memory_allocated(self.device) / 2**20:.0f} MiB"
        import resource
        return f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"

    def verdict(self, name: str, ok: bool) -> str:
        if not ok:
            self.failures.append(name)
        return "OK" if ok else "FAIL"

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.t0)


@contextmanager
def precision_mode(mode: str):
    """IMPASTO_PRECISION=mode for the enclosed block ("auto": the policy's own choice)."""
    old = os.environ.get("IMPASTO_PRECISION")
    os.environ["IMPASTO_PRECISION"] = mode
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("IMPASTO_PRECISION", None)
        else:
            os.environ["IMPASTO_PRECISION"] = old


def modes(ck: Check) -> tuple[str, ...]:
    """The precisions to compare: the policy's, fp16 scaled and unscaled, fp32 (bf16 forced too where the policy
    did not pick it and the device has it)."""
    out = list(MODES_CUDA)
    from impasto.precision import policy
    if policy(ck.device).mode != "bf16" and (ck.device.type == "cpu" or torch.cuda.is_bf16_supported()):
        out.insert(1, "bf16")
    return tuple(out)


# ------------------------------------------------------------------------------------------------- sections

def section_policy(ck: Check) -> None:
    from impasto.precision import describe
    if ck.device.type == "cuda":
        i = ck.device.index or 0
        cap = torch.cuda.get_device_capability(i)
        print(f"GPU        {torch.cuda.get_device_name(i)}, sm{cap[0]}{cap[1]}, "
              f"{torch.cuda.get_device_properties(i).total_memory / 2**30:.0f} GiB; torch {torch.__version__}, "
              f"CUDA {torch.version.cuda}")
    else:
        print(f"device     {ck.device} (dry run); torch {torch.__version__}")
    print(f"policy     {describe(ck.device)}")


def section_mt(ck: Check) -> None:
    from bench_tiling_8192 import make_net
    from impasto.engines.mt.engine import run_levels
    from impasto.engines.mt.styles import find_style, style_names
    from impasto.precision import policy
    names = style_names()
    net = make_net(find_style(names[0]).path if names else None).to(ck.device)   # a shipped style: real weights
    print(f"mt         style {names[0] if names else 'random weights (no style installed)'}")
    iters = 3 if ck.quick else 20
    for side in (ck.size(1024, 64), ck.size(2048, 128)):
        x = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0)).to(ck.device)
        ref = None
        for mode in ("fp32",) + tuple(m for m in modes(ck) if m not in ("fp32", "fp16-unscaled")):
            with precision_mode(mode):
                net = net.to(memory_format=policy(ck.device, "inference").memory_format)
                run_levels(net, x, ck.device)                     # warm-up (cuDNN algorithm choice)
                times = []
                for _ in range(iters):
                    ck.sync()
                    t = time.perf_counter()
                    out = run_levels(net, x, ck.device)[-1]
                    ck.sync()
                    times.append(time.perf_counter() - t)
            out = out.clamp(0, 1)                                 # what the engine returns
            ref = out if mode == "fp32" else ref
            diff = (out - ref).abs()
            target = "  [target <= 15 ms]" if side == 1024 and not ck.quick else ""
            ok = bool(torch.isfinite(out).all()) and diff.mean().item() < 2 / 255
            print(f"mt         {side}²  {mode:14s} {statistics.median(times) * 1e3:8.1f} ms (median of {iters})  "
                  f"|diff to fp32| mean {diff.mean().item() * 255:.2f}/255 max {diff.max().item() * 255:.0f}/255  "
                  f"{ck.verdict(f'mt {side} {mode}', ok)}{target}")


def section_gatys(ck: Check) -> None:
    from impasto.demo import demo_style
    from impasto.engines.optim import gatys
    from impasto.engines.optim.common import resize_long_side
    from impasto.imageio import sample_image
    from impasto.vgg import get_vgg
    from impasto_protocol import StylizeOptions
    size = ck.size(512, 64)
    steps = 20 if ck.quick else 200
    photo, painting = resize_long_side(sample_image("astronaut"), size), demo_style(size)
    opts = StylizeOptions(engine="gatys", size=size, steps=steps, seed=0)
    with precision_mode("fp32"):
        objective = gatys.GatysObjective(get_vgg(ck.device), photo.to(ck.device), painting.to(ck.device), opts,
                                         ck.device)
        with torch.no_grad():
            at_init = objective(photo.to(ck.device))[1]["style"]
    falls: dict[str, float] = {}
    for mode in modes(ck):
        stamps: list[tuple[float, float]] = []

        def progress(p):
            ck.sync()
            stamps.append((time.perf_counter(), p.losses["style"]))

        with precision_mode(mode):
            gatys.stylize(photo, painting, StylizeOptions(engine="gatys", size=size, steps=2, seed=0),
                          device=ck.device)                        # warm-up
            ck.sync()
            t0 = time.perf_counter()
            out = gatys.stylize(photo, painting, opts, device=ck.device, progress=progress)
        per_step = statistics.median(b[0] - a[0] for a, b in zip(stamps, stamps[1:]))
        reached = next((t - t0 for t, s in stamps if s <= at_init / 10), None)
        with precision_mode("fp32"), torch.no_grad():
            at_end = objective(out.to(ck.device))[1]["style"]
        fall = falls[mode] = at_init / at_end
        expect_fall = mode != "fp16-unscaled"
        ok = fall >= 10 if expect_fall else True          # the negative control is reported, not required
        ttq = f"{reached:.2f} s" if reached is not None else "not reached"
        note = "" if expect_fall else f"  (negative control; fp16 + loss scaling fell {falls.get('fp16', 0):.1f}x)"
        print(f"gatys      {size}²  {mode:14s} {per_step:.4f} s/iter  time to style/10: {ttq:>11s}  "
              f"style loss {at_init:.3g} -> {at_end:.3g} ({fall:.1f}x, {steps} steps)  "
              f"{ck.verdict(f'gatys {mode}', ok)}{note}")


def section_strotss(ck: Check) -> None:
    from impasto.demo import demo_style
    from impasto.engines.optim import strotss
    from impasto.engines.optim.common import resize_long_side
    from impasto.imageio import sample_image
    from impasto_protocol import StylizeOptions
    size = ck.size(256, 64)
    c, s = resize_long_side(sample_image("astronaut"), size), demo_style(size)
    seen: list[dict] = []
    ck.reset_peak()
    t0 = time.perf_counter()
    strotss.stylize(c, s, StylizeOptions(engine="strotss", size=size, steps=3 if ck.quick else None, seed=0),
                    device=ck.device, progress=lambda p: seen.append(p.losses))
    ck.sync()
    dt = time.perf_counter() - t0
    # the loss is per scale (each scale has its own targets): compare the first and last step of the last scale
    steps = 3 if ck.quick else strotss.SCHEDULES['fast'].steps_per_scale
    first, last = seen[-steps]["total"], seen[-1]["total"]
    print(f"strotss    {size}²  {dt:.2f} s ({len(seen)} steps), last scale's loss {first:.4g} -> {last:.4g}; "
          f"{ck.peak()}  {ck.verdict('strotss', last < first)}")


def section_dst(ck: Check) -> None:
    from impasto.engines import stylize
    from impasto.engines.dst.engine import style_distance
    from impasto.engines.dst.synthetic import make_case
    from impasto_protocol.options import StylizeOptions
    warm = make_case(64, points=8)
    stylize(warm.content, warm.style, StylizeOptions(engine="dst", size=64, steps=1), device=ck.device)
    for size in (ck.size(256, 64), ck.size(512, 96)):
        case = make_case(size, points=8, displacement=0.05, seed=3)
        art: dict = {}
        opts = StylizeOptions(engine="dst", size=size, steps=2 if ck.quick else None)      # the defaults
        ck.reset_peak()
        t0 = time.perf_counter()
        out = stylize(case.content, case.style, opts, device=ck.device, artifacts=art)
        ck.sync()
        dt = time.perf_counter() - t0
        before = style_distance(case.content, case.style, "strotss", device=ck.device)
        after = style_distance(out, case.style, "strotss", device=ck.device)
        miss = (art["warped_points"].double() - art["targets"].double()).norm(dim=1)
        miss_s = f"{miss.mean():.2f} px over {miss.numel()} NBB pairs" if miss.numel() else "no pairs"
        target = "  [target <= 10 s]" if size == 256 and not ck.quick else ""
        t = art.get("timings", {})
        print(f"dst        {size}²  default run {dt:.2f} s (keypoints {t.get('keypoints', 0):.2f} s, optimization "
              f"{t.get('optimization', 0):.2f} s); {ck.peak()}; style distance {before:.4g} -> {after:.4g}; "
              f"keypoint miss {miss_s}  {ck.verdict(f'dst {size}', after < before)}{target}")


def section_nbb(ck: Check) -> None:
    from bench_nbb import scaled_shifted
    from impasto.engines.dst.nbb import NBBConfig, neural_best_buddies
    from impasto.imageio import sample_image
    n = ck.size(256, 64)
    img = F.interpolate(sample_image("astronaut"), size=(n, n), mode="bilinear", antialias=True,
                        align_corners=False).clamp(0, 1)
    s, shift = 0.85, (0.047 * n, -0.031 * n)
    style = scaled_shifted(img, s, shift)
    cfg = NBBConfig(image_size=n)
    neural_best_buddies(img, style, cfg, device=ck.device)          # warm-up
    times = []
    for _ in range(1 if ck.quick else 5):
        ck.sync()
        t0 = time.perf_counter()
        c = neural_best_buddies(img, style, cfg, device=ck.device)
        ck.sync()
        times.append(time.perf_counter() - t0)
    err = (s * (c.content - n / 2) + n / 2 + torch.tensor(shift, dtype=torch.float64) - c.style).norm(dim=1)
    med = err.median().item() if err.numel() else float("nan")
    print(f"nbb        {n}²  {statistics.median(times):.3f} s (median of {len(times)}), {c.content.shape[0]} pairs, "
          f"median error vs the known transform {med:.2f} px  {ck.verdict('nbb', c.content.shape[0] > 0)}")


def section_train(ck: Check) -> None:
    from PIL import Image
    from skimage import data as skdata

    from impasto.engines.mt.network import MTConfig
    from impasto.engines.mt.train import TrainConfig, train
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "photos").mkdir()
        side = ck.size(320, 96)
        for name in ("astronaut", "coffee", "chelsea", "rocket", "camera"):
            im = Image.fromarray(getattr(skdata, name)()).convert("RGB")
            im.resize((side, side * im.height // im.width)).save(root / "photos" / f"{name}.png")
        Image.fromarray(skdata.coffee()).save(root / "painting.png")
        p = str(root / "painting.png")
        steps = 20 if ck.quick else 300
        cfg = TrainConfig(name="gpu_check", style_paths=(p, p, p), content_dir=str(root / "photos"),
                          out_dir=str(root / "out"), style_steps=steps, hier_steps=0, style_batch=4,
                          crop=ck.size(256, 64), style_sizes=(ck.size(256, 64), ck.size(512, 96), ck.size(1024, 128)),
                          net=(MTConfig.tiny() if ck.quick else MTConfig()).to_dict(), checkpoint_every=10 ** 6)
        seen: list[float] = []
        ck.reset_peak()
        t0 = time.perf_counter()
        train(cfg, device=ck.device, on_progress=lambda pr: seen.append(pr.losses["total"]))
        ck.sync()
        dt = time.perf_counter() - t0
    k = max(1, len(seen) // 10)
    first, last = statistics.mean(seen[:k]), statistics.mean(seen[-k:])
    print(f"train      style phase, {steps} steps, batch 4 at {cfg.crop // 2}²: {dt:.1f} s "
          f"({dt / steps * 1e3:.0f} ms/step); loss {first:.4g} -> {last:.4g} (means of first/last {k}); "
          f"{ck.peak()}  {ck.verdict('train', last < 0.5 * first)}")


def section_tiled(ck: Check) -> None:
    import numpy as np

    from bench_tiling_8192 import make_canvas, make_net
    from impasto.tiling.mt_tiled import stylize_tiled
    side = ck.size(8192, 512)
    net = make_net(None).to(ck.device)
    rgba = make_canvas(side)
    content = torch.from_numpy(rgba).permute(2, 0, 1)[None]
    out = np.empty_like(rgba)
    covered = [0]

    def on_tile(x, y, t):
        h, w = t.shape[2:]
        out[y:y + h, x:x + w, :3] = (t[0].permute(1, 2, 0) * 255 + 0.5).clamp(0, 255).to(torch.uint8).numpy()
        covered[0] += h * w

    tile = 128 if ck.quick else None
    warm = torch.from_numpy(make_canvas(ck.size(1024, 256))).permute(2, 0, 1)[None]
    stylize_tiled(net, warm, None, device=ck.device, tile_size=tile, assemble=False, on_tile=lambda *a: None)
    ck.reset_peak()
    t0 = time.perf_counter()
    stylize_tiled(net, content, None, device=ck.device, tile_size=tile, assemble=False, on_tile=on_tile)
    ck.sync()
    dt = time.perf_counter() - t0
    target = "  [target <= 5 s]" if not ck.quick else ""
    ok = covered[0] == side * side
    print(f"tiled      {side}² RGBA8 MT: {dt:.2f} s, {ck.peak()}, tiles cover {covered[0] / side ** 2:.3f} of the "
          f"canvas  {ck.verdict('tiled', ok)}{target}")


def section_daemon(ck: Check) -> None:
    import numpy as np

    from bench_daemon import in_process
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # tests.support
    from tests.support.daemon import DaemonProcess
    from impasto_protocol import StylizeOptions
    from impasto_protocol.images import ImageBuffer
    n = ck.size(4096, 256)
    arr = np.random.default_rng(0).integers(0, 256, size=(n, n, 4), dtype=np.uint8)
    img = ImageBuffer(n, n, 4, "u8", memoryview(arr).cast("B"))
    options = StylizeOptions(engine="identity", size=n)          # type: ignore[arg-type]
    extra = [] if ck.device.type == "cuda" else ["--device", str(ck.device)]
    rt, local = [], []
    with tempfile.TemporaryDirectory() as tmp:
        with DaemonProcess(tmp, *extra) as d, d.client() as c:
            job = c.stylize(img, options).wait(timeout=300)
            exact = job.result is not None and bytes(job.result.data) == arr.tobytes()
            hello = c.hello()
            for _ in range(2 if ck.quick else 5):
                t0 = time.perf_counter()
                in_process(img, options)
                local.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                c.stylize(img, options).wait(timeout=300)
                rt.append(time.perf_counter() - t0)
    over = statistics.median(r - i for r, i in zip(rt, local))
    print(f"daemon     {n}² RGBA8 identity: round trip {statistics.median(rt) * 1e3:.0f} ms, in-process "
          f"{statistics.median(local) * 1e3:.0f} ms, overhead {over * 1e3:.0f} ms (median of pairs), devices "
          f"{hello['devices']}, precision {hello.get('precision')}  {ck.verdict('daemon', exact)}"
          + ("" if ck.quick else "  [target overhead <= 150 ms]"))


SECTIONS = {"policy": section_policy, "mt": section_mt, "gatys": section_gatys, "strotss": section_strotss,
            "dst": section_dst, "nbb": section_nbb, "train": section_train, "tiled": section_tiled,
            "daemon": section_daemon}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated subset of " + ", ".join(SECTIONS))
    ap.add_argument("--budget", type=float, default=480, help="seconds; later sections are skipped past it")
    ap.add_argument("--device", default="cuda", help=argparse.SUPPRESS)      # cpu: a dry run of the code paths
    ap.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)  # tiny sizes (with --device cpu)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA: nothing to check on this machine (bench/gpu_check.py measures the CUDA path only)")
        return 0
    os.environ.setdefault("IMPASTO_DEVICE", str(device))           # the daemon and default_device() agree
    ck = Check(device, args.quick, args.budget)
    print(f"gpu_check{' (dry run: --device cpu --quick, not a measurement)' if args.quick else ''}, "
          f"budget {args.budget:.0f} s")
    for name in args.sections.split(","):
        if ck.left() <= 0:
            print(f"{name:10s} skipped: past the {args.budget:.0f} s budget")
            ck.failures.append(f"{name} (skipped)")
            continue
        t = time.perf_counter()
        try:
            SECTIONS[name](ck)
        except Exception:                     # noqa: BLE001 -- one broken section must not hide the others' figures
            print(f"{name:10s} ERROR\n{traceback.format_exc()}")
            ck.failures.append(f"{name} (error)")
        print(f"{'':10s} ({name}: {time.perf_counter() - t:.1f} s)", flush=True)
    total = time.perf_counter() - ck.t0
    print(f"total {total:.0f} s; " + (f"FAILED: {', '.join(ck.failures)}" if ck.failures else "all checks OK"))
    return 1 if ck.failures else 0


if __name__ == "__main__":
    sys.exit(main())
