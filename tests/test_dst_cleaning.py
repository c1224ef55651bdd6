"""DST keypoint cleaning: Umeyama similarity, greedy selection, crossing removal, markers kept."""
import math

import pytest
import torch

from impasto.engines.dst.cleaning import (Similarity, align_targets, clean_correspondences, count_crossings,
                                          crossing_survivors, frame_targets, segments_cross, select_greedy,
                                          umeyama)


def _rot(deg):
    a = math.radians(deg)
    return torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)


def test_umeyama_recovers_a_known_similarity():
    g = torch.Generator().manual_seed(0)
    src = torch.rand(40, 2, generator=g, dtype=torch.float64) * 200
    truth = Similarity(1.7, _rot(23.0), torch.tensor([12.0, -30.0], dtype=torch.float64))
    dst = truth.apply(src)
    est = umeyama(src, dst)
    assert est.scale == pytest.approx(1.7, abs=1e-9)
    assert torch.allclose(est.rotation, truth.rotation, atol=1e-9)
    assert torch.allclose(est.translation, truth.translation, atol=1e-7)
    # with noise the estimate stays close
    noisy = dst + torch.randn(dst.shape, generator=g, dtype=torch.float64) * 0.5
    est = umeyama(src, noisy)
    assert est.scale == pytest.approx(1.7, rel=1e-2)
    assert torch.allclose(est.rotation, truth.rotation, atol=1e-2)
    # inverse maps back
    assert torch.allclose(est.inverse().apply(est.apply(src)), src, atol=1e-9)


def test_umeyama_never_returns_a_reflection():
    g = torch.Generator().manual_seed(1)
    src = torch.rand(20, 2, generator=g, dtype=torch.float64)
    mirrored = src * torch.tensor([-1.0, 1.0], dtype=torch.float64)
    est = umeyama(src, mirrored)
    assert torch.det(est.rotation).item() == pytest.approx(1.0)


def test_umeyama_with_one_point_fits_the_translation():
    est = umeyama(torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0, 6.0]]))
    assert est.scale == 1.0 and torch.allclose(est.translation, torch.tensor([3.0, 4.0], dtype=torch.float64))


def test_greedy_selection_keeps_strongest_and_spaces_them():
    pts = torch.tensor([[0.0, 0.0], [5.0, 0.0], [20.0, 0.0], [25.0, 3.0], [100.0, 100.0]])
    strength = torch.tensor([1.0, 3.0, 2.0, 1.5, 0.5])
    idx = select_greedy(pts, strength, max_points=10, min_distance=10)
    assert idx.tolist() == [1, 2, 4]
    assert select_greedy(pts, strength, max_points=2, min_distance=10).tolist() == [1, 2]
    # points near an already-taken marker are skipped
    assert select_greedy(pts, strength, 10, 10, taken=torch.tensor([[21.0, 0.0]])).tolist() == [1, 4]


def test_segments_cross():
    a0, a1 = torch.tensor([0.0, 0.0]), torch.tensor([10.0, 10.0])
    b0 = torch.tensor([[0.0, 10.0], [20.0, 0.0], [10.0, 10.0]])
    b1 = torch.tensor([[10.0, 0.0], [30.0, 10.0], [20.0, 0.0]])
    assert segments_cross(a0, a1, b0, b1).tolist() == [True, False, False]


def test_crossing_removal_drops_the_later_pair_but_never_a_fixed_one():
    starts = torch.tensor([[0.0, 0.0], [0.0, 10.0], [50.0, 50.0]])
    ends = torch.tensor([[10.0, 10.0], [10.0, 0.0], [55.0, 50.0]])
    assert crossing_survivors(starts, ends).tolist() == [True, False, True]
    assert crossing_survivors(starts, ends, n_fixed=2).tolist() == [True, True, True]
    assert count_crossings(starts, ends) == 1


def test_align_targets_undoes_the_framing():
    content = torch.tensor([[10.0, 10.0], [100.0, 20.0], [50.0, 90.0], [80.0, 80.0]], dtype=torch.float64)
    frame = Similarity(0.5, _rot(10.0), torch.tensor([30.0, 5.0], dtype=torch.float64))
    style = frame.apply(content)
    targets, sim = align_targets(content, style, (128, 128))
    assert torch.allclose(targets, content, atol=1e-7)
    assert sim.scale == pytest.approx(0.5)


