"""Thin-plate-spline warp: identity, exact interpolation, agreement with scipy, resolution independence, gradients."""
import numpy as np
import pytest
import torch
from scipy.interpolate import RBFInterpolator

from impasto.engines.dst.tps import (ThinPlateSpline, border_anchors, dense_flow, fit_displacement, pixel_centres,
                                     tps_warp)


def _image(h=48, w=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, 3, h, w, generator=g, dtype=torch.float64)


def test_zero_displacement_is_the_identity():
    img = _image().float()
    pts = torch.tensor([[10.0, 12.0], [40.5, 30.0], [55.0, 5.0]])
    out, flow = tps_warp(img, pts, pts.clone(), return_flow=True)
    assert flow.abs().max().item() <= 1e-6
    assert (out - img).abs().max().item() <= 1e-5


def test_one_moved_point_with_border_anchors_is_interpolated_exactly():
    frame = (64, 48)
    src = torch.tensor([[20.0, 16.0]], dtype=torch.float64)
    dst = torch.tensor([[26.0, 13.0]], dtype=torch.float64)
    tps = fit_displacement(src, dst, frame)
    long_side = 64.0
    at_dst = tps(dst / long_side) * long_side
    assert torch.allclose(at_dst, dst - src, atol=1e-9)
    anchors = border_anchors(frame, dtype=torch.float64)
    assert tps(anchors).abs().max().item() < 1e-9          # border stays put
    # the warped image shows the source pixel at the destination (pixel centres: dst = centre of pixel (25, 12))
    img = _image()
    src_c = torch.tensor([[20.5, 16.5]], dtype=torch.float64)
    dst_c = torch.tensor([[25.5, 12.5]], dtype=torch.float64)
    out = tps_warp(img, src_c, dst_c)
    assert torch.allclose(out[0, :, 12, 25], img[0, :, 16, 20], atol=1e-9)


def test_matches_scipy_thin_plate_spline():
    g = torch.Generator().manual_seed(1)
    centres = torch.rand(30, 2, generator=g, dtype=torch.float64)
    values = torch.randn(30, 2, generator=g, dtype=torch.float64) * 0.05
    queries = torch.rand(500, 2, generator=g, dtype=torch.float64)
    ours = ThinPlateSpline.fit(centres, values)(queries)
    ref = RBFInterpolator(centres.numpy(), values.numpy(), kernel="thin_plate_spline", degree=1)(queries.numpy())
    assert np.abs(ours.numpy() - ref).max() < 1e-9


def test_chunked_evaluation_equals_direct(monkeypatch):
    import impasto.engines.dst.tps as tps_mod
    g = torch.Generator().manual_seed(2)
    centres = torch.rand(20, 2, generator=g, dtype=torch.float64)
    values = torch.randn(20, 2, generator=g, dtype=torch.float64, requires_grad=True)
    q = torch.rand(5000, 2, generator=g, dtype=torch.float64)
    direct = ThinPlateSpline.fit(centres, values)._eval(q, *[getattr(ThinPlateSpline.fit(centres, values), a)
                                                           for a in ("centres", "weights", "affine")])
    monkeypatch.setattr(tps_mod, "CHUNK_ELEMENTS", 20 * 1024)
    chunked = ThinPlateSpline.fit(centres, values)(q)
    assert torch.allclose(direct, chunked, atol=1e-12)
    (g1,) = torch.autograd.grad(direct.pow(2).sum(), values)
    (g2,) = torch.autograd.grad(chunked.pow(2).sum(), values)
    assert torch.allclose(g1, g2, atol=1e-10)


def test_field_is_resolution_independent():
    frame = (80, 60)
    src = torch.tensor([[30.0, 20.0], [50.0, 40.0]], dtype=torch.float64)
    dst = src + torch.tensor([[4.0, -3.0], [-2.0, 5.0]], dtype=torch.float64)
    tps = fit_displacement(src, dst, frame)
    small = dense_flow(tps, (30, 40), frame)        # half resolution, flow in its own pixels
    big = dense_flow(tps, (60, 80), frame)
    # pixel (i, j) of the small image has the same centre as the 2x2 block of the big one: compare at matching
    # points by evaluating the spline directly
    q_small = pixel_centres((30, 40), frame, dtype=torch.float64)
    assert torch.allclose(small.reshape(2, -1).t() / 40 * 80, tps(q_small) * 80, atol=1e-9)
    assert torch.allclose(big.reshape(2, -1).t(), tps(pixel_centres((60, 80), frame, dtype=torch.float64)) * 80,
                          atol=1e-9)
    # the same points (given in the 80x60 frame) warp a 160x120 image: the source pixel lands at 2x the destination
    img = _image(120, 160)
    src_f = torch.tensor([[30.25, 20.25]], dtype=torch.float64)     # centre of pixel (60, 40) at 2x
    dst_f = torch.tensor([[34.75, 17.25]], dtype=torch.float64)     # centre of pixel (69, 34) at 2x
    out = tps_warp(img, src_f, dst_f, frame_size=frame)
    assert torch.allclose(out[0, :, 34, 69], img[0, :, 40, 60], atol=1e-9)


