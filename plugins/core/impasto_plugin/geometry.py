"""Rectangles in editor pixels, and where new keypoints go inside one."""
from __future__ import annotations

from dataclasses import dataclass

# where new keypoints go, as fractions of the area: spread so that none overlaps and the order reads as a zigzag
SPOTS = [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75), (0.5, 0.5),
         (0.5, 0.2), (0.5, 0.8), (0.2, 0.5), (0.8, 0.5)]


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    width: int
    height: int

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    @property
    def long_side(self) -> int:
        return max(self.width, self.height)

    def moved(self, dx: int, dy: int) -> "Rect":
        return Rect(self.x + dx, self.y + dy, self.width, self.height)

    def intersect(self, other: "Rect") -> "Rect":
        x0, y0 = max(self.x, other.x), max(self.y, other.y)
        x1 = min(self.x + self.width, other.x + other.width)
        y1 = min(self.y + self.height, other.y + other.height)
        return Rect(x0, y0, max(0, x1 - x0), max(0, y1 - y0))


def default_positions(rect: Rect, count: int = 4) -> list[tuple[float, float]]:
    """Where ``count`` new keypoints go, in image pixels: spread over ``rect`` so that none overlaps (past nine,
    each further round of spots is shifted a little)."""
    out = []
    for i in range(count):
        fx, fy = SPOTS[i % len(SPOTS)]
        shift = 0.05 * (i // len(SPOTS))
        out.append((round(rect.x + (fx + shift) * rect.width, 2), round(rect.y + (fy + shift) * rect.height, 2)))
    return out
