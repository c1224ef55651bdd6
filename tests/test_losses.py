"""Hand-checkable cases for every loss term."""
import math

import pytest
import torch

from impasto.losses.content import content_loss
from impasto.losses.gram import gram_style_loss, gram_targets
from impasto.losses.strotss import (cosine_distance, euclidean_distance, hypercolumns, moment_loss, moments,
                                    palette_loss, remd_loss, sample_locations, self_similarity_loss)
from impasto.losses.tv import tv_loss
from impasto.vgg import gram_matrix


def test_content_loss_is_the_mse():
    a = {"x": torch.zeros(1, 2, 2, 2)}
    b = {"x": torch.full((1, 2, 2, 2), 3.0)}
    assert content_loss(a, b, ["x"]).item() == pytest.approx(9.0)
    assert content_loss(a, a, ["x"]).item() == 0.0


def test_gram_of_a_known_tensor():
    f = torch.tensor([[1.0, 2.0], [0.0, 1.0]]).view(1, 2, 1, 2)    # C=2, H=1, W=2
    g = gram_matrix(f)
    assert torch.allclose(g[0], torch.tensor([[5.0, 2.0], [2.0, 1.0]]) / 4)


def test_gram_gradient_matches_finite_differences_in_both_layouts():
    f = torch.rand(2, 3, 4, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(gram_matrix, (f.clone().requires_grad_(True),))
    cl = f.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    assert torch.autograd.gradcheck(gram_matrix, (cl,))


def test_gram_in_bf16_is_close_to_fp32_and_its_gradient_keeps_the_layout():
    torch.manual_seed(0)
    f = torch.relu(torch.randn(1, 16, 32, 32)).contiguous(memory_format=torch.channels_last)
    want = gram_matrix(f)
    fb = f.bfloat16().requires_grad_(True)
    got = gram_matrix(fb)
    assert got.dtype == torch.float32
    assert ((got - want).abs() / want.abs().clamp(min=1e-3)).max().item() < 0.02
    got.sum().backward()
    assert fb.grad.dtype == torch.bfloat16 and fb.grad.shape == fb.shape


def test_gram_style_loss_zero_for_same_and_known_for_scaled():
    f = {"a": torch.rand(1, 3, 4, 4)}
    t = gram_targets(f, ["a"])
    assert gram_style_loss(f, t).item() == pytest.approx(0.0, abs=1e-12)
    doubled = {"a": 2 * f["a"]}   # Gram scales by 4: loss = mean((4G - G)^2) = 9 mean(G^2)
    assert gram_style_loss(doubled, t).item() == pytest.approx(9 * t["a"].pow(2).mean().item(), rel=1e-5)


def test_tv_of_constant_and_ramp():
    assert tv_loss(torch.ones(1, 1, 5, 5)).item() == 0.0
    ramp = torch.arange(5.0).view(1, 1, 1, 5).expand(1, 1, 5, 5) * 0.5
    assert tv_loss(ramp).item() == pytest.approx(0.25 / 2)
    assert tv_loss(ramp, diagonals=True).item() == pytest.approx((0 + 0.25 + 0.25 + 0.25) / 4)


def test_distances():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert torch.allclose(cosine_distance(x, x), torch.tensor([[0.0, 1.0], [1.0, 0.0]]), atol=1e-6)
    y = torch.tensor([[1.0, 0.0], [1.0, 2.0]])
    d = euclidean_distance(x, y)
    assert d[0, 0].item() == pytest.approx(math.sqrt(1e-5 / 2))   # clamped zero distance
    assert d[1, 0].item() == pytest.approx(math.sqrt(5 / 2))


def test_remd_identical_sets_is_zero_and_shift_is_the_shift():
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    assert remd_loss(x, x, "cosine").item() == pytest.approx(0.0, abs=1e-6)
    pts = torch.tensor([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]])
    shifted = pts + torch.tensor([1.0, 0.0])   # nearest neighbour distance 1 for every point, /D=2 inside the sqrt
    assert remd_loss(pts, shifted, "euclidean").item() == pytest.approx(math.sqrt(1 / 2), rel=1e-4)
    # one-sided: a set against a superset is 0 one way, >0 the other way; REMD takes the max
    sup = torch.cat([pts, torch.tensor([[100.0, 0.0]])])
    assert remd_loss(pts, sup, "euclidean").item() > 1.0


def test_moments_and_moment_loss():
    x = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    m, c = moments(x)
    assert torch.allclose(m, torch.tensor([[2.0, 4.0]]))
    assert torch.allclose(c, torch.tensor([[2.0, 4.0], [4.0, 8.0]]))
    assert moment_loss(x, x).item() == 0.0
    assert moment_loss(x + 1, x).item() == pytest.approx(1.0)
    assert moment_loss(x, moments(x)).item() == 0.0


def test_palette_loss_compares_colours():
    red = torch.tensor([[1.0, 0.0, 0.0]]).repeat(10, 1)
    blue = torch.tensor([[0.0, 0.0, 1.0]]).repeat(10, 1)
    assert palette_loss(red, red).item() < 0.01
    assert palette_loss(red, blue).item() > 0.3


def test_self_similarity_ignores_a_global_scale_but_not_structure():
    g = torch.Generator().manual_seed(0)
    f = torch.rand(30, 8, generator=g)
    assert self_similarity_loss(3 * f, f).item() == pytest.approx(0.0, abs=1e-5)
    other = torch.rand(30, 8, generator=g)
    assert self_similarity_loss(other, f).item() > 0.1


def test_hypercolumns_sample_every_layer_at_the_same_place():
    img = torch.zeros(1, 3, 8, 8)
    img[0, 0, 2, 5] = 1.0
    feats = {"a": img.clone(), "b": torch.nn.functional.avg_pool2d(img, 2)}
    h = hypercolumns(feats, img, torch.tensor([[5.0, 2.0], [0.0, 0.0]]), layers=("a", "b"))
    assert h.shape == (2, 3 + 3 + 3)
    assert h[0, 0].item() == pytest.approx(1.0)       # layer a, red channel at (x=5, y=2)
    assert h[0, 6].item() == pytest.approx(1.0)       # raw RGB last
    assert h[1].abs().sum().item() == 0.0


def test_sample_locations_inside_and_reproducible():
    a = sample_locations(300, 200, 100, torch.Generator().manual_seed(3))
    b = sample_locations(300, 200, 100, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (100, 2)
    assert (a[:, 0] >= 0).all() and (a[:, 0] <= 199).all() and (a[:, 1] <= 299).all()
