"""Checking requests before anything is allocated for them; every refusal is a ``RequestError`` with a code."""
from __future__ import annotations

import dataclasses
import functools
import importlib
import logging
import os
import re
from pathlib import Path
from typing import Any, Sequence

from impasto_protocol.images import ImageBuffer, ImageBufferError
from impasto_protocol.messages import DELIVER, MASK_MODES, REQUEST_FIELDS
from impasto_protocol.options import OptionsError, StylizeOptions
from impasto_protocol.quoting import quote
from impasto_protocol.wire import Message

from ..engines import ENGINE_MODULES, output_size
from .config import DaemonConfig
from .jobs import PRIORITY_INTERACTIVE, PRIORITY_TRAINING, Job, Upload

log = logging.getLogger(__name__)
TRAIN_MODULE = "impasto.engines.mt.train"
MAX_TRAIN_PHOTOS = 256       # photos a train request may send itself (each streamed; they share the queue budget)
STYLE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# train params on the wire -> expected JSON kind (TrainConfig fields and export metadata; see `impasto train`)
TRAIN_PARAMS = {
    "content_dir": "a string", "style_steps": "an integer", "hier_steps": "an integer", "batch": "an integer",
    "hier_batch": "an integer", "crop": "an integer", "lr": "a number", "style_weight": "a number",
    "content_weight": "a number", "tv_weight": "a number", "checkpoint_every": "an integer", "seed": "an integer",
    "net": "'default' or 'tiny'", "max_photos": "an integer", "style_sizes": "three integers",
    "title": "a string", "artist": "a string", "year": "a string", "resume": "true or false",
    "replace_shipped": "true or false",
}


def allowed_photos_dir(requested: Any, allowed: Sequence[Path]) -> Path:
    """The folder a train request may read photos from: ``requested`` (after resolving symlinks and ``..``) only
    when it is one of the daemon's allowed folders or inside one, else the first allowed folder when none is asked.

    Checked before the folder is touched, so a request learns nothing about folders outside the allowed ones
    (whether they exist, what errors reading them gives)."""
    if not allowed:
        raise RequestError("bad_request", "this daemon allows no training photo folder (serve --train-photos DIR)")
    if requested is None or requested == "":
        return Path(allowed[0])
    real = Path(os.path.realpath(requested))
    for root in allowed:
        r = Path(os.path.realpath(root))
        if real == r or r in real.parents:
            return real
    raise RequestError("bad_request", f"train param 'content_dir' {quote(requested)} is not a folder this daemon "
                       f"reads training photos from; put the photos in {', '.join(str(a) for a in allowed)} "
                       f"(or start the daemon with --train-photos DIR)")


def _is_kind(v: Any, kind: str) -> bool:
    if kind == "a string":
        return isinstance(v, str) and len(v) <= 4096
    if kind == "an integer":
        return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 10_000_000
    if kind == "a number":
        return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1e12
    if kind == "true or false":
        return isinstance(v, bool)
    if kind == "three integers":
        return (isinstance(v, list) and len(v) == 3
                and all(isinstance(x, int) and not isinstance(x, bool) and 16 <= x <= 4096 for x in v))
    return v in ("default", "tiny")


