"""Propose keypoints (issue 20, part 1): NBB + cleaning only, through the daemon; the round trip through markers.

Proposing, then running DST from the proposed pairs as markers, uses the same pairs as *Automatic*.  The content is
sent larger than the working size (like an editor's canvas), so the resize and the mapping back are exercised.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from impasto import engines
from impasto.daemon.cli_bridge import tensor_to_f32_buffer
from tests.support.daemon import DaemonProcess
from impasto.engines.dst.synthetic import make_case
from impasto_protocol.messages import ResultEvent
from impasto_protocol.options import KeypointPair, StylizeOptions

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def case():
    c = make_case(size=128, points=6, seed=3)
    content = F.interpolate(c.content, size=(192, 192), mode="bilinear", align_corners=False)   # the "canvas"
    return content, c.style


def _pairs(raw) -> list[float]:
    """Pairs (KeypointPair or wire dicts) as one flat list of floats, for ``pytest.approx``."""
    out: list[float] = []
    for p in raw:
        out += [*p.content, *p.style] if isinstance(p, KeypointPair) else [*p["content"], *p["style"]]
    return out


def test_proposed_pairs_are_the_automatic_pairs_and_survive_the_marker_round_trip(case, tmp_path_factory):
    content, style = case
    auto = StylizeOptions(engine="dst", size=128, steps=1, keypoint_mode="auto", optimizer="adam")
    art_auto: dict = {}
    engines.stylize(content, style, auto, artifacts=art_auto)
    with DaemonProcess(tmp_path_factory.mktemp("daemon"), test_engines=False) as d:
        client = d.client()
        job = client.stylize(tensor_to_f32_buffer(content), dataclasses.replace(auto, keypoint_mode="markers",
                                                                                 keypoints=[]),
                             style=tensor_to_f32_buffer(style), keypoints_only=True)
        events = list(job.events(timeout=300))
    result = events[-1]
    assert isinstance(result, ResultEvent) and result.image is None
    proposed = result.info["keypoints"]
    assert len(proposed) >= 3 and len(result.info["targets"]) == len(proposed)
    assert _pairs(proposed) == pytest.approx(_pairs(art_auto["keypoints"]), abs=1e-6)

    # the markers as an editor writes and reads them back (3 decimals), unchanged: DST uses exactly those pairs
    markers = [KeypointPair(content=(round(p["content"][0], 3), round(p["content"][1], 3)),
                            style=(round(p["style"][0], 3), round(p["style"][1], 3))) for p in proposed]
    art_markers: dict = {}
    engines.stylize(content, style, dataclasses.replace(auto, keypoint_mode="markers", keypoints=markers),
                    artifacts=art_markers)
    assert _pairs(art_markers["keypoints"]) == pytest.approx(_pairs(art_auto["keypoints"]), abs=2e-3)

    # one marker moved: the job's pair moves with it (and only that one)
    moved = list(markers)
    moved[0] = KeypointPair(content=(markers[0].content[0] + 9.0, markers[0].content[1] - 5.0), style=markers[0].style)
    art_moved: dict = {}
    engines.stylize(content, style, dataclasses.replace(auto, keypoint_mode="markers", keypoints=moved),
                    artifacts=art_moved)
    got = _pairs(art_moved["keypoints"])
    assert got[:4] == pytest.approx(_pairs(moved)[:4], abs=2e-3)
    assert got[4:] == pytest.approx(_pairs(markers)[4:], abs=2e-3)


def test_keypoints_only_is_refused_for_other_engines(tmp_path_factory):
    from impasto_protocol.client import ProtocolError
    with DaemonProcess(tmp_path_factory.mktemp("daemon")) as d:
        client = d.client()
        img = tensor_to_f32_buffer(torch.rand(1, 3, 32, 32))
        job = client.stylize(img, StylizeOptions(engine="gatys", size=32), style=img, keypoints_only=True)
        events = list(job.events(timeout=60))
    err = events[-1]
    assert getattr(err, "code", None) == "bad_request" and "keypoints_only" in err.message


def test_dst_overlay_comes_with_the_result_aligned_and_transparent(case, tmp_path_factory):
    import numpy as np
    content, style = case
    opts = StylizeOptions(engine="dst", size=96, max_side=96, steps=1, keypoint_mode="auto", optimizer="adam")
    with DaemonProcess(tmp_path_factory.mktemp("daemon"), test_engines=False) as d:
        client = d.client()
        job = client.stylize(tensor_to_f32_buffer(content), opts, style=tensor_to_f32_buffer(style), overlay=True)
        result = list(job.events(timeout=300))[-1]
    assert isinstance(result, ResultEvent) and set(result.overlays) == {"keypoints", "grid"}
    w, h = result.image.width, result.image.height
    for img in result.overlays.values():
        assert (img.width, img.height, img.channels, img.dtype) == (w, h, 4, "u8")
    kp = np.frombuffer(bytes(result.overlays["keypoints"].data), np.uint8).reshape(h, w, 4)
    grid = np.frombuffer(bytes(result.overlays["grid"].data), np.uint8).reshape(h, w, 4)
    assert (kp[..., 3] == 0).mean() > 0.5 and 0.02 < (grid[..., 3] > 0).mean() < 0.6
    scale = w / content.shape[3]                       # keypoints in the content sent -> result pixels
    for pair in result.info["keypoints"]:
        x, y = (round(v * scale) for v in pair["content"])
        assert kp[min(y, h - 1), min(x, w - 1), 3] == 255, pair       # a disc at each keypoint
