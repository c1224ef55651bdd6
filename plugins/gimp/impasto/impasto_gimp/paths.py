"""Keypoint paths: the artist's correspondences between the picture and the style image, drawn as two GIMP paths.

Convention (also in docs/gimp.md):
- The content keypoints are the anchors of the path named ``Impasto keypoints: content`` in the picture's image;
  the style keypoints are the anchors of ``Impasto keypoints: style`` (in the style layer's image, or in the picture's
  image when the style layer is there too).  "Add keypoint paths" creates both.
- Anchors are taken in order -- stroke by stroke, anchor by anchor -- and paired by order: the 1st content anchor
  with the 1st style anchor, and so on.  Extra anchors on the longer path are ignored (and reported).
- Coordinates are image pixels; they are sent relative to the content crop and to the style layer.
GIMP's Bezier strokes list control points as x, y pairs in triples (control, anchor, control), so the anchors are
pairs 1, 4, 7, ...  Plain Python: the GIMP calls are in ``gimp_api``.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from impasto_plugin.geometry import Rect, default_positions  # noqa: F401 - where "Add keypoint paths" puts anchors
from impasto_plugin.keypoints import Pairing, pair_in_order

CONTENT_PATH = "Impasto keypoints: content"
STYLE_PATH = "Impasto keypoints: style"


class PathError(ValueError):
    """The keypoint paths are missing or unusable; the message says what to do."""


def anchors(control_points: Sequence[float]) -> list[tuple[float, float]]:
    """Anchor points of one Bezier stroke from its flat control-point list ``[x0, y0, x1, y1, ...]`` (C A C ...)."""
    if len(control_points) % 2:
        raise PathError(f"a stroke has an odd number of coordinates ({len(control_points)})")
    pts = [(float(control_points[i]), float(control_points[i + 1])) for i in range(0, len(control_points), 2)]
    if len(pts) % 3:            # not C A C triples: every point is an anchor (e.g. a polyline)
        return pts
    return [pts[i] for i in range(1, len(pts), 3)]


def path_anchors(strokes: Iterable[Sequence[float]]) -> list[tuple[float, float]]:
    """All anchors of a path, stroke by stroke, in order."""
    out: list[tuple[float, float]] = []
    for stroke in strokes:
        out.extend(anchors(stroke))
    return out


def stroke_points(points: Sequence[tuple[float, float]]) -> list[float]:
    """Control points for ``Gimp.Path.stroke_new_from_points(BEZIER, ...)``: straight segments through ``points``
    (each anchor's two handles sit on the anchor)."""
    out: list[float] = []
    for x, y in points:
        out += [x, y, x, y, x, y]
    return out


def pair(content: Sequence[tuple[float, float]], style: Sequence[tuple[float, float]],
         content_origin: tuple[float, float] = (0.0, 0.0),
         style_origin: tuple[float, float] = (0.0, 0.0)) -> Pairing:
    """Pair anchors by order; ``*_origin``: the top-left, in image pixels, of the image sent (crop, style layer)."""
    return pair_in_order(content, style, content_origin, style_origin)
