"""One worker thread per device entry: takes jobs from the queue, runs the engine, streams progress/tiles/result back.

A worker depends on three small things, not on the daemon: the ``JobQueue`` it reads jobs from, the ``Outbox`` it
writes its messages to (``outbox.py``: signed there, forwarded by the daemon's loop) and its ``WorkerSettings``;
with several workers, also the ``devices.DevicePool`` they share (a worker holds its device there while it runs a
job, and a tiled MT job borrows the idle workers' devices through it).  Whichever worker is free takes the next job
(the queue is shared: priority, then first come first served); a result's ``info`` names the ``worker`` that ran it.
"""
from __future__ import annotations

import gc
import logging
import math
import random
import shutil
import tempfile
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

import numpy as np
import torch
import torch.nn.functional as F

from impasto_protocol.images import DTYPES as DTYPE_SIZES
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import (CANCELLED, CHUNKS, ERROR, PROGRESS, RESULT, RESULT_CHUNK, STREAM_CHUNK,
                                       STREAM_MIN, TILE)
from impasto_protocol.options import OptionsError

from .. import engines
from ..engines.base import Cancelled, Progress, check_cancel
from ..errors import ImpastoError
from .config import ExtraEngine
from .convert import PixelFormat, array_tile, buffer_to_tensor, preview_buffer, tensor_to_array, tensor_to_buffer
from .devices import DevicePool
from .jobs import PRIORITY_INTERACTIVE, Job, JobQueue
from .outbox import Outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker needs of the daemon's configuration."""

    progress_interval: float = 0.05             # at most one progress message per job per interval (previews aside)
    extra_engines: Mapping[str, ExtraEngine] = field(default_factory=dict)   # DaemonConfig.extra_engines


def _finite(v: Any) -> float | None:
    """JSON has no NaN/inf: a diverged loss is sent as null."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def is_oom(e: BaseException) -> bool:
    if isinstance(e, MemoryError):
        return True
    oom_type = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", None)
    if oom_type is not None and isinstance(e, oom_type):
        return True
    msg = str(e).lower()
    return isinstance(e, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def apply_mask(result: torch.Tensor, content: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Stylized where the mask is 1, the (resized) content where it is 0."""
    h, w = result.shape[2:]
    if tuple(content.shape[2:]) != (h, w):
        content = F.interpolate(content, size=(h, w), mode="bicubic", align_corners=False,
                                antialias=True).clamp_(0, 1)
    if tuple(mask.shape[2:]) != (h, w):
        mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=False).clamp_(0, 1)
    c = min(result.shape[1], content.shape[1])
    out = result.clone()
    out[:, :c] = torch.lerp(content[:, :c].to(result.dtype), result[:, :c], mask.to(result.dtype))
    return out