def test_clean_pipeline_drops_weak_crossing_and_crowded_pairs_and_keeps_markers():
    g = torch.Generator().manual_seed(3)
    # a 12x12 grid of pairs related by a similarity (style = 0.5 * content + (10, 20)), plus noise
    xs = torch.arange(12, dtype=torch.float64) * 20 + 15
    gy, gx = torch.meshgrid(xs, xs, indexing="ij")
    content = torch.stack([gx.flatten(), gy.flatten()], 1)
    style = content * 0.5 + torch.tensor([10.0, 20.0], dtype=torch.float64)
    strength = torch.rand(content.shape[0], generator=g, dtype=torch.float64) * 3
    strength[0] = 0.5                                    # weak: dropped
    # a crowded near-duplicate of pair 5, weaker
    content = torch.cat([content, content[5:6] + 2]); style = torch.cat([style, style[5:6] + 1])
    strength = torch.cat([strength, strength[5:6] - 1e-3])
    # two strong pairs whose displacements (content point -> aligned style point) cross: the weaker one goes
    cross_c = torch.tensor([[100.0, 100.0], [100.0, 140.0]], dtype=torch.float64)
    cross_t = torch.tensor([[140.0, 140.0], [140.0, 100.0]], dtype=torch.float64)
    content = torch.cat([content, cross_c]); style = torch.cat([style, cross_t * 0.5 + torch.tensor([10.0, 20.0])])
    strength = torch.cat([strength, torch.tensor([5.0, 4.9], dtype=torch.float64)])
    markers = (torch.tensor([[120.0, 200.0]], dtype=torch.float64), torch.tensor([[70.0, 120.0]], dtype=torch.float64))
    out = clean_correspondences(content, style, strength, content_size=(256, 256), style_size=(256, 256),
                                markers=markers, max_points=80, min_distance=10, max_shift=None,
                                target_mapping="similarity")
    assert out.n_markers == 1
    assert torch.allclose(out.content[0], markers[0][0]) and torch.allclose(out.style[0], markers[1][0])
    assert out.counts["raw"] == 147 and out.counts["strong"] < 146
    # nothing closer than the minimum distance, nothing crossing, the weak one gone
    d = (out.content.unsqueeze(1) - out.content.unsqueeze(0)).abs().amax(-1) + torch.eye(out.content.shape[0]) * 1e9
    assert d.min() > 10
    assert count_crossings(out.content, out.targets) == 0
    assert not any(torch.allclose(c, content[0]) for c in out.content)
    assert any(torch.allclose(c, cross_c[0]) for c in out.content)
    assert not any(torch.allclose(c, cross_c[1]) for c in out.content)
    assert out.similarity.scale == pytest.approx(0.5, rel=0.05)
    # the targets of the consistent pairs are their own content points
    err = (out.targets - out.content).norm(dim=1)
    assert err.median() < 1.0 and (err < 3.0).sum() >= out.content.shape[0] - 1


def test_one_or_two_markers_are_aligned_by_the_frames_not_absorbed_by_a_fit():
    # content 200x100, style 400x200 (twice the size): the marker at style (300, 100) means content (150, 50)
    one = (torch.tensor([[100.0, 50.0]], dtype=torch.float64), torch.tensor([[300.0, 100.0]], dtype=torch.float64))
    out = clean_correspondences(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0), content_size=(200, 100),
                                style_size=(400, 200), markers=one)
    assert torch.allclose(out.targets, torch.tensor([[150.0, 50.0]], dtype=torch.float64), atol=1e-6)


def test_robust_alignment_drops_pairs_whose_targets_lie_far_away():
    g = torch.Generator().manual_seed(4)
    content = torch.rand(30, 2, generator=g, dtype=torch.float64) * 200 + 28
    style = content * 0.8 + torch.tensor([20.0, 10.0], dtype=torch.float64)
    style = style + torch.randn(style.shape, generator=g, dtype=torch.float64) * 2
    outliers = torch.tensor([3, 11, 17])
    style[outliers] = torch.rand(3, 2, generator=g, dtype=torch.float64) * 40 + torch.tensor([180.0, 10.0])
    strength = torch.full((30,), 2.0, dtype=torch.float64)
    out = clean_correspondences(content, style, strength, content_size=(256, 256), style_size=(256, 256),
                                min_distance=1, max_shift=32)
    kept = {tuple(c.tolist()) for c in out.content}
    assert not any(tuple(content[i].tolist()) in kept for i in outliers)
    assert out.counts["consistent"] >= 25
    assert out.similarity.scale == pytest.approx(0.8, rel=0.03)


