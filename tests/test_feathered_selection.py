"""Lossless selections (issue 20, part 4): a feathered 8-bit selection through a real daemon and the Krita plugin's
result sink, before (the daemon blends, the plugin undoes the blend per pixel) and after (``mask_mode: "alpha"``).

The daemon runs the ``invert`` test engine, so the stylized colour is exactly known: S = 255 − C for 8-bit C.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from krita_plugin_support import install_fake

from tests.support.daemon import DaemonProcess
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import ResultEvent
from impasto_protocol.options import StylizeOptions

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_feathered_selection import unmix_before  # noqa: E402  (the plugin's code before issue 20)

pytestmark = pytest.mark.timeout(300)

W, H = 255, 6        # one column per feathered mask value 1..255


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with DaemonProcess(tmp_path_factory.mktemp("daemon")) as d:
        yield d.client()


def _scene():
    rng = np.random.default_rng(0)
    bgra = rng.integers(0, 256, (H, W, 4), dtype=np.uint8)
    bgra[..., 3] = 255
    mask = np.tile(np.arange(1, W + 1, dtype=np.uint8), (H, 1))       # 1 .. 255 across, every soft value
    return bgra, mask


def _run(client, bgra, mask, mask_mode):
    content = ImageBuffer(W, H, 4, "u8", bgra.tobytes(), bgr=True)
    opts = StylizeOptions(engine="invert", size=W)
    job = client.stylize(content, opts, mask=ImageBuffer(W, H, 1, "u8", mask.tobytes()), mask_mode=mask_mode)
    events = list(job.events(timeout=60))
    assert isinstance(events[-1], ResultEvent), events[-1]
    return events[-1]


def _soft_error(colour_bgra: np.ndarray, bgra: np.ndarray, mask: np.ndarray) -> int:
    truth = 255 - bgra[..., :3].astype(int)
    soft = mask < 255
    return int(np.abs(colour_bgra[..., :3].astype(int) - truth)[soft].max())


def test_feathered_8bit_selection_loses_at_most_one_level(client, monkeypatch, capsys):
    bgra, mask = _scene()

    blended = _run(client, bgra, mask, "blend")
    b = np.frombuffer(blended.image.tight_bytes(), np.uint8).reshape(H, W, 4)
    before = np.frombuffer(unmix_before(b.tobytes(), bgra.tobytes(), mask.tobytes()), np.uint8).reshape(H, W, 4)
    err_before = _soft_error(before, bgra, mask)

    # after: the real result through the real Krita sink, into a fake Krita layer
    app = install_fake(monkeypatch)
    from krita_fake.krita import Document

    from impasto_krita import krita_api
    from impasto_krita.insert import LayerSink, Target
    from impasto_krita.pixels import Rect

    doc = Document(W, H, "RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc", 72)
    bg = doc.rootNode().childNodes()[0]
    bg.setPixelData(bgra.tobytes(), 0, 0, W, H)
    app.openWindow().addView(doc)
    ev = _run(client, bgra, mask, "alpha")
    assert ev.image.channels == 4
    sink = LayerSink(Target(doc, bg, Rect(0, 0, W, H), mask.tobytes(), "U8", "result", mask_in_alpha=True),
                     api=krita_api)
    sink.on_result(ev)
    layer = np.frombuffer(bytes(sink.layer.pixelData(0, 0, W, H)), np.uint8).reshape(H, W, 4)
    err_after = _soft_error(layer, bgra, mask)
    assert np.array_equal(layer[..., 3], mask)                                # the selection is the alpha

    # what the artist sees: the layer composited over the content, against m·S + (1−m)·C
    m = mask[..., None] / 255.0
    ideal = m * (255 - bgra[..., :3]) + (1 - m) * bgra[..., :3]
    seen_before = m * before[..., :3] + (1 - m) * bgra[..., :3]
    seen_after = layer[..., 3:] / 255.0 * layer[..., :3] + (1 - layer[..., 3:] / 255.0) * bgra[..., :3]
    comp_before = float(np.abs(seen_before - ideal).max())
    comp_after = float(np.abs(seen_after - ideal).max())
    with capsys.disabled():
        print(f"\nfeathered 8-bit selection, layer colour max error at soft edges: before {err_before} levels, "
              f"after {err_after}; composite max error: before {comp_before:.2f}, after {comp_after:.2f} levels")
    assert err_after <= 1 and comp_after <= 1
    assert err_before > 1          # today's figure: the per-pixel unblend amplifies rounding by 1/m
