"""No checkerboard artefacts: resize-convolutions (not transposed convs) leave no period-2 energy in the output
spectrum on a nearly flat input, before and after training.  A transposed-conv decoder is the positive control
(it shows the measure does see checkerboards)."""
import pytest
import torch
import torch.nn as nn

from impasto.engines.mt.blocks import ConvLayer, ConvNormReLU
from impasto.engines.mt.network import MultimodalTransferNet
from impasto.engines.mt.styles import list_styles
from impasto.engines.mt.model_file import load_model


def period2_energy(img: torch.Tensor) -> float:
    """Fraction of the (DC-free) spectral energy in the period-2 (Nyquist) row and column of the 2-D FFT."""
    x = img.float()[0]
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    f = torch.fft.fft2(x).abs() ** 2
    h, w = x.shape[-2:]
    nyq = f[:, h // 2, :].sum() + f[:, :, w // 2].sum() - f[:, h // 2, w // 2].sum()
    return float(nyq / f.sum().clamp_min(1e-20))


def flat_input(size=256) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (0.5 + 0.01 * torch.randn(1, 3, size, size, generator=g)).clamp(0, 1)   # a near-flat grey "sky"


class TransposedDecoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(ConvNormReLU(3, 32, 9), ConvNormReLU(32, 64, 3, 2), ConvNormReLU(64, 64, 3, 2))
        self.dec = nn.Sequential(nn.ConvTranspose2d(64, 32, 3, 2, 1, output_padding=1), nn.ReLU(),
                                 nn.ConvTranspose2d(32, 16, 3, 2, 1, output_padding=1), nn.ReLU(),
                                 ConvLayer(16, 3, 3))

    def forward(self, x):
        return self.dec(self.enc(x))


def test_measure_detects_checkerboards():
    torch.manual_seed(0)
    with torch.inference_mode():
        e = period2_energy(TransposedDecoder().eval()(flat_input()))
    assert e > 0.05, e


def test_untrained_and_trained_mt_have_no_checkerboard():
    torch.manual_seed(0)
    x = flat_input(256)
    with torch.inference_mode():
        untrained = period2_energy(MultimodalTransferNet().eval()(x)[-1])
    shipped = [s for s in list_styles() if s.ok and s.source == "shipped"]
    if not shipped:
        pytest.skip("no shipped style model in weights/styles")
    # the spectrum of a noise image spreads ~2/256 = 0.8 % of its energy on these two lines
    assert untrained < 0.03, untrained
    for style in shipped:
        net, _ = load_model(style.path)
        with torch.inference_mode():
            trained = period2_energy(net(x)[-1])
        assert trained < 0.03, (style.name, trained)