def test_markers_are_honoured_as_placed_even_when_some_pin_the_corners():
    # the reported case: a disk moved 26 px right by its centre and 4 rim points, 4 corners pinned.  A similarity
    # fitted on all nine pairs takes out a shared shift of 5/9 · 26 = 14.4 px; the targets must be the style points
    c0, s0, r = torch.tensor([80.0, 96.0]), torch.tensor([106.0, 96.0]), 24.0
    rim = torch.tensor([[r, 0.0], [-r, 0.0], [0.0, r], [0.0, -r]])
    corners = torch.tensor([[12.0, 12.0], [180.0, 12.0], [12.0, 180.0], [180.0, 180.0]])
    mc = torch.cat([c0[None], c0 + rim, corners]).double()
    ms = torch.cat([s0[None], s0 + rim, corners]).double()
    none = (torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0))
    out = clean_correspondences(*none, content_size=(192, 192), style_size=(192, 192), markers=(mc, ms))
    assert torch.allclose(out.targets, ms, atol=1e-9)
    # DST's similarity alignment (still available) is what missed: the disk's targets move only ~11.6 of 26 px
    old = clean_correspondences(*none, content_size=(192, 192), style_size=(192, 192), markers=(mc, ms),
                                target_mapping="similarity")
    assert (old.targets[0] - ms[0]).norm() > 10


def test_marker_targets_follow_the_frames_scaling_per_axis():
    # content 200 x 100, style 300 x 400: a style point at (x, y) means content (x · 200/300, y · 100/400)
    mc = torch.tensor([[50.0, 20.0], [150.0, 80.0], [100.0, 50.0]], dtype=torch.float64)
    ms = torch.tensor([[90.0, 100.0], [210.0, 300.0], [150.0, 220.0]], dtype=torch.float64)
    out = clean_correspondences(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0), content_size=(200, 100),
                                style_size=(300, 400), markers=(mc, ms))
    expect = ms * torch.tensor([200 / 300, 100 / 400], dtype=torch.float64)
    assert torch.allclose(out.targets, expect, atol=1e-9)
    assert torch.allclose(frame_targets(ms, (200, 100), (300, 400)), expect)


def test_automatic_pairs_keep_similarity_targets_without_markers_and_share_the_markers_frame_with_them():
    g = torch.Generator().manual_seed(5)
    content = torch.rand(40, 2, generator=g, dtype=torch.float64) * 180 + 38
    style = content * 0.8 + torch.tensor([15.0, 5.0], dtype=torch.float64)     # the painting frames it smaller
    strength = torch.full((40,), 2.0, dtype=torch.float64)
    auto = clean_correspondences(content, style, strength, content_size=(256, 256), style_size=(256, 256),
                                 min_distance=1)
    assert (auto.targets - auto.content).norm(dim=1).max() < 1e-6           # DST: the framing is taken out
    marker = (torch.tensor([[128.0, 128.0]], dtype=torch.float64), torch.tensor([[117.4, 107.4]], dtype=torch.float64))
    both = clean_correspondences(content, style, strength, content_size=(256, 256), style_size=(256, 256),
                                 min_distance=1, markers=marker)
    assert torch.allclose(both.targets, both.style, atol=1e-9)             # one frame: the markers'


def test_consensus_keeps_the_pairs_one_similarity_explains_when_many_do_not():
    # 40 face pairs (the painting frames the face at half size) and 35 background pairs that follow another map:
    # a least-squares start lands between them; the consensus finds the face's similarity and keeps its pairs
    g = torch.Generator().manual_seed(6)
    face = torch.rand(40, 2, generator=g, dtype=torch.float64) * 120 + 60
    back = torch.rand(35, 2, generator=g, dtype=torch.float64) * 236 + 10
    content = torch.cat([face, back])
    style = torch.cat([face * 0.5 + torch.tensor([70.0, 60.0], dtype=torch.float64),
                       back.flip(1) * 0.9 + torch.tensor([5.0, 12.0], dtype=torch.float64)])
    strength = torch.full((75,), 2.0, dtype=torch.float64)
    kw = dict(content_size=(256, 256), style_size=(256, 256), min_distance=1, max_shift=32)
    out = clean_correspondences(content, style, strength, **kw)
    kept = {tuple(c.tolist()) for c in out.content}
    assert sum(tuple(c.tolist()) in kept for c in face) >= 38
    assert sum(tuple(c.tolist()) in kept for c in back) <= 3
    assert out.similarity.scale == pytest.approx(0.5, rel=0.03)
    old = clean_correspondences(content, style, strength, consensus=False, **kw)
    assert old.similarity.scale != pytest.approx(0.5, rel=0.03) or old.content.shape[0] < 30