def train_config(name: str, painting: str, work_dir: str, steps: int | None, params: dict):
    """(TrainConfig, export metadata kwargs, resume) for a validated train request, like `impasto train`."""
    from ..engines.mt.network import MTConfig
    from ..engines.mt.train import TrainConfig, cpu_schedule, level_style_weights, split_steps
    style_steps, hier_steps = cpu_schedule().values()
    if steps is not None:
        style_steps, hier_steps = split_steps(steps)
    style_steps = params.get("style_steps", style_steps)
    hier_steps = params.get("hier_steps", hier_steps)
    if style_steps + hier_steps == 0:
        raise RequestError("bad_request", "training needs a positive number of steps")
    sw = level_style_weights(float(params.get("style_weight", TrainConfig.style_weights[0])))
    kw: dict[str, Any] = {}
    for wire_key, cfg_key in (("batch", "style_batch"), ("hier_batch", "hier_batch"), ("crop", "crop"),
                              ("lr", "lr"), ("content_weight", "content_weight"), ("tv_weight", "tv_weight"),
                              ("checkpoint_every", "checkpoint_every"), ("seed", "seed"),
                              ("max_photos", "max_photos")):
        if wire_key in params:
            kw[cfg_key] = params[wire_key]
    if "style_sizes" in params:
        kw["style_sizes"] = tuple(params["style_sizes"])
    net = MTConfig.tiny() if params.get("net") == "tiny" else MTConfig()
    cfg = TrainConfig(name=name, style_paths=(painting, painting, painting), content_dir=params["content_dir"],
                      out_dir=work_dir, style_steps=style_steps, hier_steps=hier_steps,
                      style_weights=sw, net=net.to_dict(), **kw)
    export_kw = {k: str(params.get(k, "")) for k in ("title", "artist", "year")}
    return cfg, export_kw, bool(params.get("resume", False))


class RequestError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@functools.lru_cache(maxsize=None)
def module_available(name: str) -> bool:
    """True when the module imports (once per daemon): an engine whose file exists but fails to import (a missing
    optional dependency) is not offered."""
    try:
        importlib.import_module(name)
        return True
    except ImportError as e:
        log.warning("event=module_unavailable module=%s error=%s", name, quote(str(e), 200))
        return False


def available_engines() -> list[str]:
    return [name for name, mod in ENGINE_MODULES.items() if module_available(mod)]


def check_fields(msg: Message) -> None:
    allowed = REQUEST_FIELDS.get(msg.msg_type)
    if allowed is None:
        raise RequestError("unknown_type", f"unknown message type {quote(msg.msg_type, 40)}; known: "
                           f"{', '.join(sorted(REQUEST_FIELDS))}")
    unknown = sorted(set(msg.content) - allowed)
    if unknown:
        raise RequestError("unknown_field", f"{msg.msg_type}: unknown field(s) "
                           f"{', '.join(quote(k, 40) for k in unknown[:10])}")


def _image(content: dict, name: str, buffers: Sequence[Any], used: set, config: DaemonConfig,
           required: bool, uploads: dict | None = None) -> ImageBuffer | None:
    desc = content.get(name)
    if desc is None:
        if required:
            raise RequestError("bad_request", f"the {name} image is missing")
        return None
    try:
        img = ImageBuffer.from_description(desc, buffers, max_pixels=config.max_pixels, what=name,
                                           allow_chunks=uploads is not None)
    except ImageBufferError as e:
        raise RequestError(e.code, str(e)) from None
    if img.data is None:                       # streamed in chunk messages after the request
        assert uploads is not None
        uploads[name] = Upload(img, color=name != "mask")
        return img
    idx = desc["buffer"]
    if idx in used:
        raise RequestError("bad_image", f"{name}: buffer {idx} is already used by another image")
    used.add(idx)
    return img


def parse_options(raw: Any, config: DaemonConfig) -> tuple[StylizeOptions, str | None]:
    """Options and the extra engine they name (``DaemonConfig.extra_engines``; None for a real engine)."""
    if not isinstance(raw, dict):
        raise RequestError("bad_request", "options must be a JSON object")
    engine = raw.get("engine")
    extra_engine = None
    try:
        if isinstance(engine, str) and engine in config.extra_engines:
            extra_engine = engine
            opts = StylizeOptions.from_dict({**raw, "engine": "gatys"})
            opts = dataclasses.replace(opts, engine=engine)
        else:
            opts = StylizeOptions.from_dict(raw)
    except OptionsError as e:
        raise RequestError("bad_options", str(e)) from None
    except TypeError as e:      # a field of the wrong JSON type the dataclass could not take
        raise RequestError("bad_options", f"options: {e}") from None
    return opts, extra_engine