def mask_into_alpha(result: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The stylized colour unblended everywhere, the mask multiplied into the alpha (``mask_mode: "alpha"``).

    A client that shows the result as a layer over the content wants exactly this: colour S and alpha m, which the
    editor composites as m·S + (1−m)·C.  Undoing a blended B = m·S + (1−m)·C in the client instead divides 8-bit
    rounding by m at soft edges (docs/krita.md has the figures)."""
    h, w = result.shape[2:]
    if tuple(mask.shape[2:]) != (h, w):
        mask = F.interpolate(mask, size=(h, w), mode="bilinear", align_corners=False).clamp_(0, 1)
    mask = mask[:, :1].to(result.dtype)
    alpha = result[:, 3:4] * mask if result.shape[1] == 4 else mask
    return torch.cat([result[:, :3], alpha], dim=1)


def run_stylize(job: Job, *, device: torch.device, progress, cancel, on_tile=None,
                artifacts: Optional[dict] = None, timings: Optional[dict] = None,
                extra_engines: Mapping[str, ExtraEngine] = {}, helpers=None) -> torch.Tensor:
    """The result tensor of a stylize job, exactly as an in-process caller of the engine registry would get it.
    ``helpers``: other devices the engine may run tiles on (``engines.stylize``); extra engines get none."""
    assert job.content is not None and job.options is not None
    assert content_is_ready(job)
    t0 = time.perf_counter()
    pre = job.decoded                          # images streamed in were decoded while they arrived

    def tensor(name: str, color: bool = True) -> Optional[torch.Tensor]:
        img = getattr(job, name)
        if name in pre:
            return pre[name]
        return buffer_to_tensor(img, color=color) if img is not None else None

    content = tensor("content")
    style = tensor("style")
    t1 = time.perf_counter()
    if job.extra_engine:
        result = extra_engines[job.extra_engine](content, style, job.options, progress=progress, cancel=cancel,
                                                 on_tile=on_tile)
    else:
        result = engines.stylize(content, style, job.options, progress=progress, cancel=cancel, device=device,
                                 on_tile=on_tile, artifacts=artifacts, helpers=helpers)
    mask = tensor("mask", color=False)
    if mask is not None:
        result = mask_into_alpha(result, mask) if job.mask_mode == "alpha" else apply_mask(result, content, mask)
    if artifacts is not None and job.extra_engine is None:
        try:
            from ..recipe import make_recipe
            artifacts["recipe"] = make_recipe(job.options, style, device=device, content=content)
        except Exception:  # a recipe is a convenience: never fail a finished job over it
            log.warning("job=%s could not make the result's recipe", job.job_id, exc_info=True)
    if timings is not None:
        timings["decode"] = round(t1 - t0, 4)
        timings["engine"] = round(time.perf_counter() - t1, 4)
    return result


def content_is_ready(job: Job) -> bool:
    return not job.uploads and all(getattr(job, n) is None or getattr(job, n).data is not None or n in job.decoded
                                   for n in ("content", "style", "mask"))


class Worker(threading.Thread):
    """``name``: how status and results name this worker (default: its device; ``devices.worker_names`` gives
    ``cpu#0``, ``cpu#1`` to two workers on one device).  ``pool``: the devices shared with the other workers, where
    this worker's own slot is ``name`` (None: a worker alone, that neither lends nor borrows)."""

    def __init__(self, queue: JobQueue, outbox: Outbox, device: str, settings: WorkerSettings = WorkerSettings(), *,
                 name: Optional[str] = None, pool: Optional[DevicePool] = None):
        self.worker_name = name or str(torch.device(device))
        super().__init__(name=f"impasto-worker-{self.worker_name}", daemon=True)
        self.queue, self.outbox, self.settings = queue, outbox, settings
        self.device = torch.device(device)
        self.pool = pool
        self.current: Optional[Job] = None
        self.jobs_run = 0                   # jobs this worker has run (those between training steps included)

    def send(self, job: Job, msg_type: str, content: dict, buffers: list | tuple = ()) -> None:
        self.outbox.send(job, msg_type, content, buffers)

    # -- loop ------------------------------------------------------------------------------------------------------
    def run(self) -> None:
        self.outbox.open()
        try:
            while True:
                job = self.queue.get(timeout=0.2)
                if job is None:
                    if self.queue.closed:
                        break
                    continue
                self.current = job
                if self.pool is not None:
                    self.pool.claim(self.worker_name)       # waits for a tile lent from this device, if any
                try:
                    self.run_job(job)
                except Exception:  # noqa: BLE001 - the worker must outlive any job
                    log.exception("job=%s event=worker_error", job.job_id)
                    if job.state == "running":
                        self.queue.finish(job, "error", "internal")
                finally:
                    self.current = None
                    if self.pool is not None:
                        self.pool.release(self.worker_name)
        finally:
            self.outbox.close()

    def run_job(self, job: Job) -> None:
        job.device = str(self.device)
        job.worker = self.worker_name
        self.jobs_run += 1
        t0 = time.perf_counter()
        log.info("job=%s event=start kind=%s engine=%s device=%s worker=%s", job.job_id, job.kind, job.engine_name,
                 job.device, job.worker)
        state, reason = "done", ""
        try:
            if job.cancel_event.is_set():
                raise Cancelled()
            if job.kind == "stylize":
                self._stylize(job, t0)
            else:
                self._train(job, t0)
        except Cancelled:
            state, reason = "cancelled", job.cancel_reason or "requested"
            self.send(job, CANCELLED, {"reason": reason, "info": {"steps_at_cancel": job.steps_at_cancel,
                                                                  "steps_done": job.steps}})
        except Exception as e:  # noqa: BLE001 - any failure of a job must become an error reply
            state = "error"
            if is_oom(e):
                reason, text = "out_of_memory", (f"out of memory on {job.device} ({e.__class__.__name__}); try a "
                                                 f"smaller size or tile size")
            elif isinstance(e, (ImpastoError, OptionsError)):
                reason, text = "engine_error", str(e)
            else:
                reason, text = "internal", f"{e.__class__.__name__}: {e}"
                log.exception("job=%s event=crash", job.job_id)
            self.send(job, ERROR, {"code": reason, "message": text})
        finally:
            self.queue.finish(job, state, reason)
            if state == "error":
                gc.collect()
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
        log.info("job=%s event=%s reason=%s seconds=%.3f steps=%d", job.job_id, state, reason,
                 time.perf_counter() - t0, job.steps)

    def _progress_fn(self, job: Job):
        interval = self.settings.progress_interval
        last = [0.0]

        def progress(p: Progress) -> None:
            job.steps += 1
            now = time.monotonic()
            if p.preview is None and p.fraction < 1.0 and now - last[0] < interval:
                return
            last[0] = now
            frac = float(p.fraction)
            content: dict[str, Any] = {"fraction": min(1.0, max(0.0, frac)) if math.isfinite(frac) else 0.0,
                                       "stage": str(p.stage), "step": job.steps}
            if p.losses:
                content["losses"] = {str(k): _finite(v) for k, v in p.losses.items()}
            buffers = []
            if p.preview is not None:
                pv = preview_buffer(p.preview)
                content["preview"] = pv.describe(0)
                buffers.append(pv.data)
            self.send(job, PROGRESS, content, buffers)

        return progress

    @staticmethod
    def _overlays(job: Job, artifacts: dict, h: int, w: int) -> tuple[dict, list]:
        """``overlay``: the DST warp overlay as RGBA u8 images of the result's size (descriptions, buffers)."""
        warp = artifacts.get("warp_overlay")
        if not job.overlay or not warp:
            return {}, []
        from ..engines.dst.debug import grid_overlay, keypoint_overlay
        fmt = PixelFormat(4, "u8", "srgb", False)
        descs, bufs = {}, []
        for name, img in (("keypoints", keypoint_overlay(h, w, warp["points"], warp["targets"])),
                          ("grid", grid_overlay(h, w, warp["flow"]))):
            buf = tensor_to_buffer(img, fmt)
            descs[name] = buf.describe(len(bufs))
            bufs.append(buf.data)
        return descs, bufs

    def _propose_keypoints(self, job: Job, t0: float) -> None:
        """``keypoints_only``: NBB + cleaning (``engines.dst.propose``); the result carries no image, its info has
        ``keypoints`` (pairs in pixels of the content and style sent) and ``targets``."""
        from ..engines.dst.propose import propose_keypoints
        pre = job.decoded
        content = pre.get("content") if "content" in pre else buffer_to_tensor(job.content)
        style = pre.get("style") if "style" in pre else buffer_to_tensor(job.style)
        found = propose_keypoints(content, style, job.options, progress=self._progress_fn(job),
                                          cancel=job.cancel_event.is_set, device=self.device)
        info: dict[str, Any] = {"engine": "dst", "device": job.device, "worker": job.worker,
                                "steps": job.steps,
                                "keypoints": [kp.to_dict() for kp in found["keypoints"]],
                                "targets": [[float(x), float(y)] for x, y in found["targets"].tolist()],
                                "seconds": round(time.perf_counter() - t0, 4)}
        self.send(job, RESULT, {"image": None, "info": info})

    def _stylize(self, job: Job, t0: float) -> None:
        if job.keypoints_only:
            return self._propose_keypoints(job, t0)
        assert job.content is not None
        fmt = PixelFormat.of(job.content)
        if job.mask is not None and job.mask_mode == "alpha":       # the mask comes back as alpha
            fmt = PixelFormat(4, fmt.dtype, fmt.colorspace, fmt.bgr)
        tile_fmt = PixelFormat(3, fmt.dtype, fmt.colorspace, fmt.bgr)

        def on_tile(x: int, y: int, tile: torch.Tensor) -> None:
            img = tensor_to_buffer(tile, tile_fmt)
            self.send(job, TILE, {"x": x, "y": y, "final": False, "image": img.describe(0)}, [img.data])

        artifacts: dict = {}
        timings: dict = {}
        helpers = self.pool.lender(self.worker_name) if self.pool is not None else None
        result = run_stylize(job, device=self.device, progress=self._progress_fn(job),
                             cancel=job.cancel_event.is_set, on_tile=on_tile, artifacts=artifacts, timings=timings,
                             extra_engines=self.settings.extra_engines, helpers=helpers)
        t_enc = time.perf_counter()
        h, w = result.shape[2:]
        out_c = fmt.channels
        row_bytes = w * out_c * DTYPE_SIZES[fmt.dtype]
        info: dict[str, Any] = {"width": w, "height": h, "engine": job.engine_name, "device": job.device,
                                "worker": job.worker, "steps": job.steps, "timings": timings}
        by_device = artifacts.get("tiles_by_device")
        if by_device:          # a tiled run: which worker's device computed how many tiles ("home": this one)
            info["tiles_by_device"] = {self.worker_name if k == "home" else k: v for k, v in by_device.items()}
        if artifacts.get("recipe") is not None:
            info["recipe"] = artifacts["recipe"].to_dict()
        kps = artifacts.get("keypoints")
        if kps:
            info["keypoints"] = [kp.to_dict() if hasattr(kp, "to_dict") else kp for kp in kps]
        if job.deliver == "result" and row_bytes * h >= STREAM_MIN:
            # Encode, sign and send the result in row bands: the client verifies band i while this thread
            # encodes band i+1 (encoding is per pixel, so the bytes equal a whole-image encode).
            rows = max(1, STREAM_CHUNK // row_bytes)
            for y in range(0, h, rows):
                band = tensor_to_array(result[:, :, y:y + rows], fmt)
                self.send(job, RESULT_CHUNK, {"offset": y * row_bytes, "total": row_bytes * h},
                          [memoryview(band).cast("B")])
            timings["encode_send"] = round(time.perf_counter() - t_enc, 4)
            info["seconds"] = round(time.perf_counter() - t0, 4)
            desc = ImageBuffer(w, h, out_c, fmt.dtype, None, colorspace=fmt.colorspace, bgr=fmt.bgr).describe(0)
            ov, ov_bufs = self._overlays(job, artifacts, h, w)
            self.send(job, RESULT, {"image": {**desc, "buffer": CHUNKS}, "info": info,
                                    **({"overlays": ov} if ov else {})}, ov_bufs)
            return
        arr = tensor_to_array(result, fmt)
        timings["encode"] = round(time.perf_counter() - t_enc, 4)
        info["seconds"] = round(time.perf_counter() - t0, 4)
        if job.deliver == "tiles":
            ts, n = job.tile_size, 0
            for y in range(0, h, ts):
                for x in range(0, w, ts):
                    img = array_tile(arr, x, y, ts, ts, fmt)
                    self.send(job, TILE, {"x": x, "y": y, "final": True, "image": img.describe(0)}, [img.data])
                    n += 1
            info["tiles"] = n
            ov, ov_bufs = self._overlays(job, artifacts, h, w)
            self.send(job, RESULT, {"image": None, "info": info, **({"overlays": ov} if ov else {})}, ov_bufs)
        else:
            img = ImageBuffer(width=w, height=h, channels=arr.shape[2], dtype=fmt.dtype,
                              data=memoryview(arr).cast("B"), colorspace=fmt.colorspace, bgr=fmt.bgr)
            ov, ov_bufs = self._overlays(job, artifacts, h, w)
            ov = {k: {**d, "buffer": d["buffer"] + 1} for k, d in ov.items()}
            self.send(job, RESULT, {"image": img.describe(0), "info": info, **({"overlays": ov} if ov else {})},
                      [img.data, *ov_bufs])

    def run_interactive_jobs(self, training: Job) -> None:
        """Called between training steps: run every queued interactive job now, so an artist never waits for a
        training run to end.  Global RNG states are restored, so the training continues exactly as it would have.
        While another worker is idle, that one takes them instead and the training goes on."""
        while not (self.pool is not None and self.pool.idle_except(self.worker_name)) and \
                (nxt := self.queue.get_nowait(PRIORITY_INTERACTIVE)) is not None:
            log.info("job=%s event=runs_between_training_steps training=%s", nxt.job_id, training.job_id)
            states = (torch.random.get_rng_state(), random.getstate(), np.random.get_state())
            try:
                self.current = nxt
                self.run_job(nxt)
            finally:
                self.current = training
                torch.random.set_rng_state(states[0])
                random.setstate(states[1])
                np.random.set_state(states[2])

    def _train(self, job: Job, t0: float) -> None:
        """MT training (impasto.engines.mt.train): the painting is written next to the checkpoints, the model file
        goes to the user styles folder; the cancel check runs in the per-step progress callback."""
        from ..engines.mt.styles import user_data_dir
        from ..imageio import save_image

        assert job.style is not None
        style = job.decoded.get("style")
        if style is None:
            style = buffer_to_tensor(job.style)
        work = user_data_dir() / "training"
        painting = work / job.train_name / "painting.png"
        painting.parent.mkdir(parents=True, exist_ok=True)
        save_image(style[:, :3], painting)
        params = job.train_params
        sent_dir = None
        if job.train_photos:          # photos sent in the request: a folder of this job's own, removed after
            # (mkdtemp: never a name built from the client's job id, which could hold "/" or "..")
            sent_dir = Path(tempfile.mkdtemp(prefix="photos-", dir=work / job.train_name))
            for i in range(job.train_photos):
                check_cancel(job.cancel_event.is_set)
                save_image(job.decoded[f"photo{i}"][:, :3], sent_dir / f"photo{i:04d}.png")
            params = {**params, "content_dir": str(sent_dir)}
        try:
            self._train_from(job, t0, painting, work, params)
        finally:
            if sent_dir is not None:
                shutil.rmtree(sent_dir, ignore_errors=True)

    def _train_from(self, job: Job, t0: float, painting: Path, work: Path, params: dict) -> None:
        from ..engines.mt.styles import user_styles_dir
        from ..engines.mt.train import export_model, train
        from .validation import train_config

        cfg, export_kw, resume = train_config(job.train_name, str(painting), str(work), job.train_steps, params)
        progress = self._progress_fn(job)

        def on_progress(p) -> None:
            if job.cancel_event.is_set():
                raise Cancelled()
            self.run_interactive_jobs(job)
            losses = {k: float(v) for k, v in (p.losses or {}).items()}
            progress(Progress(p.step / max(1, p.total_steps), f"{p.phase} step {p.step}/{p.total_steps}",
                              losses=losses))

        net = train(cfg, resume=resume, device=self.device, on_progress=on_progress)
        out = export_model(net, cfg, user_styles_dir() / f"{job.train_name}.safetensors", **export_kw)
        info = {"name": job.train_name, "model": str(out), "device": job.device, "worker": job.worker,
                "steps": job.steps,
                "seconds": round(time.perf_counter() - t0, 2)}
        self.send(job, RESULT, {"image": None, "info": info})
