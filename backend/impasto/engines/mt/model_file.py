"""MT style model files: one safetensors file per style, fp16 weights plus string metadata.  Never pickles.

Metadata (all strings, in the safetensors header):
  ``format`` = "impasto-mt", ``format_version`` = "1", ``name``, ``title``, ``artist``, ``year`` (of the painting;
  for mixed styles the level paintings are listed in ``paintings``), ``net_config`` (JSON of ``MTConfig``),
  ``training`` (JSON of the training settings), ``thumbnail`` (base64 PNG of the painting, <= 96 px).

Besides the network weights (keys as in ``MultimodalTransferNet.state_dict()``) a file may hold the painting's
Gram matrices at the 1024 level (``target_gram.<layer>``, fp16): they let benchmarks and tests measure the style
loss of any output without the painting itself (``read_style_grams``).

A file that is not safetensors, is truncated, lacks the ``format`` marker, or whose tensors do not fit the network
raises ``ModelFileError`` naming the file and what is wrong.
"""
from __future__ import annotations

import base64
import io
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ...errors import ImpastoError
from .network import MTConfig, MultimodalTransferNet

log = logging.getLogger(__name__)

FORMAT = "impasto-mt"
FORMAT_VERSION = "1"
MAX_BYTES = 10 * 1024 * 1024
THUMBNAIL_SIDE = 96


class ModelFileError(ImpastoError):
    """A style model file is missing, corrupt, or not an Impasto MT model."""


@dataclass
class StyleMetadata:
    name: str
    title: str = ""
    artist: str = ""
    year: str = ""
    paintings: list[dict] = field(default_factory=list)   # per level, for mixed styles: {"title", "artist", "year"}
    training: dict = field(default_factory=dict)
    thumbnail_png: bytes = b""

    def describe(self) -> str:
        who = ", ".join(p for p in (self.artist, self.year) if p)
        return f"{self.title} ({who})" if self.title and who else (self.title or who)


def make_thumbnail(image: torch.Tensor | np.ndarray | Image.Image, side: int = THUMBNAIL_SIDE) -> bytes:
    """PNG bytes of a small thumbnail (long side ``side``) of a (1,3,H,W)/(3,H,W) [0,1] tensor, array or PIL image."""
    if isinstance(image, torch.Tensor):
        t = image.detach().float().cpu()
        t = t[0] if t.dim() == 4 else t
        image = (t.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    image = image.convert("RGB")
    image.thumbnail((side, side), Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


GRAM_PREFIX = "target_gram."


def save_model(path: str | Path, net: MultimodalTransferNet, meta: StyleMetadata,
               style_grams: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``net`` as fp16 safetensors with metadata (and optionally the painting's 1024-level Gram matrices);
    refuses files over 10 MB."""
    from safetensors.torch import save_file

    path = Path(path)
    tensors = {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in net.state_dict().items()}
    for layer, g in (style_grams or {}).items():
        tensors[GRAM_PREFIX + layer] = g.detach().to("cpu", torch.float16).contiguous()
    header = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": meta.name,
        "title": meta.title,
        "artist": meta.artist,
        "year": str(meta.year),
        "paintings": json.dumps(meta.paintings),
        "net_config": json.dumps(net.config.to_dict()),
        "training": json.dumps(meta.training),
        "thumbnail": base64.b64encode(meta.thumbnail_png).decode("ascii"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=header)
    size = tmp.stat().st_size
    if size > MAX_BYTES:
        tmp.unlink()
        raise ModelFileError(f"{path}: model would be {size / 1e6:.1f} MB, over the 10 MB limit; use smaller widths")
    tmp.replace(path)
    return path


def _header(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise ModelFileError(f"style model {path} does not exist")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path} is not a readable safetensors file (corrupt or truncated?): {e}") from e
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{path} is a safetensors file but not an Impasto MT style model "
                             f"(no format={FORMAT!r} marker)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{path}: unsupported MT model format version {meta.get('format_version')!r} "
                             f"(this Impasto reads version {FORMAT_VERSION})")
    return meta


def read_metadata(path: str | Path) -> StyleMetadata:
    """Metadata only (reads the header, not the weights)."""
    path = Path(path)
    meta = _header(path)
    try:
        return StyleMetadata(
            name=meta.get("name") or path.stem, title=meta.get("title", ""), artist=meta.get("artist", ""),
            year=meta.get("year", ""), paintings=json.loads(meta.get("paintings") or "[]"),
            training=json.loads(meta.get("training") or "{}"),
            thumbnail_png=base64.b64decode(meta.get("thumbnail", "")))
    except (ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: malformed metadata in MT style model: {e}") from e


def read_net_config(path: str | Path) -> MTConfig:
    """The network widths a model file describes (reads the header, not the weights)."""
    path = Path(path)
    try:
        return MTConfig.from_dict(json.loads(_header(path)["net_config"]))
    except (KeyError, ValueError, TypeError) as e:
        raise ModelFileError(f"{path}: missing or malformed network description in MT style model: {e}") from e


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[MultimodalTransferNet, StyleMetadata]:
    """The network (fp32, eval mode, on ``device``) and its metadata."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    meta = read_metadata(path)
    net = MultimodalTransferNet(read_net_config(path))
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelFileError(f"{path} is corrupt (weights unreadable): {e}") from e
    tensors = {k: v for k, v in tensors.items() if not k.startswith(GRAM_PREFIX)}
    try:
        net.load_state_dict({k: v.float() for k, v in tensors.items()}, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit the MT network it describes: {str(e).splitlines()[0]}") from e
    bad = [k for k, v in tensors.items() if not torch.isfinite(v).all()]
    if bad:
        raise ModelFileError(f"{path}: weights contain NaN/inf ({bad[0]}); the model is corrupt")
    return net.to(device).eval(), meta


def read_style_grams(path: str | Path) -> dict[str, torch.Tensor]:
    """The painting's Gram matrices at the 1024 level stored in the model file ({} when it has none), fp32."""
    from safetensors import safe_open

    path = Path(path)
    _header(path)
    with safe_open(str(path), framework="pt") as f:
        return {k[len(GRAM_PREFIX):]: f.get_tensor(k).float() for k in f.keys() if k.startswith(GRAM_PREFIX)}
