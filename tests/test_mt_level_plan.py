"""The MT level plan (sizes per level from the output size) and the refine level's training window."""
import pytest
import torch

from impasto.engines.mt.engine import run_levels
from impasto.engines.mt.level_plan import REFINE_ABOVE, level_plan
from impasto.engines.mt.network import MTConfig, MultimodalTransferNet, resize, window_of
from impasto.engines.mt.train import TrainConfig, hierarchical_loss, level_loss


def _net():
    torch.manual_seed(0)
    net = MultimodalTransferNet(MTConfig.tiny()).eval()
    with torch.no_grad():                    # non-identity upper levels, so skipping one changes the pixels
        for p in list(net.enhance.out.parameters()) + list(net.refine.out.parameters()):
            p.normal_(0, 0.05)
    return net


@pytest.mark.parametrize("h, w, style, enhance, refine", [
    (512, 512, (256, 256), (512, 512), None),
    (384, 512, (192, 256), (384, 512), None),
    (200, 100, (256, 128), (512, 256), None),                 # tiny outputs: the subnets still see their scale
    (724, 500, (256, 177), (512, 354), None),
    (768, 1024, (192, 256), (384, 512), (768, 1024)),
    (1024, 1024, (256, 256), (512, 512), (1024, 1024)),
    (1200, 900, (256, 192), (512, 384), (1024, 768)),         # 0.75 x 1200 < 1024: the 1024 plan, upsampled
    (2048, 1536, (384, 288), (768, 576), (1536, 1152)),       # 0.75 x the output, then upsampled
    (4000, 3000, (384, 288), (768, 576), (1536, 1152)),       # at most 1536
])
def test_plan_keeps_each_level_near_its_trained_scale(h, w, style, enhance, refine):
    plan = level_plan(h, w)
    assert (plan.style, plan.enhance, plan.refine, plan.output) == (style, enhance, refine, (h, w))


def test_run_levels_follows_the_plan(monkeypatch):
    monkeypatch.setenv("IMPASTO_PRECISION", "fp32")       # compared with an fp32 pass below
    net = _net()
    x = torch.rand(1, 3, 300, 400)
    outs = run_levels(net, x, torch.device("cpu"))
    assert len(outs) == 2 and tuple(outs[-1].shape[-2:]) == (300, 400)    # no room for refine at 400
    with torch.inference_mode():
        y = net.enhance(resize(net.style(resize(x, (192, 256))), (384, 512)))
    assert torch.allclose(outs[-1], resize(y.clamp(0, 1), (300, 400)), atol=1e-5)   # clamped, then resized

    x = torch.rand(1, 3, 600, 1200)
    outs = run_levels(net, x, torch.device("cpu"))
    assert [tuple(o.shape[-2:]) for o in outs] == [(128, 256), (256, 512), (600, 1200)]
    with torch.inference_mode():
        y = net.refine(resize(net.enhance(resize(net.style(resize(x, (128, 256))), (256, 512))), (512, 1024)))
    assert torch.allclose(outs[-1], resize(y.clamp(0, 1), (600, 1200)), atol=1e-5)
    assert max(level_plan(600, 1200).last) > REFINE_ABOVE


def test_refine_window_is_the_test_time_scale_and_its_content_target_matches():
    x = torch.rand(1, 3, 8, 6)
    up = resize(x, (16, 12))
    assert torch.equal(window_of(x, (0, 0)), up[..., :8, :6])
    assert torch.equal(window_of(x, (8, 6)), up[..., 8:, 6:])
    with pytest.raises(ValueError, match="outside"):
        window_of(x, (9, 0))

    net = _net()
    photo = torch.rand(1, 3, 64, 64)
    outs = net(photo, levels=3, upsample_refine=False, refine_window=(10, 20))
    assert [tuple(o.shape[-2:]) for o in outs] == [(32, 32), (64, 64), (64, 64)]
    assert torch.allclose(outs[2], net.refine(window_of(outs[1], (10, 20))))

    class Targets:       # Gram targets of random features: only which content each level is compared with matters
        grams = [{k: torch.rand(1, c, c) for k, c in (("relu1_1", 64), ("relu2_1", 128), ("relu3_1", 256),
                                                     ("relu4_1", 512))}] * 3
    from impasto.vgg import get_vgg
    vgg = get_vgg("cpu")
    cfg = TrainConfig(name="t", style_paths=("a",) * 3, content_dir=".", tv_weight=0.0)
    with torch.no_grad():
        total, logs = hierarchical_loss(vgg, outs, photo, Targets, cfg, refine_window=(10, 20))
        _, c_window, _ = level_loss(vgg, outs[2], window_of(photo, (10, 20)), Targets.grams[2], cfg, 2)
        _, c_whole, _ = level_loss(vgg, outs[2], photo, Targets.grams[2], cfg, 2)
    assert logs["refine_c"] == pytest.approx(c_window) and c_window != pytest.approx(c_whole)