def build_stylize_job(msg: Message, config: DaemonConfig, styles: Sequence[str] | None = None) -> Job:
    c = msg.content
    if not msg.job_id:
        raise RequestError("bad_request", "stylize needs header.job_id (chosen by the client)")
    if "options" not in c:
        raise RequestError("bad_request", "stylize needs options")
    opts, extra_engine = parse_options(c["options"], config)
    deliver = c.get("deliver", "result")
    if deliver not in DELIVER:
        raise RequestError("bad_request", f"deliver must be one of {', '.join(DELIVER)}, got {quote(deliver)}")
    tile_size = c.get("tile_size", 1024)
    if not isinstance(tile_size, int) or isinstance(tile_size, bool) or not 64 <= tile_size <= 16384:
        raise RequestError("bad_request", f"tile_size must be an integer 64..16384, got {quote(tile_size)}")
    mask_mode = c.get("mask_mode", "blend")
    if mask_mode not in MASK_MODES:
        raise RequestError("bad_request",
                           f"mask_mode must be one of {', '.join(MASK_MODES)}, got {quote(mask_mode)}")
    keypoints_only = c.get("keypoints_only", False)
    if not isinstance(keypoints_only, bool):
        raise RequestError("bad_request", f"keypoints_only must be true or false, got {quote(keypoints_only)}")
    if keypoints_only and opts.engine != "dst":
        raise RequestError("bad_request", "keypoints_only proposes DST keypoints: options.engine must be 'dst'")
    overlay = c.get("overlay", False)
    if not isinstance(overlay, bool):
        raise RequestError("bad_request", f"overlay must be true or false, got {quote(overlay)}")
    used: set = set()
    uploads: dict = {}
    content = _image(c, "content", msg.buffers, used, config, required=True, uploads=uploads)
    style = _image(c, "style", msg.buffers, used, config, required=False, uploads=uploads)
    mask = _image(c, "mask", msg.buffers, used, config, required=False, uploads=uploads)
    assert content is not None
    if len(used) != len(msg.buffers):
        raise RequestError("extra_buffers", f"{len(msg.buffers) - len(used)} buffer frame(s) are not referred to "
                           f"by any image")
    if mask is not None:
        if mask.channels != 1:
            raise RequestError("bad_image", f"mask must have 1 channel, got {mask.channels}")
        if (mask.width, mask.height) != (content.width, content.height):
            raise RequestError("bad_image", f"mask is {mask.width}×{mask.height} but the content is "
                               f"{content.width}×{content.height}")
    oh, ow = output_size(content.height, content.width, opts)
    if oh * ow > config.max_pixels:
        raise RequestError("too_large", f"the output {ow}×{oh} = {ow * oh / 1e6:.1f} MP is larger than the daemon's "
                           f"limit of {config.max_pixels / 1e6:.1f} MP")
    if extra_engine is None:
        if opts.engine not in available_engines():
            raise RequestError("engine_unavailable", f"engine {opts.engine!r} is not installed in this daemon "
                               f"(available: {', '.join(available_engines()) or 'none'})")
        if opts.engine == "mt":
            if styles is not None and opts.style_name not in styles:
                raise RequestError("unknown_style", f"no MT style named {quote(opts.style_name)}; installed: "
                                   f"{', '.join(styles) or 'none'}")
        elif style is None:
            raise RequestError("bad_request", f"engine {opts.engine!r} needs a style image")
    return Job(job_id=msg.job_id, kind="stylize", session=msg.session, identities=msg.identities,
               request_header=msg.header, priority=PRIORITY_INTERACTIVE, options=opts, extra_engine=extra_engine,
               content=content, style=style, mask=mask, deliver=deliver, tile_size=tile_size, uploads=uploads,
               mask_mode=mask_mode, keypoints_only=keypoints_only, overlay=overlay)


