"""Making a result's recipe (``impasto_protocol.recipe.Recipe``) from a job: hashes, versions, device, precision.

The protocol package defines the recipe (stdlib, the plugins read it); this module fills it in, because only the
backend knows torch, the device and the precision policy.  The painting's hash is over its pixels, not its file, so
the CLI (which reads a file) and the daemon (which receives pixels from an editor) agree on the same painting.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from impasto_protocol.options import StylizeOptions
from impasto_protocol.recipe import Recipe, StyleSource

from . import __version__
from .device import default_device


def pixels_sha256(t: torch.Tensor) -> str:
    """SHA-256 of an image's RGB pixels quantized to 16 bits (with its shape), so 8- and 16-bit copies of the same
    picture from a file or from an editor hash alike when their values agree."""
    if t.dim() == 4:
        t = t[0]
    arr = (t[:3].detach().float().clamp(0, 1).cpu().numpy() * 65535.0 + 0.5).astype("<u2")
    h = hashlib.sha256(f"{arr.shape}".encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def describe_device(device: torch.device) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: what "the same device" means for reproducing a result."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return str(device)


def make_recipe(options: StylizeOptions, style: torch.Tensor | None, *, device: torch.device | None = None,
                style_file: str | Path | None = None, content: torch.Tensor | None = None) -> Recipe:
    """The recipe of a job run with ``options`` on ``style`` (None for MT) on ``device`` (None: the default)."""
    from .precision import policy

    device = torch.device(device) if device is not None else default_device()
    kind = "inference" if options.engine == "mt" else "optimization"
    if options.engine == "mt":
        from .engines.mt.styles import find_style
        info = find_style(options.style_name or "")
        source = StyleSource("model", file_sha256(info.path), options.style_name) if info is not None else None
    elif style is not None:
        source = StyleSource("painting", pixels_sha256(style), Path(style_file).name if style_file else None)
    else:
        source = None
    return Recipe(options=options.to_dict(), style=source, impasto=__version__, torch=torch.__version__,
                  device=describe_device(device), precision=policy(device, kind).label,
                  content_sha256=pixels_sha256(content) if content is not None else None)