def test_gradient_wrt_theta_is_correct():
    img = _image(12, 16, seed=3)
    src = torch.tensor([[5.3, 4.1], [10.7, 7.9]], dtype=torch.float64)
    theta = (torch.tensor([[0.8, -0.6], [-0.4, 0.9]], dtype=torch.float64)).requires_grad_(True)

    def f(t):
        return tps_warp(img, src, src + t, border_per_side=6)

    assert torch.autograd.gradcheck(f, (theta,), eps=1e-6, atol=1e-5)


def test_gradient_wrt_image_is_correct():
    img = _image(8, 10, seed=4).requires_grad_(True)
    src = torch.tensor([[4.2, 3.3]], dtype=torch.float64)
    dst = torch.tensor([[5.1, 2.7]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: tps_warp(x, src, dst, border_per_side=4), (img,), eps=1e-6, atol=1e-5)


def test_too_few_centres_is_an_error():
    with pytest.raises(ValueError, match="at least 3"):
        ThinPlateSpline.fit(torch.zeros(2, 2), torch.zeros(2, 2))


def test_symmetric_solve_and_its_gradient():
    from impasto.engines.dst.tps import symmetric_solve
    g = torch.Generator().manual_seed(5)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = (m + m.t()).requires_grad_(True)                      # indefinite
    b = torch.randn(6, 2, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.allclose(symmetric_solve(a, b), torch.linalg.solve(a, b), atol=1e-10)
    sym = lambda x, y: symmetric_solve((x + x.t()) / 2, y)   # noqa: E731  (perturb symmetrically)
    assert torch.autograd.gradcheck(sym, (a, b))


def test_smooth_flow_is_close_to_the_exact_field():
    from impasto.engines.dst.tps import smooth_flow
    frame = (256, 192)
    src = torch.tensor([[60.0, 50.0], [180.0, 120.0], [128.0, 96.0]], dtype=torch.float64)
    dst = src + torch.tensor([[8.0, -5.0], [-6.0, 7.0], [3.0, 3.0]], dtype=torch.float64)
    tps = fit_displacement(src, dst, frame)
    exact = dense_flow(tps, (192, 256), frame)
    approx = smooth_flow(tps, (192, 256), frame, max_side=64)
    assert (exact - approx).abs().max().item() < 0.1
    assert exact.abs().max().item() > 5


def test_warped_image_reads_boxes_of_the_full_size_warp():
    """WarpedImage (DST outputs above the working size): per box = the same pixels as one whole render; the
    lattice flow matches the exact field; zero displacement is bicubic upsampling."""
    import torch.nn.functional as F

    from impasto.engines.dst.tps import WarpedImage
    frame = (64, 48)                                            # working size (w, h)
    small = _image(48, 64).float()
    src = torch.tensor([[20.0, 16.0], [44.0, 30.0]], dtype=torch.float64)
    dst = torch.tensor([[26.0, 13.0], [40.0, 33.0]], dtype=torch.float64)
    tps = fit_displacement(src, dst, frame)
    out_size = (192, 256)                                       # 4x the working size
    warped = WarpedImage(small, tps, frame, out_size, lattice_side=128)
    whole = warped.render(band_rows=50)
    assert whole.shape == (1, 3, 192, 256)
    box = (37, 101, 90, 203)
    assert torch.equal(warped.read(box), whole[:, :, 37:101, 90:203])
    exact = dense_flow(tps, out_size, frame).float()
    assert (warped.flow((0, 192, 0, 256)) - exact).abs().max().item() < 0.1      # px at 256, lattice at 2x
    # a moved point shows its source pixel at its destination (4x: destination (26, 13) -> (104, 52) px)
    src_px = F.interpolate(small, size=out_size, mode="bicubic", align_corners=False)
    assert (whole[0, :, 52, 104] - src_px[0, :, 64, 80].clamp(0, 1)).abs().max().item() < 0.05
    identity = WarpedImage(small, fit_displacement(src, src, frame), frame, out_size).render()
    assert (identity - src_px.clamp(0, 1)).abs().max().item() < 1e-4
