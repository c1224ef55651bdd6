"""Feathered selections in Krita, before and after issue 20: the error at soft edges and the time for a big selection.

Before: the daemon blended the result with the content (B = m·S + (1−m)·C, 8-bit) and the Krita plugin undid the
blend per pixel in Python (``unmix_before``: S = (B − (1−m)·C)/m, where 0 < m < 255), then multiplied the mask into
alpha.  After: the plugin sends ``mask_mode: "alpha"``; the daemon returns S unblended with alpha = a·m
(``mask_into_alpha``) and the plugin writes it as it is.

Run:  OMP_NUM_THREADS=1 .venv/bin/python bench/bench_feathered_selection.py --side 4096 --feather 64
It builds a side² BGRA content, an elliptical selection feathered over ``--feather`` px, and the stylized colour of
the ``invert`` test engine (S = 1 − C), then times the mask step of each path in the daemon and in the plugin
(the common decode/encode steps are the same in both and are left out) and prints the errors at soft edges.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from array import array
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def unmix_before(result: bytes, content: bytes, mask: bytes) -> bytearray:
    """The Krita plugin's reconstruction before issue 20 (``impasto_krita.pixels.unmix_partial``, 8 bit)."""
    res = array("B", result)
    marks = bytes(mask).translate(bytes([0] + [1] * 254 + [0]))
    for run in re.finditer(b"\x01+", marks):
        for i in range(run.start(), run.end()):
            m = mask[i] / 255.0
            for c in range(4 * i, 4 * i + 3):
                v = (res[c] - (1.0 - m) * content[c]) / m
                res[c] = 0 if v < 0 else 255 if v > 255 else int(v + 0.5)
    return bytearray(res.tobytes())


def feathered_ellipse(side: int, feather: int) -> np.ndarray:
    """An 8-bit elliptical selection filling the square, with a linear ramp of ``feather`` px at its edge."""
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    c = (side - 1) / 2
    r = np.sqrt(((x - c) / (0.45 * side)) ** 2 + ((y - c) / (0.40 * side)) ** 2) * (0.45 * side)
    ramp = np.clip((0.45 * side - r) / feather, 0, 1)
    return (ramp * 255 + 0.5).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=4096)
    ap.add_argument("--feather", type=int, default=64)
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT / "plugins" / "krita"))
    sys.path.insert(0, str(ROOT / "plugins" / "core"))
    from impasto.daemon.convert import PixelFormat, tensor_to_array
    from impasto.daemon.worker import apply_mask, mask_into_alpha
    from impasto_protocol.pixels import apply_mask as plugin_apply_mask

    rng = np.random.default_rng(0)
    side = a.side
    bgra = rng.integers(0, 256, (side, side, 4), dtype=np.uint8)
    bgra[..., 3] = 255
    mask = feathered_ellipse(side, a.feather)
    soft = (mask > 0) & (mask < 255)
    fmt = PixelFormat(4, "u8", "srgb", True)
    content_t = torch.from_numpy(bgra[..., [2, 1, 0, 3]].astype(np.float32) / 255).permute(2, 0, 1)[None]
    stylized_t = torch.cat([1 - content_t[:, :3], content_t[:, 3:]], 1)
    mask_t = torch.from_numpy(mask.astype(np.float32) / 255)[None, None]
    truth = 255 - bgra[..., :3].astype(np.int16)

    t0 = time.perf_counter()
    blended = tensor_to_array(apply_mask(stylized_t, content_t, mask_t), fmt)
    t_daemon_before = time.perf_counter() - t0
    t0 = time.perf_counter()
    colour = unmix_before(blended.tobytes(), bgra.tobytes(), mask.tobytes())
    layer_before = plugin_apply_mask(colour, mask.tobytes(), 1)
    t_plugin_before = time.perf_counter() - t0
    before = np.frombuffer(bytes(layer_before), np.uint8).reshape(side, side, 4)

    t0 = time.perf_counter()
    after = tensor_to_array(mask_into_alpha(stylized_t, mask_t), fmt)
    t_daemon_after = time.perf_counter() - t0

    def err(layer: np.ndarray) -> int:
        return int(np.abs(layer[..., :3].astype(np.int16) - truth)[soft].max())

    print(f"selection {side}x{side}, feather {a.feather} px: {int(soft.sum())} soft pixels "
          f"({100 * soft.mean():.1f} %); OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}, "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"before: layer colour max error at soft edges {err(before)} levels; mask step: daemon blend "
          f"{t_daemon_before:.2f} s + plugin unblend and alpha {t_plugin_before:.2f} s")
    print(f"after:  layer colour max error at soft edges {err(after)} levels; alpha exact: "
          f"{bool(np.array_equal(after[..., 3], mask))}; mask step: daemon mask-into-alpha {t_daemon_after:.2f} s "
          f"+ plugin 0 s (nothing left to do)")


if __name__ == "__main__":
    main()
