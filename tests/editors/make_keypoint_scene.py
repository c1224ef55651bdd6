"""Outside the editors (the project's venv), for the keypoint/overlay screenshots: write a portrait and a "painting"
of the same face to WORKDIR (photo.png, painting.png).  The photo is scikit-image's public-domain astronaut; the
painting is that photo turned and scaled a little and painted over here (posterized, brush-smoothed, warm palette),
so Neural Best Buddies has a face to pair and nothing from outside the repository is needed.
usage: python make_keypoint_scene.py WORKDIR [SIDE]"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps


def photo(side: int) -> Image.Image:
    from skimage import data
    return Image.fromarray(data.astronaut()).crop((90, 0, 390, 300)).resize((side, side), Image.LANCZOS)


def painting(side: int) -> Image.Image:
    im = photo(side).rotate(7, resample=Image.BICUBIC, fillcolor=(60, 40, 30))
    m = int(side * 0.06)                                             # a closer crop: the face a little larger
    im = im.crop((m, 0, side - m, side - 2 * m)).resize((side, side), Image.LANCZOS)
    im = im.filter(ImageFilter.ModeFilter(7)).filter(ImageFilter.SMOOTH_MORE)
    im = ImageOps.posterize(im, 3)
    arr = np.asarray(im).astype(np.float32)
    arr = arr * np.array([1.08, 0.95, 0.78]) + np.array([18, 8, 0])         # a warm, ochre palette
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.ModeFilter(5))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    side = int(sys.argv[2]) if len(sys.argv) > 2 else 360
    photo(side).save(out / "photo.png")
    painting(side).save(out / "painting.png")
    print(f"wrote {out / 'photo.png'} and {out / 'painting.png'}")
