"""Wire images <-> tensors (daemon side) and the job queue, without a daemon process."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from impasto_protocol.images import ImageBuffer
from impasto.daemon.convert import PixelFormat, buffer_to_tensor, tensor_to_array, tensor_to_buffer
from impasto.daemon.jobs import PRIORITY_INTERACTIVE, PRIORITY_TRAINING, Job, JobQueue


def _buf(arr: np.ndarray, dtype: str, **kw) -> ImageBuffer:
    h, w, c = arr.shape
    return ImageBuffer(w, h, c, dtype, memoryview(np.ascontiguousarray(arr)).cast("B"), **kw)


@pytest.mark.parametrize("dtype,np_dtype", [("u8", np.uint8), ("u16", "<u2"), ("f16", "<f2"), ("f32", "<f4")])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_round_trip_is_exact(dtype, np_dtype, channels):
    rng = np.random.default_rng(channels)
    if dtype in ("u8", "u16"):
        hi = 255 if dtype == "u8" else 65535
        arr = rng.integers(0, hi + 1, size=(5, 7, channels)).astype(np_dtype)
    else:
        arr = rng.random((5, 7, channels)).astype(np_dtype)
    img = _buf(arr, dtype)
    t = buffer_to_tensor(img)
    assert t.shape == (1, 4 if channels in (2, 4) else 3, 5, 7)
    if channels in (1, 2):    # grey comes back as luminance of equal R=G=B: exact up to float rounding
        back = tensor_to_array(t, PixelFormat.of(img))
        tol = 0 if dtype == "u8" else (2 if dtype == "u16" else 1e-3)
        assert np.abs(back.astype(np.float64) - arr.astype(np.float64)).max() <= tol
    else:
        np.testing.assert_array_equal(tensor_to_array(t, PixelFormat.of(img)), arr)
        assert bytes(tensor_to_buffer(t, PixelFormat.of(img)).data) == arr.tobytes()   # C-contiguous, castable


def test_bgr_and_padded_rows():
    rgb = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    bgr = rgb[:, :, [2, 1, 0, 3]]
    padded = np.zeros((2, 16), np.uint8)
    padded[:, :12] = bgr.reshape(2, 12)
    img = ImageBuffer(3, 2, 4, "u8", padded.tobytes(), stride=16, bgr=True)
    t = buffer_to_tensor(img)
    np.testing.assert_array_equal((t[0].permute(1, 2, 0) * 255).round().byte().numpy(), rgb)
    out = tensor_to_buffer(t, PixelFormat.of(img))
    assert out.stride == 12 and bytes(out.data) == bgr.tobytes()


def test_linear_light_is_converted_both_ways():
    lin = np.array([[[0.0, 0.2140, 1.0]]], np.float32)       # 0.214 linear ~ 0.5 sRGB
    img = _buf(lin, "f32", colorspace="linear")
    t = buffer_to_tensor(img)
    assert abs(float(t[0, 1, 0, 0]) - 0.5) < 2e-3
    np.testing.assert_allclose(tensor_to_array(t, PixelFormat.of(img)), lin, atol=1e-5)


def _job(i: int, prio: int) -> Job:
    return Job(job_id=str(i), kind="stylize", session="s", identities=[b"x"], request_header={}, priority=prio)


def test_queue_runs_interactive_jobs_before_training_and_skips_cancelled():
    q = JobQueue()
    jobs = [_job(0, PRIORITY_TRAINING), _job(1, PRIORITY_INTERACTIVE), _job(2, PRIORITY_TRAINING),
            _job(3, PRIORITY_INTERACTIVE)]
    for j in jobs:
        q.put(j)
    assert q.remove_queued(jobs[3])
    q.finish(jobs[3], "cancelled")
    order = []
    while (j := q.get(timeout=0.01)) is not None:
        order.append(j.job_id)
        q.finish(j, "done")
    assert order == ["1", "0", "2"]
    assert q.idle() and not q.remove_queued(jobs[1])


@pytest.mark.parametrize("channels,dtype,bgr", [(4, "u8", True), (1, "u16", False), (3, "f32", False)])
def test_streamed_upload_decodes_band_by_band_exactly(channels, dtype, bgr):
    from impasto.daemon.jobs import Upload
    rng = np.random.default_rng(7)
    h, w = 37, 29
    np_dt = {"u8": np.uint8, "u16": "<u2", "f32": "<f4"}[dtype]
    arr = (rng.random((h, w, channels)) * (255 if dtype == "u8" else 65535 if dtype == "u16" else 1)).astype(np_dt)
    raw = arr.tobytes()
    img = ImageBuffer(w, h, channels, dtype, None, bgr=bgr, colorspace="linear" if dtype == "f32" else "srgb")
    up = Upload(img)
    up.allocate()
    off = 0
    while off < len(raw):                       # chunk sizes that do not respect row boundaries
        n = int(rng.integers(1, 700))
        up.feed(raw[off:off + n])
        off += n
    assert up.complete and up.rows_done == h and not up.carry
    whole = buffer_to_tensor(ImageBuffer(w, h, channels, dtype, raw, bgr=bgr, colorspace=img.colorspace))
    assert torch.equal(up.tensor, whole)
