"""Pairing the artist's keypoints: content points with style points, as DST's ``KeypointPair`` list.

Krita pairs numbered markers by number (``pair_numbered``), GIMP pairs path anchors in order (``pair_in_order``,
which numbers them 1, 2, ... first).  Coordinates arrive in image pixels and leave relative to the images sent.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Sequence

from impasto_protocol.options import KeypointPair

Point = tuple[float, float]


@dataclass
class Pairing:
    pairs: list[KeypointPair]
    numbers: list[int]                 # the number of each pair
    content_only: list[int]            # numbers with a content point and no style point
    style_only: list[int]

    @property
    def content_extra(self) -> int:
        return len(self.content_only)

    @property
    def style_extra(self) -> int:
        return len(self.style_only)

    def warning(self, noun: str = "marker") -> Optional[str]:
        """The unpaired points by number, or None when every point has its twin."""
        bits = []
        if self.content_only:
            bits.append(f"content {noun}(s) " + ", ".join(map(str, self.content_only)) + " have no style twin")
        if self.style_only:
            bits.append(f"style {noun}(s) " + ", ".join(map(str, self.style_only)) + " have no content twin")
        return "; ".join(bits) or None

    def note(self, noun: str = "anchor", source: str = "the paths") -> str:
        """How many pairs there are and how many points were left out."""
        msg = f"{len(self.pairs)} keypoint pair(s) from {source}"
        if self.content_extra:
            msg += f"; {self.content_extra} content {noun}(s) without a style twin ignored"
        if self.style_extra:
            msg += f"; {self.style_extra} style {noun}(s) without a content twin ignored"
        return msg


def pair_numbered(content: Mapping[int, Point], style: Mapping[int, Point]) -> Pairing:
    """The content and the style point with the same number form a pair (in increasing number)."""
    common = sorted(set(content) & set(style))
    return Pairing(pairs=[KeypointPair(content=content[n], style=style[n]) for n in common], numbers=common,
                   content_only=sorted(set(content) - set(style)), style_only=sorted(set(style) - set(content)))


def relative(p: Point, origin: Point) -> Point:
    """``p`` relative to ``origin`` (the top-left of the image sent), rounded to 1/1000 px."""
    return round(p[0] - origin[0], 3), round(p[1] - origin[1], 3)


def pair_in_order(content: Sequence[Point], style: Sequence[Point], content_origin: Point = (0.0, 0.0),
                  style_origin: Point = (0.0, 0.0)) -> Pairing:
    """The i-th content point with the i-th style point; the longer list's extra points stay unpaired.
    ``*_origin``: the top-left, in image pixels, of the image sent (the content crop, the style layer)."""
    return pair_numbered({i + 1: relative(p, content_origin) for i, p in enumerate(content)},
                         {i + 1: relative(p, style_origin) for i, p in enumerate(style)})


class KeypointsMissing(ValueError):
    """Keypoints "from markers/paths only" were chosen but there are no pairs."""


def job_keypoints(engine: str, mode: str, keypoints: Optional[Sequence[KeypointPair]]
                  ) -> tuple[str, list[KeypointPair]]:
    """The wire ``keypoint_mode`` and pairs of a job: ``"none"`` for engines other than DST; ``"both"`` without
    pairs falls back to ``"auto"``; ``"markers"`` without pairs raises ``KeypointsMissing`` (each plugin says how to
    place them)."""
    if engine != "dst":
        return "none", []
    if mode in ("markers", "both") and not keypoints:
        if mode == "markers":
            raise KeypointsMissing(mode)
        mode = "auto"
    return mode, (list(keypoints or []) if mode in ("markers", "both") else [])
