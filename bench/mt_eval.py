"""What the MT benchmarks share: the photo split and the losses every MT figure is measured with.

Photo split (``../shared/data/content``; none of these is in ``../shared/data/train``):

* ``VALIDATION`` -- for choosing weights, schedules, level sizes and which styles ship.  These four were already
  used to tune the first models (issue 15 says so), grace_hopper joins them.
* ``TEST`` -- only for the reported tables; never looked at while tuning.

Losses (one shared definition, on the output images, fp32):

* ``style_loss``    -- the training style loss: sum over relu1_1..relu4_1 of the MSE between the output's Gram matrix
  (normalised by C*H*W) and the painting's, the painting scaled to the output's short side;
* ``gram_distance`` -- the plain Gram distance over relu1_1..relu5_1 (same normalisation);
* ``content_loss``  -- MSE at relu4_2 against the photo (the layer every MT model here was trained with).

The strength of a stylization is a loss of the output divided by the same loss of the unstylized photo: 1 means the
output is no closer to the painting than the photo was, 0 would be the painting's own statistics.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from impasto.engines.mt.train import load_style_image
from impasto.imageio import load_image
from impasto.vgg import gram_matrix

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
CONTENT_DIR, STYLE_DIR = SHARED / "content", SHARED / "style"
VALIDATION = ["tubingen.jpg", "kodim23.png", "kodim13.png", "kodim20.png", "grace_hopper.jpg"]
TEST = ["kodim01.png", "kodim05.png", "kodim08.png", "kodim15.png"]
TRAIN_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
GRAM_LAYERS = TRAIN_STYLE_LAYERS + ("relu5_1",)
CONTENT_LAYER = "relu4_2"


def resize_long(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    s = size / max(h, w)
    return F.interpolate(x, size=(max(1, round(h * s)), max(1, round(w * s))), mode="bicubic",
                         align_corners=False, antialias=s < 1).clamp(0, 1)


def load_photos(names: list[str]) -> list[tuple[str, torch.Tensor]]:
    missing = [n for n in names if not (CONTENT_DIR / n).exists()]
    if missing:
        raise SystemExit(f"missing photos in {CONTENT_DIR}: {', '.join(missing)}")
    return [(n, load_image(CONTENT_DIR / n)[:, :3]) for n in names]


def painting_path(name: str) -> Path:
    p = STYLE_DIR / f"{name}.jpg"
    if not p.exists():
        raise SystemExit(f"no painting {p}")
    return p


class StyleMeasure:
    """Gram targets of one painting (the training code's ``load_style_image`` scaling), cached per short side, and
    the three losses."""

    def __init__(self, vgg, painting: Path):
        self.vgg, self.painting = vgg, painting
        self._grams: dict[int, dict[str, torch.Tensor]] = {}

    def grams(self, short_side: int) -> dict[str, torch.Tensor]:
        if short_side not in self._grams:
            with torch.inference_mode():
                f = self.vgg(load_style_image(self.painting, short_side), GRAM_LAYERS)
                self._grams[short_side] = {k: gram_matrix(v.float())[0] for k, v in f.items()}
        return self._grams[short_side]

    @torch.inference_mode()
    def content_features(self, photo: torch.Tensor) -> torch.Tensor:
        return self.vgg(photo.float(), (CONTENT_LAYER,))[CONTENT_LAYER]

    @torch.inference_mode()
    def losses(self, image: torch.Tensor, photo_features: torch.Tensor | None = None) -> dict[str, float]:
        """style / gram / content losses of ``image`` (1,3,H,W) against the painting and the photo, given by its
        ``CONTENT_LAYER`` features (None: ``image`` is the photo itself, content loss 0 without a second pass)."""
        g = self.grams(min(image.shape[-2:]))
        f = self.vgg(image.float(), GRAM_LAYERS + (CONTENT_LAYER,))
        c = f[CONTENT_LAYER] if photo_features is None else photo_features
        per = {k: F.mse_loss(gram_matrix(f[k].float())[0], g[k]).item() for k in GRAM_LAYERS}
        return {"style": sum(per[k] for k in TRAIN_STYLE_LAYERS), "gram": sum(per.values()),
                "content": F.mse_loss(f[CONTENT_LAYER].float(), c.float()).item()}
