"""Optimization engines above FULL_RESOLUTION_ABOVE: optimize at the working size, then the tiled full-resolution
pass (the threshold is lowered here so that a small canvas takes that path)."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from impasto.engines import stylize
from impasto.engines.optim import common
from impasto_protocol.options import KeypointPair, StylizeOptions


def _image(h, w, seed):
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(1, 3, h // 8, w // 8, generator=g), size=(h, w), mode="bicubic",
                         align_corners=False).clamp(0, 1)


@pytest.mark.parametrize("engine", ["gatys", "dst"])
def test_large_output_goes_through_the_tiled_pass_and_streams_tiles(monkeypatch, engine):
    monkeypatch.setattr(common, "FULL_RESOLUTION_ABOVE", 200)
    content, style = _image(128, 160, 1), _image(96, 96, 2)
    extra = {}
    if engine == "dst":
        extra = dict(variant="gatys", keypoint_mode="markers",
                     keypoints=[KeypointPair((40, 40), (30, 30)), KeypointPair((120, 40), (70, 30)),
                                KeypointPair((80, 100), (50, 70))])
    opts = StylizeOptions(engine=engine, size=64, max_side=320, steps=3, tile_size=160, **extra)
    tiles, fractions, stages = [], [], []

    def progress(p):
        fractions.append(p.fraction)
        stages.append(p.stage)

    out = stylize(content, style, opts, progress=progress,
                  on_tile=lambda x, y, t: tiles.append((x, y, t.shape[2], t.shape[3])))
    assert out.shape == (1, 3, 256, 320)
    assert float(out.min()) >= 0 and float(out.max()) <= 1
    cover = torch.zeros(256, 320, dtype=torch.int32)
    for x, y, h, w in tiles:
        cover[y:y + h, x:x + w] += 1
    assert len(tiles) >= 4 and bool((cover == 1).all())
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert any(s.startswith("tile ") for s in stages) and any(s.startswith("global style") for s in stages)
    # below the threshold, the same job is the working-size result upsampled: no tiles, no pass
    monkeypatch.setattr(common, "FULL_RESOLUTION_ABOVE", 2048)
    tiles.clear()
    stages.clear()
    stylize(content, style, opts, progress=progress, on_tile=lambda x, y, t: tiles.append(1))
    assert not tiles and not any(s.startswith("tile ") for s in stages)
