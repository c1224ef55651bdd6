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


# --- the fast forms of the STROTSS terms against the exact ones ------------------------------------------------------

def _value_and_grad(fn, x):
    x = x.clone().requires_grad_(True)
    v = fn(x)
    (g,) = torch.autograd.grad(v, x)
    return v.item(), g


def _clustered(n, d, gen, centres=12):
    """Points around a few centres: nearest neighbours are well separated, as between real hypercolumns."""
    c = torch.randn(centres, d, generator=gen) * 3
    return c[torch.randint(0, centres, (n,), generator=gen)] + 0.3 * torch.randn(n, d, generator=gen)


@pytest.mark.parametrize("low", [None, torch.bfloat16])
def test_fast_remd_has_the_exact_value_and_gradient(low):
    from impasto.losses.strotss import remd_cosine_fast, remd_euclidean_fast
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(0)
    x, y = _clustered(300, 64, gen), _clustered(700, 64, gen)
    yu = F.normalize(y, dim=1)
    v0, g0 = _value_and_grad(lambda t: remd_loss(t, y, "cosine"), x)
    v1, g1 = _value_and_grad(lambda t: remd_cosine_fast(t, yu, None if low is None else yu.to(low)), x)
    assert v1 == pytest.approx(v0, rel=1e-3 if low else 1e-5)
    assert F.cosine_similarity(g1.flatten(), g0.flatten(), dim=0) > (0.99 if low else 0.99999)
    xc, yc = torch.rand(300, 3, generator=gen), torch.rand(700, 3, generator=gen)
    v0, g0 = _value_and_grad(lambda t: remd_loss(t, yc, "euclidean"), xc)
    v1, g1 = _value_and_grad(lambda t: remd_euclidean_fast(t, yc), xc)
    assert v1 == pytest.approx(v0, rel=1e-5)
    assert torch.allclose(g1, g0, atol=1e-6)


def test_fast_moment_and_self_similarity_match_the_exact_terms_in_bf16():
    from impasto.losses.strotss import moment_loss_fast, self_similarity_loss_fast
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(1)
    x, y, c = torch.rand(256, 96, generator=gen) * 4, torch.rand(500, 96, generator=gen) * 5, torch.rand(256, 96, generator=gen)
    ym = moments(y)
    v0, g0 = _value_and_grad(lambda t: moment_loss(t, ym), x)
    v1, g1 = _value_and_grad(lambda t: moment_loss_fast(t, ym, torch.bfloat16), x)
    assert v1 == pytest.approx(v0, rel=1e-2)
    assert F.cosine_similarity(g1.flatten(), g0.flatten(), dim=0) > 0.99
    v0, g0 = _value_and_grad(lambda t: self_similarity_loss(t, c), x)
    v1, g1 = _value_and_grad(lambda t: self_similarity_loss_fast(t, c, torch.bfloat16), x)
    assert v1 == pytest.approx(v0, rel=2e-2)
    assert F.cosine_similarity(g1.flatten(), g0.flatten(), dim=0) > 0.98


def test_hypercolumns_match_grid_sample_in_value_gradient_and_layout():
    """The gather is grid_sample(align_corners=False, zeros padding) at every layer, edges included, and its
    gradient comes back in each map's own dtype and memory format."""
    import torch.nn.functional as F
    gen = torch.Generator().manual_seed(2)
    img = torch.rand(1, 3, 37, 53, generator=gen, requires_grad=True)
    feats = {"a": torch.randn(1, 5, 37, 53, generator=gen).contiguous(memory_format=torch.channels_last).requires_grad_(),
             "b": torch.randn(1, 7, 9, 13, generator=gen).requires_grad_(),
             "c": torch.randn(1, 4, 2, 3, generator=gen).to(torch.bfloat16).contiguous(
                 memory_format=torch.channels_last).requires_grad_()}
    pts = torch.cat([sample_locations(37, 53, 200, gen), torch.tensor([[0.0, 0.0], [52.0, 36.0], [52.9, 36.9]])])
    grid = torch.stack([(pts[:, 0] + 0.5) / 53 * 2 - 1, (pts[:, 1] + 0.5) / 37 * 2 - 1], 1).view(1, 1, -1, 2)
    ref = torch.cat([F.grid_sample(feats[k].float(), grid, align_corners=False)[0, :, 0].t() * 2.0 for k in "abc"]
                    + [F.grid_sample(img, grid, align_corners=False)[0, :, 0].t()], 1)
    out = hypercolumns(feats, img, pts, ("a", "b", "c"), feature_scale=2.0)
    assert torch.allclose(out, ref, atol=1e-4)
    w = torch.randn(out.shape, generator=gen)
    got = torch.autograd.grad(out, [img, *feats.values()], w)
    want = torch.autograd.grad(ref, [img, *feats.values()], w)
    for g, r, t in zip(got, want, [img, *feats.values()]):
        assert g.dtype == t.dtype
        assert g.is_contiguous(memory_format=torch.channels_last) == t.is_contiguous(memory_format=torch.channels_last)
        assert torch.allclose(g.float(), r.float(), atol=1e-4 if g.dtype == torch.float32 else 0.07)


