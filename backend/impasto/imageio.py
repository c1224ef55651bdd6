"""Reading and writing images as tensors, with errors an artist can act on.

Tensors are (1, C, H, W) float32 in [0, 1], C = 3 (RGB) or 4 (RGBA).  16-bit PNGs keep their precision.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import ImpastoError

MIN_SIDE = 8
MAX_PIXELS = 268_435_456          # 16384²; the daemon has its own configurable limit


class ImageError(ImpastoError, ValueError):
    """The file is missing, unreadable or of an unusable size."""


def load_image(path: str | Path, *, keep_alpha: bool = False, max_pixels: int = MAX_PIXELS) -> torch.Tensor:
    p = Path(path)
    if not p.exists():
        raise ImageError(f"{p}: no such file")
    if p.is_dir():
        raise ImageError(f"{p}: is a folder, not an image")
    Image.MAX_IMAGE_PIXELS = max(max_pixels, 1)
    try:
        with Image.open(p) as im:
            w, h = im.size
            check_size(w, h, max_pixels=max_pixels, what=str(p))
            im.load()
            return pil_to_tensor(im, keep_alpha=keep_alpha)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as e:
        raise ImageError(f"{p}: not a readable image ({e.__class__.__name__}: {e})") from None


def check_size(w: int, h: int, *, max_pixels: int = MAX_PIXELS, what: str = "image") -> None:
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{what}: {w}×{h} is too small (each side must be at least {MIN_SIDE} px)")
    if w * h > max_pixels:
        raise ImageError(f"{what}: {w}×{h} = {w * h / 1e6:.0f} MP is larger than the limit of {max_pixels / 1e6:.0f} MP")


def pil_to_tensor(im: Image.Image, *, keep_alpha: bool = False) -> torch.Tensor:
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32) / (65535.0 if im.mode.startswith("I;16") or np.asarray(im).max() > 255 else 255.0)
        arr = np.repeat(arr[..., None], 3, axis=2)
    else:
        im = im.convert("RGBA" if (keep_alpha and has_alpha) else "RGB")
        arr = np.asarray(im, dtype=np.float32) / 255.0
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    return t.clamp_(0, 1)


def tensor_to_pil(t: torch.Tensor) -> Image.Image:
    if t.dim() == 4:
        t = t[0]
    arr = (t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, "RGBA" if arr.shape[2] == 4 else "RGB")


def save_image(t: torch.Tensor, path: str | Path) -> Path:
    p = Path(path)
    if p.parent and not p.parent.exists():
        raise ImageError(f"{p}: folder {p.parent} does not exist")
    tensor_to_pil(t).save(p)
    return p


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """(1,C,H,W) float -> (H,W,C) uint8, rounding like ``save_image``."""
    if t.dim() == 4:
        t = t[0]
    return (t.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def sample_image(name: str = "astronaut") -> torch.Tensor:
    """A public-domain sample photo shipped by scikit-image (used by the demo, tests and docs)."""
    try:
        from skimage import data
    except ImportError as e:  # pragma: no cover - test/bench extra
        raise ImageError("sample images need scikit-image: pip install scikit-image") from e
    arr = getattr(data, name)()
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3].astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
