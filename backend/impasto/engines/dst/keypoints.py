"""Keypoint pairs for DST: the JSON file format, validation, and conversions.

Coordinates
-----------
A keypoint is ``[x, y]`` in *continuous pixel coordinates* of its own image: x to the right, y down, the top-left
corner of the image at (0, 0) and the bottom-right corner at (W, H); the centre of pixel (i, j) is (i + 0.5, j + 0.5).
A point is inside the image when 0 <= x <= W and 0 <= y <= H.  With this convention resizing an image by (sx, sy)
maps a point by plain multiplication, which is what ``impasto_protocol.options.scale_pairs`` does.  The content
point is in the content image as it was given (the crop or layer an editor sent), the style point in the style
image.

File format (``--points pairs.json``, ``--save-keypoints out.json``)
--------------------------------------------------------------------
UTF-8 JSON, one object with a list of pairs; the order carries no meaning::

    {"pairs": [{"content": [120.5, 88.0], "style": [131.0, 92.5]},
               {"content": [64, 200], "style": [70, 190]}]}

Optional top-level fields written by ``save_pairs`` and ignored on reading: ``"content_size"`` / ``"style_size"``
([W, H] of the images the points refer to) and ``"source"`` (``"markers"``, ``"auto"``, ...).  Any other field, a
pair that is not exactly ``{"content": [x, y], "style": [x, y]}``, or a coordinate that is not a finite number is an
error whose message names the pair.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from impasto_protocol.options import KeypointPair, OptionsError

from ..base import EngineError

OPTIONAL_FIELDS = ("content_size", "style_size", "source")


class KeypointError(EngineError):
    """Keypoints are missing, malformed or outside their image; the message says which and how to fix it."""


# ------------------------------------------------------------------------------------------------------- JSON

def pairs_from_json(obj: Any, *, where: str = "keypoints") -> list[KeypointPair]:
    """Parse the ``{"pairs": [...]}`` object (or a bare list of pairs)."""
    if isinstance(obj, dict):
        unknown = sorted(set(obj) - {"pairs", *OPTIONAL_FIELDS})
        if unknown:
            raise KeypointError(f"{where}: unknown field(s) {', '.join(unknown)}; expected "
                                '{"pairs": [{"content": [x, y], "style": [x, y]}, ...]}')
        if "pairs" not in obj:
            raise KeypointError(f'{where}: no "pairs" list; expected {{"pairs": [{{"content": [x, y], '
                                '"style": [x, y]}, ...]}')
        obj = obj["pairs"]
    if not isinstance(obj, list):
        raise KeypointError(f'{where}: "pairs" must be a list of {{"content": [x, y], "style": [x, y]}}')
    pairs = []
    for i, item in enumerate(obj):
        try:
            pairs.append(KeypointPair.from_dict(item))
        except OptionsError as e:
            raise KeypointError(f"{where}: pair {i + 1}: {e}") from None
    return pairs


def pairs_to_json(pairs: Iterable[KeypointPair], *, content_size: tuple[int, int] | None = None,
                  style_size: tuple[int, int] | None = None, source: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"pairs": [p.to_dict() for p in pairs]}
    if content_size is not None:
        out["content_size"] = [int(content_size[0]), int(content_size[1])]
    if style_size is not None:
        out["style_size"] = [int(style_size[0]), int(style_size[1])]
    if source is not None:
        out["source"] = source
    return out


def load_pairs(path: str | Path) -> list[KeypointPair]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeypointError(f"{p}: no such keypoints file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise KeypointError(f"{p}: cannot read the keypoints file ({e})") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise KeypointError(f"{p}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    return pairs_from_json(obj, where=str(p))


def save_pairs(path: str | Path, pairs: Iterable[KeypointPair], **meta: Any) -> None:
    Path(path).write_text(json.dumps(pairs_to_json(pairs, **meta), indent=1) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------------------- validation

def validate_pairs(pairs: Sequence[KeypointPair], content_size: tuple[int, int], style_size: tuple[int, int], *,
                   require: bool = True, where: str = "keypoints") -> list[KeypointPair]:
    """Check every pair is finite and inside its image (sizes are (W, H)); ``require``: at least one pair."""
    if require and not pairs:
        raise KeypointError(f"{where}: no keypoint pairs; place at least one pair (content point + style point) "
                            "or use automatic keypoints")
    for i, kp in enumerate(pairs):
        for name, pt, (w, h) in (("content", kp.content, content_size), ("style", kp.style, style_size)):
            x, y = pt
            if not (math.isfinite(x) and math.isfinite(y)):
                raise KeypointError(f"{where}: pair {i + 1}: {name} point {pt} is not finite")
            if not (0 <= x <= w and 0 <= y <= h):
                raise KeypointError(f"{where}: pair {i + 1}: {name} point ({x:g}, {y:g}) is outside the {name} "
                                    f"image (0..{w} × 0..{h} px)")
    return list(pairs)


# ------------------------------------------------------------------------------------------------ conversions

def pairs_to_tensors(pairs: Sequence[KeypointPair], dtype: torch.dtype = torch.float64
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, 2) content points and (K, 2) style points, (x, y) each."""
    c = torch.tensor([p.content for p in pairs], dtype=dtype).reshape(-1, 2)
    s = torch.tensor([p.style for p in pairs], dtype=dtype).reshape(-1, 2)
    return c, s


def tensors_to_pairs(content: torch.Tensor, style: torch.Tensor) -> list[KeypointPair]:
    c, s = content.detach().double().cpu().tolist(), style.detach().double().cpu().tolist()
    return [KeypointPair(content=(float(a[0]), float(a[1])), style=(float(b[0]), float(b[1]))) for a, b in zip(c, s)]
