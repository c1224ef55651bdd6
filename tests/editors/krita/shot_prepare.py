"""Outside Krita (the project's venv), for screenshot.sh: write the pictures and make sure the daemon has a Fast (MT)
style to show.  Content: scikit-image's public-domain "coffee" photo.  Style: a painting-like picture generated here
(short curved brush strokes in a night-sky palette), so nothing from outside the repo is needed.  The MT style is
trained once through the daemon (small network, a few hundred steps on CPU) and cached in $IMPASTO_DATA_DIR.
usage: python shot_prepare.py WORKDIR CONNECTION_FILE [STEPS]"""
from __future__ import annotations

import math
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from impasto_protocol.client import Client
from impasto_protocol.images import ImageBuffer

STYLE = "swirls"
PALETTE = [(20, 40, 110), (35, 75, 160), (70, 120, 200), (240, 200, 60), (250, 230, 120), (230, 235, 240),
           (15, 25, 60), (110, 160, 210)]


def painting(size: int = 384, seed: int = 3) -> Image.Image:
    """Curved strokes following a swirl field, light strokes around a few 'stars'."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), (25, 45, 110))
    d = ImageDraw.Draw(img)
    stars = [(rng.uniform(0.1, 0.9) * size, rng.uniform(0.1, 0.6) * size) for _ in range(5)]
    for _ in range(5200):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        near = min(math.hypot(x - sx, y - sy) for sx, sy in stars)
        angle = math.sin(x / 40.0) + math.cos(y / 33.0) + 0.6 * math.atan2(y - size / 2, x - size / 2)
        colour = PALETTE[3 + rng.randrange(3)] if near < size * 0.06 * rng.uniform(0.6, 1.4) else \
            PALETTE[rng.choice([0, 1, 2, 6, 7, 1, 2])]
        pts = [(x, y)]
        for _ in range(4):
            angle += rng.uniform(-0.25, 0.25)
            x, y = x + 4 * math.cos(angle), y + 4 * math.sin(angle)
            pts.append((x, y))
        d.line(pts, fill=colour, width=rng.choice([3, 4, 5]), joint="curve")
    return img.filter(ImageFilter.SMOOTH)


def u8(img: Image.Image) -> ImageBuffer:
    a = np.asarray(img.convert("RGB"))
    h, w, c = a.shape
    return ImageBuffer(w, h, c, "u8", np.ascontiguousarray(a).tobytes())


def main() -> None:
    from skimage import data as skdata
    work, conn = Path(sys.argv[1]), sys.argv[2]
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    Image.fromarray(skdata.coffee()).resize((600, 400), Image.LANCZOS).save(work / "coffee.png")
    art = painting()
    art.save(work / "swirls.png")
    with Client.connect(conn, timeout=30) as c:
        if STYLE in c.hello().get("styles", []):
            print("style cached")
            return
        photos = work / "photos"
        photos.mkdir(exist_ok=True)
        for name in ("astronaut", "rocket", "chelsea", "coffee", "camera"):
            Image.fromarray(getattr(skdata, name)()).convert("RGB").resize((192, 160)).save(photos / f"{name}.png")
        t0 = time.time()
        job = c.train(u8(art), STYLE, steps=steps, content_dir=str(photos), net="tiny", crop=128,
                      style_sizes=[128, 192, 256], batch=2, title="Swirls", artist="generated",
                      year="2026").wait(timeout=3600)
        if job.error or job.cancelled:
            raise SystemExit(f"training the screenshot style failed: {job.error}")
        print(f"trained {STYLE!r} in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
