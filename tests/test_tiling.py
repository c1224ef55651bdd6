"""Tiling machinery on a small stand-in network (IN, reflection-pad conv, strided conv, resize-conv, residual):
grid geometry, blend weights, global instance-norm statistics, tiled == untiled, no seams, OOM halving, cancel."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from impasto.engines.base import Cancelled
from impasto.tiling.global_norm import global_instance_norm, reference_stats
from impasto.tiling.memory import OOMSplitter, choose_tile_size, is_out_of_memory, memory_budget_bytes
from impasto.tiling.runner import TiledRunConfig, TiledRunner
from impasto.tiling.tiles import BandAccumulator, TileGrid, plan_axis, seam_ratio


class Block(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1):
        super().__init__()
        self.pad = nn.ReflectionPad2d(k // 2)
        self.conv = nn.Conv2d(cin, cout, k, stride)
        self.norm = nn.InstanceNorm2d(cout, affine=True)

    def forward(self, x):
        return F.relu(self.norm(self.conv(self.pad(x))))


class Res(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a = Block(c, c)
        self.pad = nn.ReflectionPad2d(1)
        self.conv = nn.Conv2d(c, c, 3)
        self.norm = nn.InstanceNorm2d(c, affine=True)

    def forward(self, x):
        return x + self.norm(self.conv(self.pad(self.a(x))))


class StandIn(nn.Module):
    """Stride 4, receptive-field radius 2*? -- small enough for 16 px of context."""
    STRIDE = 4

    def __init__(self):
        super().__init__()
        self.c1 = Block(3, 6)
        self.c2 = Block(6, 8, 3, 2)
        self.c3 = Block(8, 8, 3, 2)
        self.res = Res(8)
        self.up1 = Block(8, 6)
        self.up2 = Block(6, 6)
        self.pad = nn.ReflectionPad2d(1)
        self.out = nn.Conv2d(6, 3, 3)

    def forward(self, x):
        y = self.res(self.c3(self.c2(self.c1(x))))
        y = self.up1(F.interpolate(y, scale_factor=2, mode="nearest"))
        y = self.up2(F.interpolate(y, scale_factor=2, mode="nearest"))
        return x + self.out(self.pad(y))


def make_net(seed=0):
    torch.manual_seed(seed)
    net = StandIn().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.InstanceNorm2d):
                m.weight.normal_(1.0, 0.3)
                m.bias.normal_(0.0, 0.3)
    return net


def smooth_image(h, w, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 8 + 2, w // 8 + 2, generator=g)
    x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)
    return (x + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


def run_tiled(net, x, tile=32, context=16, overlap=8, on_tile=None, cancel=None,
              splitter=None, progress=None):
    H, W = x.shape[-2:]
    runner = TiledRunner(net, H, W, TiledRunConfig(tile, context, overlap, 4),
                         device=torch.device("cpu"))
    if splitter is not None:
        runner.splitter = splitter
    out = torch.full((1, 3, H, W), float("nan"))

    def emit(x0, y0, v):
        out[:, :, y0:y0 + v.shape[2], x0:x0 + v.shape[3]] = v
        if on_tile is not None:
            on_tile(x0, y0, v.clone())

    runner.run(lambda b: x[:, :, b[0]:b[1], b[2]:b[3]], emit, cancel=cancel, progress=progress)
    return out, runner


# ---------------------------------------------------------------- geometry

@pytest.mark.parametrize("length,tile,overlap,context,align", [
    (100, 32, 8, 16, 4), (64, 64, 8, 8, 4), (65, 64, 8, 8, 1), (1000, 256, 32, 48, 4), (37, 16, 4, 4, 1)])
def test_axis_plan_covers_and_partitions(length, tile, overlap, context, align):
    wins = plan_axis(length, tile, overlap, context, align)
    assert wins[0].start == 0 and wins[-1].stop == length
    assert wins[0].own_start == 0 and wins[-1].own_stop == length
    for a, b in zip(wins, wins[1:]):
        assert a.own_stop == b.own_start                       # owned intervals partition the axis
        assert a.stop - b.start >= min(overlap, tile)          # neighbours overlap by at least `overlap`
        assert b.start % align == 0
        assert a.crop_start == max(0, a.start - -(-context // align) * align)
    for wn in wins:
        assert wn.stop - wn.start <= -(-tile // align) * align
        assert wn.start <= wn.own_start < wn.own_stop <= wn.stop


def test_blend_weights_are_a_partition_of_unity():
    grid = TileGrid.plan(150, 230, 48, 12, 8, 4)
    total = torch.zeros(150, 230, dtype=torch.float64)
    for t in grid:
        y0, y1, x0, x1 = t.window
        total[y0:y1, x0:x1] += grid.weights(t, torch.float64)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-12)
    w = grid.weights(next(iter(grid)), torch.float64)
    assert w[0, 0] == 1.0 and 0 < w[-1, -1] < 0.01              # corner tile: flat at the canvas edge, ramps inside


def test_band_accumulator_emits_each_pixel_once_in_raster_order():
    grid = TileGrid.plan(90, 130, 40, 8, 4, 4)
    acc = BandAccumulator(grid, 1)
    seen = torch.zeros(90, 130, dtype=torch.int32)
    out = torch.zeros(90, 130)
    order = []
    for t in grid:
        y0, y1, x0, x1 = t.window
        ramp = torch.arange(y0, y1, dtype=torch.float32)[:, None] * 1000 + torch.arange(x0, x1)[None, :]
        owned = acc.add(t, ramp.view(1, 1, y1 - y0, x1 - x0))
        oy0, oy1, ox0, ox1 = t.owned
        seen[oy0:oy1, ox0:ox1] += 1
        out[oy0:oy1, ox0:ox1] = owned[0, 0]
        order.append((oy0, ox0))
    assert order == sorted(order)
    assert bool((seen == 1).all())
    expect = torch.arange(90, dtype=torch.float32)[:, None] * 1000 + torch.arange(130)[None, :]
    assert torch.allclose(out, expect)                          # blending identical values changes nothing
    with pytest.raises(ValueError):
        BandAccumulator(grid, 1).add(list(grid)[1], torch.zeros(1, 1, 40, 40))


# ---------------------------------------------------------------- global statistics and equality

def test_global_stats_equal_whole_image_stats():
    net, x = make_net(), smooth_image(96, 136)
    expected = reference_stats(net, x)
    runner = TiledRunner(net, 96, 136, TiledRunConfig(32, 16, 8, 4), device=torch.device("cpu"))
    with global_instance_norm(net) as norms:
        from impasto.tiling.global_norm import collect_global_stats
        crops = runner.stats_crops(96, 136)
        assert len(crops) == len(runner.grid) > 4

        def run(c):
            y0, y1, x0, x1 = c.crop
            with torch.inference_mode():
                net(x[:, :, y0:y1, x0:x1])
        collect_global_stats(norms, crops, run)
        got = [(m.mean, m.var) for m in norms]
    assert len(got) == len(expected) == 7
    for (m, v), (em, ev) in zip(got, expected):
        assert torch.allclose(m, em, atol=1e-4, rtol=1e-4)
        assert torch.allclose(v, ev, atol=1e-4, rtol=1e-4)
    # the wrappers are gone afterwards
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in net.modules()) == 7


def test_tiled_equals_untiled_and_local_stats_would_not():
    net, x = make_net(), smooth_image(100, 140)
    with torch.inference_mode():
        ref = net(x)
    out, runner = run_tiled(net, x)
    assert len(runner.grid) >= 12
    assert not torch.isnan(out).any()
    d = (out - ref).abs()
    assert d.max() < 2e-5, d.max()
    # per-tile (local) statistics, the naive approach, are visibly wrong: the test above can fail
    grid = runner.grid
    local = torch.zeros_like(ref)
    for t in grid:
        y0, y1, x0, x1 = t.crop
        with torch.inference_mode():
            y = net(x[:, :, y0:y1, x0:x1])
        oy0, oy1, ox0, ox1 = t.owned
        local[:, :, oy0:oy1, ox0:ox1] = y[:, :, oy0 - y0:oy1 - y0, ox0 - x0:ox1 - x0]
    assert (local - ref).abs().max() > 1e-2


def test_too_little_context_is_detected():
    net, x = make_net(), smooth_image(100, 140)
    with torch.inference_mode():
        ref = net(x)
    out, _ = run_tiled(net, x, context=4, overlap=4)
    assert (out - ref).abs().max() > 1e-3


def test_no_seams_along_tile_borders():
    net, x = make_net(), smooth_image(128, 160)
    out, runner = run_tiled(net, x)
    ratio = seam_ratio(out, runner.grid)
    assert abs(ratio - 1) < 0.05, ratio
    # the metric sees a real seam: offset every other tile column
    seamy = out.clone()
    for w in runner.grid.cols[1::2]:
        seamy[..., w.own_start:w.own_stop] += 0.25
    assert abs(seam_ratio(seamy, runner.grid) - 1) > 0.05


# ---------------------------------------------------------------- callbacks, progress, cancel

def test_on_tile_order_and_coverage_and_progress():
    net, x = make_net(), smooth_image(100, 140)
    calls, prog = [], []
    out, runner = run_tiled(net, x, on_tile=lambda x0, y0, t: calls.append((y0, x0, t.shape[2], t.shape[3])),
                            progress=lambda phase, d, n: prog.append((phase, d, n)))
    assert len(calls) == len(runner.grid)
    assert [c[:2] for c in calls] == sorted(c[:2] for c in calls)
    cover = torch.zeros(100, 140, dtype=torch.int32)
    for y0, x0, h, w in calls:
        cover[y0:y0 + h, x0:x0 + w] += 1
    assert bool((cover == 1).all())
    tiles = [p for p in prog if p[0] == "tiles"]
    assert [d for _, d, _ in tiles] == list(range(1, len(runner.grid) + 1))
    assert any(p[0] == "statistics" for p in prog)


def test_cancel_between_tiles():
    net, x = make_net(), smooth_image(100, 140)
    with torch.no_grad():
        plain = net(x)
    calls, prog = [], []

    def cancel():
        return len(calls) >= 3

    with pytest.raises(Cancelled):
        run_tiled(net, x, on_tile=lambda *a: calls.append(a), cancel=cancel,
                  progress=lambda phase, d, n: prog.append((phase, d, n)))
    assert len(calls) == 3
    # the statistics pass had finished, the 4th tile was never computed
    stats = [p for p in prog if p[0] == "statistics"]
    assert stats and stats[-1][1] == stats[-1][2]
    assert [d for phase, d, _ in prog if phase == "tiles"] == [1, 2, 3]
    # and the network's instance norms are back to their own per-image statistics
    with torch.no_grad():
        assert torch.equal(net(x), plain)

    before_stats = []
    with pytest.raises(Cancelled):                  # a cancel already set stops the run before any work
        run_tiled(net, x, on_tile=lambda *a: calls.append(a), cancel=lambda: True,
                  progress=lambda *p: before_stats.append(p))
    assert len(calls) == 3 and before_stats == []


# ---------------------------------------------------------------- memory policy

class FakeOOMNet(nn.Module):
    """Raises CUDA's OOM error for crops above ``limit`` pixels, otherwise runs ``net``."""

    def __init__(self, net, limit):
        super().__init__()
        self.net, self.limit, self.failures = net, limit, 0

    def forward(self, x):
        if x.shape[2] * x.shape[3] > self.limit:
            self.failures += 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (fake)")
        return self.net(x)