def _train_photos(raw: Any, config: DaemonConfig, uploads: dict) -> int:
    """Validate the photos a train request sends (streamed images ``photo0``...; registered in ``uploads``)."""
    if raw is None:
        return 0
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_TRAIN_PHOTOS:
        raise RequestError("bad_request", f"photos must be a list of 1..{MAX_TRAIN_PHOTOS} image descriptions")
    for i, desc in enumerate(raw):
        try:
            img = ImageBuffer.from_description(desc, (), max_pixels=config.max_pixels, what=f"photos[{i}]",
                                               allow_chunks=True)
        except ImageBufferError as e:
            raise RequestError(e.code, str(e)) from None
        if img.data is not None:      # pragma: no cover - from_description with no buffers cannot give data
            raise RequestError("bad_image", f"photos[{i}]: photos are streamed (\"buffer\": \"chunks\")")
        uploads[f"photo{i}"] = Upload(img, color=True)
    return len(raw)


def build_train_job(msg: Message, config: DaemonConfig, shipped: Sequence[str] = ()) -> Job:
    """``shipped``: names of the styles shipped with Impasto (a train request may replace one only explicitly)."""
    c = msg.content
    if not msg.job_id:
        raise RequestError("bad_request", "train needs header.job_id (chosen by the client)")
    name = c.get("name")
    if not isinstance(name, str) or not STYLE_NAME.fullmatch(name):
        raise RequestError("bad_request", f"style name {quote(name)}: use letters, digits, '-' and '_' (max 64)")
    steps = c.get("steps")
    if steps is not None and (not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 10_000_000):
        raise RequestError("bad_request", f"steps must be an integer 1..10000000, got {quote(steps)}")
    params = c.get("params", {})
    if not isinstance(params, dict):
        raise RequestError("bad_request", "params must be a JSON object")
    unknown = sorted(set(params) - set(TRAIN_PARAMS))
    if unknown:
        raise RequestError("unknown_field", f"train params: unknown {', '.join(quote(k, 40) for k in unknown[:10])}; known: "
                           f"{', '.join(sorted(TRAIN_PARAMS))}")
    for key, kind in TRAIN_PARAMS.items():
        if key in params and not _is_kind(params[key], kind):
            raise RequestError("bad_request", f"train param {key!r} must be {kind}, got {quote(params[key])}")
    if name in shipped and not params.get("replace_shipped", False):
        raise RequestError("bad_request", f"{name!r} is a style shipped with Impasto; training it would replace it for "
                           f"every client -- choose another name, or send params.replace_shipped: true to mean it")
    used: set = set()
    uploads: dict = {}
    sent = _train_photos(c.get("photos"), config, uploads)
    params = {k: v for k, v in params.items() if k != "replace_shipped"}
    if sent:
        if "content_dir" in params:
            raise RequestError("bad_request", "send photos or name a content_dir, not both")
    else:
        photos = allowed_photos_dir(params.get("content_dir"), config.train_photo_dirs)
        if not photos.is_dir():
            raise RequestError("bad_request", f"no training photos: {str(photos)!r} is not a folder (put photos "
                               f"there, set IMPASTO_TRAIN_PHOTOS, start the daemon with --train-photos DIR, or "
                               f"send them in the request)")
        params["content_dir"] = str(photos)
    style = _image(c, "style", msg.buffers, used, config, required=True, uploads=uploads)
    if len(used) != len(msg.buffers):
        raise RequestError("extra_buffers", f"{len(msg.buffers) - len(used)} buffer frame(s) are not referred to "
                           f"by any image")
    if not module_available(TRAIN_MODULE):
        raise RequestError("engine_unavailable", "MT training is not installed in this daemon "
                           f"({TRAIN_MODULE} is missing)")
    return Job(job_id=msg.job_id, kind="train", session=msg.session, identities=msg.identities,
               request_header=msg.header, priority=PRIORITY_TRAINING, style=style, train_name=name,
               train_steps=steps, train_params=params, uploads=uploads, train_photos=sent)
