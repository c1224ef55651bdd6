"""A small line chart drawn with Pillow (the benchmarks' plots need no plotting library)."""
from __future__ import annotations

from PIL import Image, ImageDraw

COLOURS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14)]


def line_chart(panels: list[dict], width: int = 520, height: int = 340) -> Image.Image:
    """Panels side by side; each ``{"title", "xlabel", "ylabel", "series": {label: [(x, y), ...]}}``."""
    sheet = Image.new("RGB", (width * len(panels), height), "white")
    for i, panel in enumerate(panels):
        _draw_panel(ImageDraw.Draw(sheet), panel, i * width, width, height)
    return sheet


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    step = (hi - lo) / n if hi > lo else 1.0
    return [lo + k * step for k in range(n + 1)]


def _draw_panel(d: ImageDraw.ImageDraw, panel: dict, x0: int, width: int, height: int) -> None:
    left, right, top, bottom = x0 + 60, x0 + width - 15, 30, height - 45
    points = [p for s in panel["series"].values() for p in s]
    xs, ys = [p[0] for p in points] or [0, 1], [p[1] for p in points] or [0, 1]
    xlo, xhi = min(0.0, min(xs)), max(xs) or 1.0
    ylo, yhi = min(0.0, min(ys)), max(ys) * 1.05 or 1.0

    def at(x: float, y: float) -> tuple[float, float]:
        return (left + (x - xlo) / (xhi - xlo) * (right - left), bottom - (y - ylo) / (yhi - ylo) * (bottom - top))

    d.text((left, 8), panel.get("title", ""), fill="black")
    d.rectangle([left, top, right, bottom], outline=(120, 120, 120))
    for t in _ticks(xlo, xhi):
        px, _ = at(t, ylo)
        d.line([px, bottom, px, bottom + 4], fill="black")
        d.text((px - 10, bottom + 6), f"{t:.3g}", fill="black")
    for t in _ticks(ylo, yhi):
        _, py = at(xlo, t)
        d.line([left - 4, py, left, py], fill="black")
        d.text((x0 + 4, py - 6), f"{t:.3g}", fill="black")
    d.text(((left + right) // 2 - 30, bottom + 24), panel.get("xlabel", ""), fill="black")
    d.text((left + 4, top + 4), panel.get("ylabel", ""), fill=(90, 90, 90))
    for k, (label, series) in enumerate(panel["series"].items()):
        colour = COLOURS[k % len(COLOURS)]
        pts = [at(x, y) for x, y in sorted(series)]
        if len(pts) > 1:
            d.line(pts, fill=colour, width=2)
        for px, py in pts:
            d.ellipse([px - 2.5, py - 2.5, px + 2.5, py + 2.5], fill=colour)
        d.text((right - 150, top + 8 + 14 * k), label, fill=colour)
