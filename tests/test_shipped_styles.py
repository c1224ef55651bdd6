"""The shipped MT styles in weights/styles: at least four, each a valid fp16 safetensors model of at most 10 MB with
its painting's credits and thumbnail, each listed in weights/README.md (and nothing listed there that is missing)."""
import io
import re
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors import safe_open

from impasto.engines.mt.model_file import load_model, read_metadata, read_style_grams

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
FILES = sorted((WEIGHTS / "styles").glob("*.safetensors"))


def test_at_least_four_styles_are_shipped():
    assert len(FILES) >= 4, [f.name for f in FILES]


def test_weights_readme_lists_exactly_the_shipped_files():
    listed = set(re.findall(r"`([\w-]+\.safetensors)`", (WEIGHTS / "README.md").read_text(encoding="utf-8")))
    assert listed == {f.name for f in FILES}


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_shipped_style_is_a_complete_model_file(path):
    assert path.stat().st_size <= 10 * 1024 * 1024
    with safe_open(str(path), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}
    meta = read_metadata(path)
    assert meta.name == path.stem
    assert meta.title and meta.artist and meta.year
    assert Image.open(io.BytesIO(meta.thumbnail_png)).size[0] > 0
    assert meta.training["steps_done"] == meta.training["style_steps"] + meta.training["hier_steps"]
    net, _ = load_model(path)
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in net.parameters())
    grams = read_style_grams(path)
    assert grams and all(torch.isfinite(g).all() for g in grams.values())