def test_oom_halves_the_tile_and_retries_without_changing_the_result():
    net, x = make_net(), smooth_image(128, 160)
    with torch.inference_mode():
        ref = net(x)
    fake = FakeOOMNet(net, limit=70 * 70)        # a 64-tile crop with 16 context (96^2) fails, halves (64^2) pass
    splitter = OOMSplitter(torch.device("cpu"), 4, min_side=8)
    out, runner = run_tiled(fake, x, tile=64, splitter=splitter)
    assert splitter.halvings >= 1 and fake.failures >= 1
    assert splitter.depth == 1                   # later tiles start halved instead of failing again
    assert (out - ref).abs().max() < 2e-5


def test_other_errors_are_not_swallowed_and_tiny_tiles_give_up():
    sp = OOMSplitter(torch.device("cpu"), 4, min_side=16)

    def boom(box):
        raise ValueError("not memory")
    with pytest.raises(ValueError):
        sp.run((0, 64, 0, 64), boom)

    def always_oom(box):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(torch.cuda.OutOfMemoryError):
        sp.run((0, 64, 0, 64), always_oom)
    assert is_out_of_memory(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))


def test_tile_size_follows_the_ram_budget(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setenv("IMPASTO_RAM_BUDGET_MB", "256")
    small = choose_tile_size(cpu, 700, 48)
    monkeypatch.setenv("IMPASTO_RAM_BUDGET_MB", "2048")
    big = choose_tile_size(cpu, 700, 48)
    assert memory_budget_bytes(cpu) == 2048 * 2**20
    assert small % 4 == 0 and big % 4 == 0 and 64 <= small < big
    assert (big + 96) ** 2 * 700 <= 2048 * 2**20 < (big + 104) ** 2 * 700
    monkeypatch.setenv("IMPASTO_RAM_BUDGET_MB", "lots")
    with pytest.raises(ValueError, match="IMPASTO_RAM_BUDGET_MB"):
        memory_budget_bytes(cpu)


def test_single_pass_statistics_when_the_canvas_fits_one_crop():
    net, x = make_net(), smooth_image(100, 140)
    with torch.inference_mode():
        ref = net(x)
    runner = TiledRunner(net, 100, 140, TiledRunConfig(32, 16, 8, 4, single_pass_pixels=100 * 140),
                         device=torch.device("cpu"))
    out = torch.zeros_like(ref)
    passes = []

    def emit(x0, y0, v):
        out[:, :, y0:y0 + v.shape[2], x0:x0 + v.shape[3]] = v
    runner.run(lambda b: x[:, :, b[0]:b[1], b[2]:b[3]], emit,
               progress=lambda phase, d, n: passes.append((phase, d, n)))
    assert [p for p in passes if p[0] == "statistics"] == [("statistics", 1, 1)]
    assert (out - ref).abs().max() < 2e-5
