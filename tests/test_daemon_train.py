"""MT through the daemon: a (tiny) training job makes a style that list_styles offers, and stylizing with it through
the daemon gives exactly the in-process engine's result."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest
import torch
from PIL import Image

from impasto_protocol import StylizeOptions
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import ProgressEvent
from tests.support.daemon import DaemonProcess

pytestmark = pytest.mark.timeout(300)


def _u8(arr: np.ndarray) -> ImageBuffer:
    h, w, c = arr.shape
    return ImageBuffer(w, h, c, "u8", np.ascontiguousarray(arr).tobytes())


def test_train_then_stylize_with_the_new_style_matches_in_process(tmp_path, monkeypatch):
    from skimage import data as skdata
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "chelsea", "rocket"):
        Image.fromarray(getattr(skdata, name)()).resize((96, 80)).save(photos / f"{name}.png")
    painting = np.asarray(Image.fromarray(skdata.coffee()).resize((160, 120)))
    data_dir = tmp_path / "data"
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(data_dir))
    with DaemonProcess(tmp_path / "run", "--train-photos", str(photos)) as d, d.client() as c:
        assert c.hello()["training"]
        bad = c.train(_u8(painting), "../evil", steps=2, content_dir=str(photos)).wait(timeout=30)
        assert bad.error and bad.error[0] == "bad_request"
        bad = c.train(_u8(painting), "x", steps=2, content_dir=str(photos), colour=1).wait(timeout=30)
        assert bad.error and bad.error[0] == "unknown_field"
        bad = c.train(_u8(painting), "x", steps=2).wait(timeout=30)       # no photos in the default folder
        assert bad.error and bad.error[0] == "bad_request" and "training-photos" in bad.error[1]
        job = c.train(_u8(painting), "dtest", steps=3, content_dir=str(photos), net="tiny", crop=64,
                      style_sizes=[64, 96, 128], batch=2, title="Coffee", artist="scikit-image")
        events = list(job.events(timeout=240))
        assert job.error is None and not job.cancelled, job.error
        assert sum(isinstance(e, ProgressEvent) for e in events) >= 1
        assert (data_dir / "styles" / "dtest.safetensors").is_file()
        styles = {s["name"]: s for s in c.list_styles()}
        assert "dtest" in styles and styles["dtest"]["title"] == "Coffee"
        Image.open(io.BytesIO(styles["dtest"]["thumbnail"])).verify()      # a real PNG
        assert "dtest" in c.hello()["styles"]

        content = np.asarray(Image.fromarray(skdata.astronaut()).resize((64, 48)))
        opts = StylizeOptions(engine="mt", style_name="dtest", size=64)
        unknown = c.stylize(_u8(content), StylizeOptions(engine="mt", style_name="nope", size=64)).wait(timeout=30)
        assert unknown.error and unknown.error[0] == "unknown_style"
        f32 = content.astype(np.float32) / 255.0
        job = c.stylize(ImageBuffer(64, 48, 3, "f32", f32.tobytes()), opts).wait(timeout=120)
        assert job.result is not None, job.error
        via_daemon = np.frombuffer(job.result.data, np.float32).reshape(48, 64, 3)
        again = c.stylize(ImageBuffer(64, 48, 3, "f32", f32.tobytes()), opts).wait(timeout=120)
        assert bytes(again.result.data) == bytes(job.result.data), "the daemon is not deterministic"

        # a long training job stops at its next step when cancelled
        long = c.train(_u8(painting), "dlong", steps=5000, content_dir=str(photos), net="tiny", crop=64,
                       style_sizes=[64, 96, 128], batch=2, checkpoint_every=10000)
        for ev in long.events(timeout=120):
            if isinstance(ev, ProgressEvent):
                # an interactive job submitted now runs between two training steps, not after the training
                quick = c.stylize(_u8(content), StylizeOptions(engine="identity", size=64)).wait(timeout=60)
                assert quick.result is not None and bytes(quick.result.data) == content.tobytes()
                assert not long.done
                long.cancel()
                break
        long.wait(timeout=120)
        assert long.cancelled and long.info["steps_done"] - long.info["steps_at_cancel"] <= 1
        assert not (data_dir / "styles" / "dlong.safetensors").exists()

    from impasto import engines
    t = torch.from_numpy(f32).permute(2, 0, 1).unsqueeze(0).contiguous()
    ref = engines.stylize(t, None, opts)[0].permute(1, 2, 0).numpy()
    ref2 = engines.stylize(t, None, opts)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(ref, ref2), "in-process MT is not deterministic"
    assert via_daemon.shape == ref.shape
    assert np.array_equal(via_daemon, ref), float(np.abs(via_daemon - ref).max())
    assert os.environ["IMPASTO_DATA_DIR"] == str(data_dir)
