"""A daemon result carries its recipe; sending the recipe's options again on the same device gives the same pixels."""
from __future__ import annotations

import numpy as np
import pytest

from tests.support.daemon import DaemonProcess
from impasto.engines.mt.styles import find_style, style_names
from impasto.recipe import file_sha256
from impasto_protocol.images import ImageBuffer
from impasto_protocol.options import StylizeOptions
from impasto_protocol.recipe import Recipe

pytestmark = pytest.mark.timeout(300)


def test_daemon_result_recipe_reproduces_the_pixels(tmp_path):
    names = style_names()
    if not names:
        pytest.skip("no shipped MT style")
    rng = np.random.default_rng(1)
    content = ImageBuffer(48, 40, 4, "u8", rng.integers(0, 256, (40, 48, 4), dtype=np.uint8).tobytes(), bgr=True)
    with DaemonProcess(tmp_path, test_engines=False) as d:
        client = d.client()
        first = client.stylize(content, StylizeOptions(engine="mt", style_name=names[0], size=48, seed=3)).wait(120)
        recipe = Recipe.from_dict(first.info["recipe"])
        again = client.stylize(content, recipe.stylize_options()).wait(120)
    assert recipe.style.kind == "model" and recipe.style.sha256 == file_sha256(find_style(names[0]).path)
    assert recipe.seed == 3 and recipe.device == "cpu" and recipe.content_sha256
    assert bytes(first.result.data) == bytes(again.result.data)
