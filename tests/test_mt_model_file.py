"""MT style model files: round trip, size, metadata, and clear errors for corrupt or foreign files."""
import json

import pytest
import torch

from impasto.engines.mt.model_file import (ModelFileError, StyleMetadata, load_model, make_thumbnail,
                                           read_metadata, save_model)
from impasto.engines.mt.network import MTConfig, MultimodalTransferNet


def _meta(name="tiny_style"):
    return StyleMetadata(name=name, title="The Starry Night", artist="Vincent van Gogh", year="1889",
                         training={"steps": 3}, thumbnail_png=make_thumbnail(torch.rand(1, 3, 40, 60)))


def test_round_trip_fp16_with_metadata(tmp_path):
    torch.manual_seed(0)
    net = MultimodalTransferNet(MTConfig.tiny())
    path = save_model(tmp_path / "tiny_style.safetensors", net, _meta())
    loaded, meta = load_model(path)
    assert meta.title == "The Starry Night" and meta.artist == "Vincent van Gogh" and meta.year == "1889"
    assert meta.training == {"steps": 3} and meta.thumbnail_png.startswith(b"\x89PNG")
    assert loaded.config == net.config
    for (k, a), (_, b) in zip(net.state_dict().items(), loaded.state_dict().items()):
        assert torch.allclose(a.half().float(), b), k
    net.load_state_dict({k: v.half().float() for k, v in net.state_dict().items()})   # what fp16 storage keeps
    x = torch.rand(1, 3, 40, 40)
    with torch.inference_mode():
        assert torch.allclose(net.eval()(x)[-1], loaded(x)[-1], atol=1e-5)


def test_default_network_fits_in_10_mb(tmp_path):
    path = save_model(tmp_path / "full.safetensors", MultimodalTransferNet(), _meta("full"))
    assert path.stat().st_size <= 10 * 1024 * 1024
    assert read_metadata(path).name == "full"


def test_file_is_not_a_pickle(tmp_path):
    path = save_model(tmp_path / "s.safetensors", MultimodalTransferNet(MTConfig.tiny()), _meta())
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8:8 + header_len])
    assert header["__metadata__"]["format"] == "impasto-mt"
    assert all(v["dtype"] == "F16" for k, v in header.items() if k != "__metadata__")


def test_corrupt_file_gives_clear_error(tmp_path):
    path = save_model(tmp_path / "s.safetensors", MultimodalTransferNet(MTConfig.tiny()), _meta())
    data = path.read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="corrupt|truncated"):
        load_model(tmp_path / "truncated.safetensors")
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(ModelFileError, match="not a readable safetensors"):
        read_metadata(tmp_path / "garbage.safetensors")
    with pytest.raises(ModelFileError, match="does not exist"):
        load_model(tmp_path / "missing.safetensors")


def test_foreign_safetensors_file_is_rejected(tmp_path):
    from safetensors.torch import save_file
    save_file({"weight": torch.zeros(3, 3)}, str(tmp_path / "other.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="not an Impasto MT style model"):
        load_model(tmp_path / "other.safetensors")


def test_weights_that_do_not_fit_are_rejected(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file
    path = save_model(tmp_path / "s.safetensors", MultimodalTransferNet(MTConfig.tiny()), _meta())
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    tensors.pop(next(iter(tensors)))
    save_file(tensors, str(tmp_path / "broken.safetensors"), metadata=meta)
    with pytest.raises(ModelFileError, match="do not fit"):
        load_model(tmp_path / "broken.safetensors")


def test_style_grams_are_stored_beside_the_weights(tmp_path):
    from impasto.engines.mt.model_file import read_style_grams
    grams = {"relu1_1": torch.rand(64, 64)}
    path = save_model(tmp_path / "g.safetensors", MultimodalTransferNet(MTConfig.tiny()), _meta(), style_grams=grams)
    assert torch.allclose(read_style_grams(path)["relu1_1"], grams["relu1_1"], atol=1e-3)
    load_model(path)   # the extra tensors do not disturb loading
