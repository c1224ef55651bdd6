"""Real engines through the daemon give exactly the in-process result (CPU, fixed seed, tiny size)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from impasto_protocol import StylizeOptions
from impasto_protocol.images import ImageBuffer
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(300)

ENGINES = ("gatys", "strotss")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    with DaemonProcess(tmp_path_factory.mktemp("engines"), test_engines=False) as d:
        yield d


def _image(seed: int, h: int, w: int) -> np.ndarray:
    from skimage import data as skdata
    from PIL import Image
    src = skdata.astronaut() if seed == 0 else skdata.coffee()
    return np.asarray(Image.fromarray(src).resize((w, h)), dtype=np.float32) / 255.0


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_engine_round_trip_is_bit_identical(daemon, engine):
    content, style = _image(0, 24, 32), _image(1, 32, 32)
    opts = StylizeOptions(engine=engine, size=32, steps=3, seed=0, optimizer="adam")
    with daemon.client() as c:
        assert engine in c.hello()["engines"]
        job = c.stylize(ImageBuffer(32, 24, 3, "f32", content.tobytes()), opts,
                        style=ImageBuffer(32, 32, 3, "f32", style.tobytes())).wait(timeout=240)
    assert job.result is not None, job.error
    via_daemon = np.frombuffer(job.result.data, np.float32).reshape(24, 32, 3)
    from impasto import engines
    to_t = lambda a: torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0).contiguous()  # noqa: E731
    ref = engines.stylize(to_t(content), to_t(style), opts)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(via_daemon, ref), float(np.abs(via_daemon - ref).max())
