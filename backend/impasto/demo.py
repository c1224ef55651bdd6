"""The pictures of ``impasto stylize --demo``: a public-domain photo shipped by scikit-image as the content and a
painting-like style picture generated here (so the demo needs nothing from outside the installed packages).

The style is a field of short, thick, curved brush strokes that follow a swirling flow, in a warm/cool palette with
a few bright halos: strong, clearly visible texture and colour statistics that any of the engines picks up.
"""
from __future__ import annotations

import math
import random

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from .imageio import pil_to_tensor, sample_image

DEMO_CONTENT = "astronaut"

# deep blues, teal, ochre, orange, cream: a night-sky palette with warm accents
_PALETTE_COOL = [(18, 34, 92), (30, 66, 150), (62, 112, 190), (26, 96, 112), (12, 22, 58), (96, 150, 205)]
_PALETTE_WARM = [(236, 196, 58), (246, 226, 128), (214, 120, 36), (240, 236, 214)]


def demo_painting(size: int = 384, seed: int = 7) -> Image.Image:
    """A square RGB picture of swirling brush strokes (deterministic for a given ``size`` and ``seed``)."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), _PALETTE_COOL[0])
    draw = ImageDraw.Draw(img)
    halos = [(rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.9) * size, rng.uniform(0.05, 0.11) * size)
             for _ in range(6)]
    unit = size / 384.0
    for _ in range(int(6500 * unit * unit)):
        x, y = rng.uniform(-8, size + 8), rng.uniform(-8, size + 8)
        in_halo = any(math.hypot(x - hx, y - hy) < r * rng.uniform(0.7, 1.3) for hx, hy, r in halos)
        if in_halo:
            colour = rng.choice(_PALETTE_WARM)
        else:
            colour = rng.choice(_PALETTE_COOL[1:] + _PALETTE_COOL[1:3])
        # flow: large swirls plus circulation around the nearest halo
        angle = math.sin(x / (45 * unit)) * 1.3 + math.cos(y / (37 * unit)) * 1.1
        hx, hy, _ = min(halos, key=lambda h: math.hypot(x - h[0], y - h[1]))
        angle = 0.5 * angle + 0.5 * (math.atan2(y - hy, x - hx) + math.pi / 2)
        pts = [(x, y)]
        for _ in range(rng.randint(3, 6)):
            angle += rng.uniform(-0.3, 0.3)
            x, y = x + 5 * unit * math.cos(angle), y + 5 * unit * math.sin(angle)
            pts.append((x, y))
        jitter = rng.randint(-18, 18)
        colour = tuple(max(0, min(255, c + jitter)) for c in colour)
        draw.line(pts, fill=colour, width=max(2, round(rng.choice([3, 4, 5, 6]) * unit)), joint="curve")
    return img.filter(ImageFilter.SMOOTH)


def demo_style(size: int = 384, seed: int = 7) -> torch.Tensor:
    """``demo_painting`` as a (1, 3, size, size) tensor in [0, 1]."""
    return pil_to_tensor(demo_painting(size, seed))


def demo_content() -> torch.Tensor:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain), 512×512."""
    return sample_image(DEMO_CONTENT)


def _main() -> None:  # pragma: no cover - look at the style picture: python -m impasto.demo out.png
    import sys
    demo_painting().save(sys.argv[1] if len(sys.argv) > 1 else "demo_style.png")


if __name__ == "__main__":  # pragma: no cover
    _main()
