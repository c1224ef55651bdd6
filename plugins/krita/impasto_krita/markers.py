"""Keypoint markers: small numbered shapes on two vector layers, one over the content, one over the style.

Convention (also in docs/krita.md):
- The content markers live on a vector layer named ``Impasto keypoints: content``, the style markers on
  ``Impasto keypoints: style`` (placed over the style layer).  "Add keypoint markers" creates both.
- Each marker is one shape (a ring) named ``kp<N>`` (``kp3``; ``3``, ``#3``, ``marker 3`` and ``keypoint 3`` are
  read too).  A ring on the content layer and the ring with the *same number* on the style layer form a pair.
  Shapes whose name carries no number (the number labels ``kp3 label``, anything else) are ignored.
- A marker's position is the centre of its bounding box.  Krita gives shapes in points (1/72 inch); pixels are
  ``points * resolution / 72``, then made relative to the image sent (the content crop, the style layer's bounds).
Plain Python: the Krita calls that create and read the shapes are in ``krita_api``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable
from xml.sax.saxutils import escape

from impasto_plugin.geometry import Rect, default_positions  # noqa: F401 - where "Add keypoint markers" puts them
from impasto_plugin.keypoints import Pairing, pair_numbered

CONTENT_LAYER = "Impasto keypoints: content"
STYLE_LAYER = "Impasto keypoints: style"
PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
           "#fabed4", "#469990", "#dcbeff", "#9a6324")
_NAME = re.compile(r"^\s*(?:kp|keypoint|marker|k|#)?\s*[-_:#]?\s*(\d{1,4})\s*$", re.IGNORECASE)


def marker_number(name: str) -> int | None:
    """The pair number in a shape name (``kp3`` -> 3), or None for shapes that are not markers."""
    m = _NAME.match(name or "")
    return int(m.group(1)) if m else None


def marker_name(number: int) -> str:
    return f"kp{number}"


def pt_to_px(v: float, resolution: float) -> float:
    return v * float(resolution) / 72.0


def px_to_pt(v: float, resolution: float) -> float:
    return v * 72.0 / float(resolution)


def marker_radius(rect: Rect) -> float:
    return max(4.0, rect.long_side / 40.0)


def markers_svg(markers: Iterable[tuple[int, float, float]], resolution: float, doc_width: int, doc_height: int,
                radius_px: float) -> str:
    """SVG for ``VectorLayer.addShapesFromSvg``: per marker a ring ``kpN`` and a label ``kpN label``.

    Coordinates are written in points, the unit Krita reads SVG user units in (the canvas is given in pt)."""
    w_pt, h_pt = px_to_pt(doc_width, resolution), px_to_pt(doc_height, resolution)
    r = px_to_pt(radius_px, resolution)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w_pt:.4f}pt" height="{h_pt:.4f}pt" '
             f'viewBox="0 0 {w_pt:.4f} {h_pt:.4f}">']
    for number, x, y in markers:
        cx, cy = px_to_pt(x, resolution), px_to_pt(y, resolution)
        color = PALETTE[(number - 1) % len(PALETTE)]
        parts.append(f'<circle id="{escape(marker_name(number))}" cx="{cx:.4f}" cy="{cy:.4f}" r="{r:.4f}" '
                     f'fill="{color}" fill-opacity="0.35" stroke="{color}" stroke-width="{r / 3:.4f}"/>')
        parts.append(f'<text id="{escape(marker_name(number))} label" x="{cx + 1.4 * r:.4f}" y="{cy - 1.2 * r:.4f}" '
                     f'font-family="sans-serif" font-size="{2.2 * r:.4f}" fill="{color}">{number}</text>')
    parts.append("</svg>")
    return "".join(parts)


@dataclass
class MarkerSet:
    """Markers read from one layer: number -> (x, y) in pixels of the image sent; plus what was skipped."""

    points: dict[int, tuple[float, float]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)       # shapes without a number
    duplicates: list[int] = field(default_factory=list)    # numbers used by more than one shape


def read_markers(shapes: Iterable[tuple[str, tuple[float, float, float, float]]], resolution: float,
                 origin: tuple[float, float] = (0.0, 0.0)) -> MarkerSet:
    """``shapes``: (name, bounding box in points (x, y, w, h)); ``origin``: the image's top-left in doc pixels."""
    out = MarkerSet()
    for name, (bx, by, bw, bh) in shapes:
        n = marker_number(name)
        if n is None:
            out.ignored.append(name)
            continue
        if n in out.points:
            out.duplicates.append(n)
            continue
        cx, cy = pt_to_px(bx + bw / 2.0, resolution), pt_to_px(by + bh / 2.0, resolution)
        out.points[n] = (round(cx - origin[0], 3), round(cy - origin[1], 3))
    return out


def pair_markers(content: MarkerSet, style: MarkerSet) -> Pairing:
    """A content marker and the style marker with the same number form a pair."""
    return pair_numbered(content.points, style.points)


def next_numbers(existing: Iterable[int], count: int) -> list[int]:
    start = max(existing, default=0) + 1
    return list(range(start, start + count))
