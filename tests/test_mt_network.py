"""Shapes of the MT network: level sizes, odd sizes, refine at sizes larger than it was trained at."""
import torch
import torch.nn as nn

from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
from impasto.engines.mt.refine_subnet import RefineSubnet


def _net(tiny=True):
    torch.manual_seed(0)
    return MultimodalTransferNet(MTConfig.tiny() if tiny else MTConfig()).eval()


def test_256_input_gives_256_512_1024_outputs():
    net = _net(tiny=False)
    with torch.inference_mode():
        outs = net(torch.rand(1, 3, 256, 256), out_size=(1024, 1024))
    assert [tuple(o.shape) for o in outs] == [(1, 3, 256, 256), (1, 3, 512, 512), (1, 3, 1024, 1024)]
    assert all(torch.isfinite(o).all() for o in outs)


def test_training_mode_refine_runs_at_enhance_size():
    outs = _net()(torch.rand(2, 3, 128, 96), upsample_refine=False)
    assert [tuple(o.shape) for o in outs] == [(2, 3, 64, 48), (2, 3, 128, 96), (2, 3, 128, 96)]


def test_odd_sizes_are_padded_and_cropped_back():
    net = _net()
    with torch.inference_mode():
        for h, w in [(101, 67), (33, 250), (17, 19)]:
            outs = net(torch.rand(1, 3, h, w))
            assert tuple(outs[-1].shape) == (1, 3, h, w)
            assert tuple(outs[0].shape) == (1, 3, round(h / 4), round(w / 4))


def test_refine_trained_at_512_runs_at_any_size():
    refine = RefineSubnet((4, 8, 16), 1).eval()
    with torch.inference_mode():
        for h, w in [(512, 512), (1200, 1030), (1501, 999)]:
            x = torch.rand(1, 3, h, w)
            y = refine(x)
            assert y.shape == x.shape
            # a residual to its input: an untrained refine perturbs it ...
            assert (y - x).abs().mean() > 0
    with torch.no_grad():                       # ... and with its output layer silent it returns the input exactly
        for p in refine.out.parameters():
            p.zero_()
    with torch.inference_mode():
        x = torch.rand(1, 3, 97, 131)
        assert torch.equal(refine(x), x)


def test_instance_norms_are_plain_modules_for_the_tiler():
    refine = RefineSubnet()
    norms = [m for m in refine.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 + 2 * 3 + 2 and all(n.affine for n in norms)
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in MultimodalTransferNet().modules())


def test_gradients_reach_every_subnet_from_the_last_output():
    net = MultimodalTransferNet(MTConfig.tiny())
    outs = net(torch.rand(1, 3, 64, 64), upsample_refine=False)
    outs[-1].mean().backward()
    for sub in (net.style, net.enhance, net.refine):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in sub.parameters())
