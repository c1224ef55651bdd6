"""The paper's central claim at small scale: on a held-out photo at 1024 px output, the hierarchical result's Gram
style loss (against the painting's 1024-level Grams stored in the model file) is >= 20 % lower than singular
transfer's (the style subnet alone at 1024), with content loss at most 10 % higher.  Full table:
bench/bench_mt_hierarchy.py."""
import sys
from pathlib import Path

import pytest

from impasto.engines.mt.styles import list_styles

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


def _shipped():
    return [s.name for s in list_styles() if s.ok and s.source == "shipped"]


@pytest.mark.parametrize("style", _shipped() or [pytest.param(None, marks=pytest.mark.skip("no shipped styles"))])
def test_hierarchical_beats_singular_at_1024(style):
    from bench_mt_hierarchy import compare
    from impasto.imageio import sample_image
    (row,) = compare(style, [("astronaut", sample_image("astronaut"))], size=1024)
    assert row["hier_style"] <= 0.8 * row["single_style"], row
    assert row["hier_content"] <= 1.1 * row["single_content"], row
