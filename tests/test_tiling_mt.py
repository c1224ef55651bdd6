"""Tiled MT (impasto.tiling.mt_tiled) on the real MT network with tiny widths: equals the untiled forward."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from impasto.engines.base import Cancelled
from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
from impasto.tiling.mt_tiled import downscale, stylize_tiled, upsample_region

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    n = MultimodalTransferNet(MTConfig.tiny()).eval()
    with torch.no_grad():
        for p in n.parameters():      # random everywhere (the last convs start at zero: identity levels)
            p.normal_(0, 0.3) if p.dim() > 1 else p.normal_(0, 0.1)
    return n


def image(h, w, seed=3):
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(1, 3, h // 10 + 2, w // 10 + 2, generator=g), size=(h, w), mode="bicubic",
                      align_corners=False)
    return x.clamp(0, 1)


def test_upsample_region_matches_interpolate_and_reflect_pad():
    small = torch.rand(1, 3, 13, 17)
    full = F.interpolate(small, size=(50, 62), mode="bilinear", align_corners=False)
    padded = F.pad(full, (0, 2, 0, 2), mode="reflect")
    got = upsample_region(small, (50, 62), (8, 52, 20, 64))
    assert torch.allclose(got, padded[..., 8:52, 20:64], atol=1e-6)


def test_banded_downscale_matches_interpolate():
    x = torch.rand(1, 4, 300, 220)
    want = F.interpolate(x[:, :3], size=(70, 50), mode="bilinear", align_corners=False, antialias=True)
    got = downscale(x, (70, 50), band_rows=64)
    assert torch.allclose(got, want, atol=1e-5)
    got8 = downscale((x * 255).round().to(torch.uint8), (70, 50), band_rows=64)
    assert (got8 - want).abs().max() < 3 / 255


def test_tiled_mt_equals_untiled(net):
    x = image(262, 306)
    with torch.inference_mode():
        ref = net(x)[-1].clamp(0, 1)
    tiles = []
    out = stylize_tiled(net, x, None, on_tile=lambda a, b, t: tiles.append((a, b, t.shape[2], t.shape[3])),
                        device=CPU, tile_size=128, precision="fp32")
    assert len(tiles) >= 6
    assert (out - ref).abs().max() < 1e-4
    cover = torch.zeros(262, 306, dtype=torch.int32)
    for a, b, h, w in tiles:
        cover[b:b + h, a:a + w] += 1
    assert bool((cover == 1).all())


def test_rgba_uint8_canvas_without_assembling(net):
    x = image(96, 120)
    rgba = torch.cat([x, torch.ones(1, 1, 96, 120)], 1)
    u8 = (rgba * 255).round().to(torch.uint8)
    ref = stylize_tiled(net, u8[:, :3].float() / 255, None, device=CPU, tile_size=128, precision="fp32")
    canvas = torch.zeros(1, 3, 96, 120)

    def put(a, b, t):
        canvas[:, :, b:b + t.shape[2], a:a + t.shape[3]] = t
    assert stylize_tiled(net, u8, None, on_tile=put, device=CPU, tile_size=128, precision="fp32",
                         assemble=False) is None
    assert (canvas - ref).abs().max() < 1e-4


def test_thumbnail_statistics_above_stats_side(net):
    x = image(160, 160)
    with torch.inference_mode():
        ref = net(x)[-1].clamp(0, 1)
    exact = stylize_tiled(net, x, None, device=CPU, tile_size=128, precision="fp32")
    thumb = stylize_tiled(net, x, None, device=CPU, tile_size=128, precision="fp32", stats_side=80)
    assert (exact - ref).abs().max() < 1e-4
    d = (thumb - ref).abs()
    assert 0 < d.max()                 # the statistics did come from the 80-px thumbnail, not the canvas
    assert d.mean() < 0.05             # ... and are close to the canvas' (a random tiny net, so loosely)


def test_progress_and_cancel(net):
    x = image(300, 300)
    seen = []
    stylize_tiled(net, x, None, progress=seen.append, device=CPU, tile_size=128, precision="fp32")
    fr = [p.fraction for p in seen]
    assert fr == sorted(fr) and fr[-1] == pytest.approx(1.0)
    assert seen[-1].stage.startswith("tile ") and any(p.stage.startswith("global statistics") for p in seen)
    tiles = []
    with pytest.raises(Cancelled):
        stylize_tiled(net, x, None, on_tile=lambda *a: tiles.append(a), cancel=lambda: len(tiles) >= 2,
                      device=CPU, tile_size=128, precision="fp32")
    assert len(tiles) == 2


@pytest.mark.parametrize("shape, tiled_path", [
    ((200, 800), True),        # refine at the output size: the tiles stream straight out
    ((330, 1100), True),       # refine at the plan's work size (825 px), the result resized to the output
    ((200, 260), False),       # the plan stops after the enhance level: nothing to tile, one piece
])
def test_a_tile_size_changes_the_memory_used_not_the_picture(net, tmp_path, monkeypatch, shape, tiled_path):
    from impasto.engines import stylize
    from impasto.engines.mt import engine as mt_engine
    from impasto.engines.mt.model_file import StyleMetadata, save_model
    from impasto_protocol.options import StylizeOptions
    monkeypatch.setenv("IMPASTO_STYLES_DIR", str(tmp_path))
    monkeypatch.setenv("IMPASTO_PRECISION", "fp32")
    save_model(tmp_path / "tiletest.safetensors", net, StyleMetadata(name="tiletest", title="T", artist="", year=""))
    h, w = shape
    x = image(h, w)
    routed = []
    real = mt_engine.run_levels
    monkeypatch.setattr(mt_engine, "run_levels", lambda *a, **k: routed.append("untiled") or real(*a, **k))
    untiled = stylize(x, None, StylizeOptions(engine="mt", style_name="tiletest", size=w), device=CPU)
    assert routed == ["untiled"]
    tiles = []
    cover = torch.zeros(h, w, dtype=torch.int32)

    def on_tile(a, b, t):
        tiles.append((a, b))
        cover[b:b + t.shape[2], a:a + t.shape[3]] += 1
    tiled = stylize(x, None, StylizeOptions(engine="mt", style_name="tiletest", size=w, tile_size=128),
                    device=CPU, on_tile=on_tile)
    assert tiled.shape == untiled.shape == (1, 3, h, w)
    assert routed == (["untiled"] if tiled_path else ["untiled", "untiled"])
    assert (len(tiles) >= 4) == (tiled_path and mt_engine.level_plan(h, w).refine == (h, w))
    assert bool((cover == 1).all())                 # the rectangles handed out cover the canvas once
    assert (tiled - untiled).abs().max() < 2e-3     # fp16 weights in the file: same net on both paths
    assert mt_engine.TILED_ABOVE == 2048


def test_tiled_levels_follow_a_level_plan(net, monkeypatch):
    from impasto.engines.mt.engine import run_levels
    monkeypatch.setenv("IMPASTO_PRECISION", "fp32")        # run_levels takes the policy; compared with fp32 below
    from impasto.engines.mt.level_plan import level_plan
    x = image(300, 900)
    plan = level_plan(300, 900)
    assert plan.refine == (300, 900) and max(plan.style) == 256
    ref = run_levels(net, x, CPU)[-1].clamp(0, 1)
    out = stylize_tiled(net, x, None, device=CPU, tile_size=128, precision="fp32", levels=plan)
    assert (out - ref).abs().max() < 1e-4
    with pytest.raises(ValueError, match="no refine level"):
        stylize_tiled(net, image(200, 260), None, device=CPU, tile_size=128, levels=level_plan(200, 260))


# -- refine tiles on several devices (impasto.tiling.devices, runner._output_pass) ----------------------------------
class CountingLender:
    """A ``DeviceLender`` of CPU "devices" named ``names`` that counts its loans and how many were out at once."""

    def __init__(self, names):
        import threading
        self.free = list(names)
        self.size = len(names)
        self.out = self.most_out = self.lent = 0
        self.lock = threading.Lock()

    def borrow(self):
        from impasto.tiling.devices import Loan
        with self.lock:
            if not self.free:
                return None
            name = self.free.pop()
            self.out += 1
            self.lent += 1
            self.most_out = max(self.most_out, self.out)

        def back():
            with self.lock:
                self.out -= 1
                self.free.append(name)
        return Loan(CPU, name, back)


def test_tiles_on_two_cpu_devices_equal_one_device_bit_for_bit(net):
    x = image(262, 306)
    one, two = {}, {}
    ref = stylize_tiled(net, x, None, device=CPU, tile_size=128, precision="fp32", report=one)
    tiles = []
    out = stylize_tiled(net, x, None, on_tile=lambda a, b, t: tiles.append((a, b)), device=CPU, tile_size=128,
                        precision="fp32", helpers=["cpu"], report=two)
    assert torch.equal(out, ref)
    assert one["tiles_by_device"] == {"home": one["tiles"]}
    assert set(two["tiles_by_device"]) == {"home", "cpu"}            # both devices computed tiles
    assert sum(two["tiles_by_device"].values()) == two["tiles"] == len(tiles)
    rows = sorted({b for _, b in tiles})
    assert tiles == sorted(tiles, key=lambda t: (rows.index(t[1]), t[0]))   # still emitted in raster order


def test_lent_devices_are_given_back_and_one_tile_each_is_in_flight(net):
    x = image(300, 300)
    lender = CountingLender(["w1", "w2"])
    seen = []
    out = stylize_tiled(net, x, None, progress=seen.append, device=CPU, tile_size=128, precision="fp32",
                        helpers=lender)
    ref = stylize_tiled(net, x, None, device=CPU, tile_size=128, precision="fp32")
    assert torch.equal(out, ref)
    assert lender.lent >= 1 and lender.out == 0 and lender.most_out <= 2
    fr = [p.fraction for p in seen]
    assert fr == sorted(fr) and fr[-1] == pytest.approx(1.0)


def test_cancel_with_helpers_returns_every_loan(net):
    x = image(300, 300)
    lender = CountingLender(["w1"])
    tiles = []
    with pytest.raises(Cancelled):
        stylize_tiled(net, x, None, on_tile=lambda *a: tiles.append(a), cancel=lambda: len(tiles) >= 2,
                      device=CPU, tile_size=128, precision="fp32", helpers=lender)
    assert len(tiles) == 2 and lender.out == 0


def test_a_helper_error_fails_the_run_and_returns_the_loan(net, monkeypatch):
    from impasto.tiling import runner as runner_mod
    lender = CountingLender(["w1"])

    def broken(self, loan):
        raise RuntimeError("helper broke")
    monkeypatch.setattr(runner_mod.TiledRunner, "_site", broken)
    with pytest.raises(RuntimeError, match="helper broke"):
        stylize_tiled(net, image(262, 306), None, device=CPU, tile_size=128, precision="fp32", helpers=lender)
    assert lender.lent >= 1 and lender.out == 0


def test_a_run_leaves_the_shared_network_untouched(net):
    """The run swaps IN layers in module objects of its own, so another thread may run the same net meanwhile."""
    import torch.nn as nn
    before = [type(m) for m in net.refine.modules()]
    stylize_tiled(net, image(96, 120), None, device=CPU, tile_size=128, precision="fp32")
    assert [type(m) for m in net.refine.modules()] == before
    assert any(isinstance(m, nn.InstanceNorm2d) for m in net.refine.modules())


def test_replicate_shares_the_weights_or_copies_them_to_another_device(net):
    import torch.nn as nn
    from impasto.tiling.devices import replicate
    from impasto.tiling.global_norm import GlobalStatsNorm
    view = replicate(net.refine)
    assert view is not net.refine
    assert all(a is b for a, b in zip(view.parameters(), net.refine.parameters()))
    norm = GlobalStatsNorm(nn.InstanceNorm2d(3, affine=True))
    with torch.inference_mode():
        norm.mean, norm.var = torch.zeros(3), torch.ones(3)      # as the statistics phase leaves them
    meta = replicate(nn.Sequential(net.refine, norm), torch.device("meta"))
    assert all(p.device.type == "meta" for p in meta.parameters()) and meta[1].mean.device.type == "meta"
    assert all(p.device.type == "cpu" for p in net.refine.parameters()) and norm.mean.device.type == "cpu"
