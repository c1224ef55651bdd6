"""Neural Best Buddies: pairs between an image and a transformed copy follow the known transform."""
import pytest
import torch
import torch.nn.functional as F

from impasto.engines.dst.cleaning import clean_correspondences
from impasto.engines.dst.nbb import NBBConfig, _dedup, _mutual, neural_best_buddies
from impasto.imageio import sample_image


def _scaled_shifted(img: torch.Tensor, s: float, t: tuple[float, float]) -> torch.Tensor:
    """style(q) = img((q − c − t)/s + c): content point p appears at s·(p − c) + c + t (c = image centre)."""
    _, _, h, w = img.shape
    theta = torch.tensor([[[1 / s, 0, -2 * t[0] / w / s], [0, 1 / s, -2 * t[1] / h / s]]], dtype=torch.float32)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    return F.grid_sample(img, grid, padding_mode="reflection", align_corners=False)


@pytest.fixture(scope="module")
def astronaut256():
    return F.interpolate(sample_image("astronaut"), size=(256, 256), mode="bilinear", antialias=True,
                         align_corners=False).clamp(0, 1)


def test_nbb_pairs_follow_a_known_scale_and_shift(astronaut256):
    s, t = 0.85, (12.0, -8.0)
    style = _scaled_shifted(astronaut256, s, t)
    c = neural_best_buddies(astronaut256, style)
    assert c.content.shape[0] >= 200
    pred = s * (c.content - 128) + 128 + torch.tensor(t, dtype=torch.float64)
    err = (pred - c.style).norm(dim=1)
    assert err.median() <= 3.0
    cleaned = clean_correspondences(c.content, c.style, c.activation, content_size=(256, 256), style_size=(256, 256))
    assert cleaned.content.shape[0] >= 30
    pred = s * (cleaned.content - 128) + 128 + torch.tensor(t, dtype=torch.float64)
    assert (pred - cleaned.style).norm(dim=1).median() <= 3.0
    assert cleaned.similarity.scale == pytest.approx(s, rel=0.05)


def test_nbb_maps_back_to_each_image_size(astronaut256):
    # the style is the content squeezed to 160 x 224 (W x H): points scale per axis
    small = astronaut256[:, :, 64:192, 64:192]                  # 128² crop: keep the test fast
    style = F.interpolate(small, size=(112, 80), mode="bilinear", antialias=True, align_corners=False)
    c = neural_best_buddies(small, style, NBBConfig(image_size=128))
    assert c.content.shape[0] >= 20
    pred = c.content * torch.tensor([80 / 128, 112 / 128], dtype=torch.float64)
    assert (pred - c.style).norm(dim=1).median() <= 2.0
    assert (c.content >= 0).all() and (c.content[:, 0] <= 128).all() and (c.style[:, 0] <= 80).all()


def test_mutual_nearest_neighbours():
    scores = torch.tensor([[[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.0, 0.3, 0.7]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    ok, a2b = _mutual(scores, valid, valid)
    assert ok[0].tolist() == [True, False, True] and a2b[0, 0] == 0 and a2b[0, 2] == 2
    ok, _ = _mutual(scores, valid, torch.tensor([[False, True, True]]))
    assert ok[0].tolist() == [False, False, True]     # a0 and a1 both pick b1; b1 picks a2


def test_dedup_keeps_the_strongest():
    a = torch.tensor([[1, 1], [1, 1], [2, 3]])
    b = torch.tensor([[4, 4], [4, 4], [0, 0]])
    pa, pb, act = _dedup(a, b, torch.tensor([0.5, 0.9, 0.1]), 8, 8)
    assert pa.shape[0] == 2 and sorted(act.tolist()) == pytest.approx([0.1, 0.9])


def test_nbb_across_domains_a_painting_of_the_photo_bent_by_a_known_warp(astronaut256):
    # the style is the photo painted by a shipped MT style (at 512, shown at 256) and bent by a known smooth warp
    # (shrink 0.92, shift, local bend): every cleaned pair's error is known
    from impasto.engines.dst.cleaning import coverage
    from impasto.engines.dst.synthetic import make_cross_domain_case
    from impasto.engines.mt.engine import run_levels
    from impasto.engines.mt.model_file import load_model
    from impasto.engines.mt.styles import list_styles

    style_file = next(s for s in list_styles() if s.name == "woman_with_hat_matisse").path
    x = F.interpolate(sample_image("astronaut"), size=(512, 512), mode="bilinear", antialias=True,
                      align_corners=False).clamp(0, 1)
    with torch.no_grad():
        painted = run_levels(load_model(style_file)[0], x, torch.device("cpu"))[-1].clamp(0, 1)
    painted = F.interpolate(painted, size=(256, 256), mode="bilinear", antialias=True, align_corners=False)
    case = make_cross_domain_case(astronaut256, painted)
    assert (case.style - astronaut256).abs().mean() > 0.08          # it really is another picture
    c = neural_best_buddies(case.content, case.style)
    cl = clean_correspondences(c.content, c.style, c.activation, content_size=(256, 256), style_size=(256, 256))
    err = case.pair_errors(cl.content, cl.style)
    assert cl.content.shape[0] >= 8
    assert err.median() <= 4.0
    cov = coverage(cl.content, (256, 256))
    assert cov.cells >= 0.5 and cov.hull >= 0.3                       # spread over the picture, not one corner


def test_cross_domain_forward_map_is_the_warp():
    # the ground truth itself: the warp's control points go exactly where they were sent
    from impasto.engines.dst.synthetic import make_cross_domain_case
    img = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    case = make_cross_domain_case(img, img)
    assert (case.forward(case.src) - case.dst).norm(dim=1).max() < 1e-3
