"""Time-to-quality of the STROTSS engine and of DST's default variant (STROTSS terms): fast against exact.

    python bench/bench_strotss.py [--pairs ../shared/data/portrait_pairs.tsv] [--rows 0 2]
                                  [--runs strotss:512 dst:256 dst:512] [--threads 2] [--save DIR] [--json FILE]

For each content/style pair (rows of the TSV) and each run (engine:size), two runs in fresh child processes:

* ``fast``: the product's default: the fast STROTSS terms (``impasto.losses.strotss.FAST``) and the fast
  schedule (``schedule="fast"``: larger steps, a per-scale step budget and plateau stop);
* ``exact``: the exact formulation (``EXACT``: fp32 cost matrices with full autograd, as before the fast terms)
  run to the paper's schedule (``schedule="paper"``: DST 3 × 150 SGD steps as in its job script, STROTSS 200
  RMSprop steps a scale as in futscdav/strotss; ``--exact-steps`` overrides the count).

Each prints wall time (keypoints included for DST: automatic NBB pairs, the default), the steps it ran, the peak
RSS of its process up to the end of the run (before the measurement below), and the final losses of its output measured by one shared function
(``impasto.losses.strotss.measure_strotss``: exact terms in fp32, fixed 4096 sample locations, at the working size):
style = REMD + moments + palette, and the self-similarity content loss; then fast ÷ exact for each.
"""
from __future__ import annotations

import argparse
import csv
import json
import multiprocessing as mp
import os
import resource
import time
from pathlib import Path


def _load(path: Path):
    from impasto.imageio import load_image
    return load_image(str(path))[:, :3]


def _run(job: dict) -> dict:
    """One run in this (child) process: the engine on the pair, then the shared measure of its output."""
    import torch

    torch.set_num_threads(job["threads"])
    from impasto.engines.dst.engine import stylize as dst_stylize
    from impasto.engines.optim.common import prepare, resize_long_side
    from impasto.engines.optim.strotss import stylize as strotss_stylize
    from impasto.losses.strotss import EXACT, FAST, measure_strotss
    from impasto_protocol.options import StylizeOptions

    content, style = _load(Path(job["content"])), _load(Path(job["style"]))
    size = job["size"]
    content = resize_long_side(content, size)      # the working size is the output size
    exact = job["mode"] == "exact"
    opts = StylizeOptions(engine=job["engine"], size=size, schedule="paper" if exact else "fast",
                          steps=job["exact_steps"] if exact else None, seed=0)
    engine = dst_stylize if job["engine"] == "dst" else strotss_stylize
    art: dict = {}
    t0 = time.perf_counter()
    out = engine(content, style, opts, approx=EXACT if exact else FAST, artifacts=art)
    wall = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024     # the run's own peak, before measuring
    _, _, vgg = prepare(torch.device("cpu"))
    measured = measure_strotss(vgg, out, content, resize_long_side(style, size))
    if job.get("save"):
        from impasto.imageio import save_image
        save_image(out, job["save"])
    return {"wall": wall, "steps": "+".join(map(str, art["steps"])), **measured, "timings": art.get("timings", {}),
            "rss_mb": rss_mb}


def run_isolated(job: dict) -> dict:
    """``_run`` in a fresh process, so that its peak RSS is its own."""
    with mp.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        return pool.apply(_run, (job,))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", default=str(Path(__file__).resolve().parents[2] / "shared/data/portrait_pairs.tsv"))
    ap.add_argument("--rows", type=int, nargs="+", default=[0, 2], help="rows of the TSV (0 = first pair)")
    ap.add_argument("--runs", nargs="+", default=["strotss:512", "dst:256", "dst:512"])
    ap.add_argument("--modes", nargs="+", default=["fast", "exact"], choices=("fast", "exact"))
    ap.add_argument("--exact-steps", type=int, default=None, help="default: the engine's full per-scale budget")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--save", metavar="DIR", help="write each output there")
    ap.add_argument("--json", metavar="FILE", help="also append each run's figures to FILE (one JSON object a line), "
                                                   "so runs made in separate invocations can be set side by side")
    args = ap.parse_args()
    pairs_file = Path(args.pairs)
    with open(pairs_file) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.threads} threads")
    for r in args.rows:
        row = rows[r]
        c_path, s_path = pairs_file.parent / row["content"], pairs_file.parent / row["style"]
        pair = f"{Path(row['content']).stem} x {Path(row['style']).stem}"
        for spec in args.runs:
            engine, size = spec.split(":")
            res = {}
            for mode in args.modes:
                job = {"engine": engine, "size": int(size), "mode": mode, "content": str(c_path),
                       "style": str(s_path), "exact_steps": args.exact_steps, "threads": args.threads}
                if args.save:
                    os.makedirs(args.save, exist_ok=True)
                    job["save"] = os.path.join(args.save, f"{Path(row['content']).stem}__{Path(row['style']).stem}"
                                                          f"__{engine}{size}_{mode}.png")
                res[mode] = m = run_isolated(job)
                if args.json:
                    with open(args.json, "a") as jf:
                        jf.write(json.dumps({"pair": pair, "engine": engine, "size": int(size), "mode": mode,
                                             "threads": args.threads, "load": os.getloadavg()[0],
                                             **{k: v for k, v in m.items() if k != "timings"},
                                             "keypoints_s": m["timings"].get("keypoints")}) + "\n")
                kp = m["timings"].get("keypoints")
                print(f"{pair:45s} {engine:7s} {size:>4s} {mode:5s}: {m['wall']:7.1f} s"
                      + (f" (keypoints {kp:.1f} s)" if kp is not None else "")
                      + f", steps {m['steps']:>11s}, peak RSS {m['rss_mb']:6.0f} MiB; style {m['style']:.4f} "
                        f"(remd {m['remd']:.4f}, moment {m['moment']:.4f}, palette {m['palette']:.4f}), "
                        f"content {m['content']:.4f}; load {os.getloadavg()[0]:.2f}", flush=True)
            if "fast" in res and "exact" in res:
                f, e = res["fast"], res["exact"]
                print(f"{'':45s} fast/exact: time {f['wall'] / e['wall']:.3f}, style {f['style'] / e['style']:.3f}, "
                      f"content {f['content'] / e['content']:.3f}", flush=True)


if __name__ == "__main__":
    main()