def test_strotss_terms_fast_and_exact_agree_on_real_features():
    from impasto.losses.strotss import EXACT, FAST, StrotssTerms
    from impasto.vgg import get_vgg
    import torch.nn.functional as F
    vgg = get_vgg("cpu")
    gen = torch.Generator().manual_seed(3)
    content = F.avg_pool2d(torch.rand(1, 3, 96, 96, generator=gen), 3, 1, 1)
    style = F.avg_pool2d(torch.rand(1, 3, 96, 96, generator=gen), 5, 1, 2)
    x = (0.7 * content + 0.3 * torch.rand(content.shape, generator=gen)).requires_grad_(True)
    results = {}
    for name, approx in (("exact", EXACT), ("fast", FAST)):
        terms = StrotssTerms(vgg, content, style, alpha=8.0, generator=torch.Generator().manual_seed(0),
                             samples=512, style_samples=2000, approx=approx)
        lc, (ls,) = terms(x)
        (g,) = torch.autograd.grad(8 * lc + ls, x)
        results[name] = (lc.item(), ls.item(), g)
    (c0, s0, g0), (c1, s1, g1) = results["exact"], results["fast"]
    assert c1 == pytest.approx(c0, rel=0.01) and s1 == pytest.approx(s0, rel=0.01)
    assert F.cosine_similarity(g1.flatten(), g0.flatten(), dim=0) > 0.99


def test_strotss_terms_one_image_at_a_time_gives_the_batched_losses_and_gradients(monkeypatch):
    """Above BATCH_PIXELS the images go through VGG one at a time, recomputed in the backward pass (peak memory):
    the same losses and gradients as one batched pass, for X and for a second image."""
    import impasto.losses.strotss as strotss
    from impasto.vgg import get_vgg
    import torch.nn.functional as F
    vgg = get_vgg("cpu")
    gen = torch.Generator().manual_seed(4)
    content = F.avg_pool2d(torch.rand(1, 3, 64, 64, generator=gen), 3, 1, 1)
    style = F.avg_pool2d(torch.rand(1, 3, 64, 64, generator=gen), 5, 1, 2)
    x = (0.7 * content + 0.3 * torch.rand(content.shape, generator=gen)).requires_grad_(True)
    results = {}
    for name, limit in (("batched", 2 ** 30), ("one_at_a_time", 0)):
        monkeypatch.setattr(strotss, "BATCH_PIXELS", limit)
        terms = strotss.StrotssTerms(vgg, content, style, alpha=8.0, generator=torch.Generator().manual_seed(0),
                                     samples=256, style_samples=1000)
        calls = []
        monkeypatch.setattr(terms, "_hypercolumns", lambda b, p, f=terms._hypercolumns: calls.append(len(b)) or f(b, p))
        lc, (ls, ls_w) = terms(x, x.flip(3))
        (g,) = torch.autograd.grad(8 * lc + ls + ls_w, x)
        results[name] = (torch.stack([lc, ls, ls_w]).detach(), g, calls)
    (l0, g0, calls0), (l1, g1, calls1) = results["batched"], results["one_at_a_time"]
    assert calls0 == [2] and calls1[:2] == [1, 1] and len(calls1) == 4     # two forwards, two recomputations
    assert torch.allclose(l1, l0, rtol=2e-3)
    assert F.cosine_similarity(g1.flatten(), g0.flatten(), dim=0) > 0.999


def test_plateau_rule_stops_on_a_flat_loss_only():
    from impasto.engines.optim.plateau import Plateau, PlateauRule
    rule = PlateauRule(window=5, min_fall=0.01, min_steps=10)
    falling = Plateau(rule)
    assert not any(falling.add(100 * 0.97 ** k) for k in range(60))      # 3 % a step: never flat
    flat = Plateau(rule)
    stops = [k for k in range(60) if flat.add(1.0 + 0.001 * (k % 2))]
    assert stops and stops[0] + 1 == 10                                     # flat from the start: at min_steps
    late = Plateau(rule)
    curve = [100 * 0.9 ** k for k in range(30)] + [100 * 0.9 ** 30] * 30
    first = next(k for k, v in enumerate(curve) if late.add(v))
    assert 30 <= first + 1 <= 40
