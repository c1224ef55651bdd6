"""Outside GIMP (the project's venv): write the test images into the work folder and make sure the running test
daemon has the tiny MT style ``gimptest`` (trained once in a few seconds from scikit-image photos, then cached in
``$IMPASTO_DATA_DIR``).  usage: python prepare.py WORKDIR CONNECTION_FILE"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from impasto_protocol.client import Client
from impasto_protocol.images import ImageBuffer

STYLE = "gimptest"


def u8(a: np.ndarray) -> ImageBuffer:
    h, w, c = a.shape
    return ImageBuffer(w, h, c, "u8", np.ascontiguousarray(a).tobytes())


def images(work: Path, size: tuple[int, int] = (96, 64), marker: bool = True) -> None:
    from skimage import data as skdata
    # the picture: a photo with a flat red square (so "changed" and "unchanged" are easy to tell)
    pic = Image.fromarray(skdata.chelsea()).resize(size)
    if marker:
        ImageDraw.Draw(pic).rectangle([8, 8, 23, 23], fill=(230, 40, 30))
    pic.save(work / "input.png")
    Image.fromarray(skdata.coffee()).resize((64, 48)).save(work / "style.png")


def ensure_style(conn: str, work: Path) -> None:
    from skimage import data as skdata
    with Client.connect(conn, timeout=30) as c:
        if STYLE in c.hello().get("styles", []):
            return
        photos = work / "photos"
        photos.mkdir(exist_ok=True)
        for name in ("astronaut", "rocket", "camera"):
            a = getattr(skdata, name)()
            Image.fromarray(a).convert("RGB").resize((96, 80)).save(photos / f"{name}.png")
        painting = np.asarray(Image.fromarray(skdata.coffee()).resize((160, 120)))
        job = c.train(u8(painting), STYLE, steps=3, content_dir=str(photos), net="tiny", crop=64,
                      style_sizes=[64, 96, 128], batch=2, title="GIMP test style").wait(timeout=600)
        if job.error or job.cancelled:
            raise SystemExit(f"training the test style failed: {job.error}")


if __name__ == "__main__":
    work = Path(sys.argv[1])
    images(work)
    ensure_style(sys.argv[2], work)
    print(f"prepared {work}")
