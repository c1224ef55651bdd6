"""Stylization options: the one description of a job shared by the CLI, the daemon, the plugins and the engines.

Stdlib only (plugins import this inside Krita/GIMP).  ``StylizeOptions.to_dict`` / ``from_dict`` are the JSON form
used on the wire (see PROTOCOL.md); ``validate`` raises ``OptionsError`` with a message an artist can act on.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Iterable

from .quoting import quote

ENGINES = ("mt", "dst", "gatys", "strotss")
VARIANTS = ("gatys", "strotss")          # DST's style/content terms
OPTIMIZERS = ("lbfgs", "adam", "rmsprop", "sgd")
INITS = ("content", "noise")
KEYPOINT_MODES = ("none", "auto", "markers", "both")
SCHEDULES = ("fast", "paper")             # STROTSS/DST: measured equal-quality schedule, or the papers' own
MAX_KEYPOINTS = 256                       # DST marker pairs per job: cleaning is quadratic, the TPS solve cubic in it



def _int(v: Any) -> bool:
    """A JSON integer (true/false are not numbers here, even though Python's bool is an int)."""
    return isinstance(v, int) and not isinstance(v, bool)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class OptionsError(ValueError):
    """An option is missing, unknown or out of range. The message names it and the allowed values."""


@dataclass
class KeypointPair:
    """One artist-placed or automatic correspondence, in pixel coordinates of each image (x right, y down)."""

    content: tuple[float, float]
    style: tuple[float, float]

    def to_dict(self) -> dict[str, list[float]]:
        return {"content": [float(self.content[0]), float(self.content[1])],
                "style": [float(self.style[0]), float(self.style[1])]}

    @classmethod
    def from_dict(cls, d: Any) -> "KeypointPair":
        if not isinstance(d, dict) or set(d) != {"content", "style"}:
            raise OptionsError('each keypoint pair must be {"content": [x, y], "style": [x, y]}')
        pts = []
        for key in ("content", "style"):
            p = d[key]
            if (not isinstance(p, (list, tuple)) or len(p) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in p)):
                raise OptionsError(f"keypoint {key!r} must be two numbers [x, y], got {quote(p)}")
            if not all(math.isfinite(v) for v in p):
                raise OptionsError(f"keypoint {key!r} must be finite, got {quote(p)}")
            pts.append((float(p[0]), float(p[1])))
        return cls(content=pts[0], style=pts[1])


def scale_pairs(pairs: Iterable[KeypointPair], content_scale: tuple[float, float] = (1.0, 1.0),
                style_scale: tuple[float, float] = (1.0, 1.0)) -> list[KeypointPair]:
    """Pairs for resized images: content points × (sx, sy), style points × (sx, sy) (a point is in continuous
    pixel coordinates, so resizing maps it by plain multiplication)."""
    (cx, cy), (sx, sy) = content_scale, style_scale
    return [KeypointPair(content=(p.content[0] * cx, p.content[1] * cy), style=(p.style[0] * sx, p.style[1] * sy))
            for p in pairs]


@dataclass
class StylizeOptions:
    """Everything that describes a stylization job except the pixels themselves.

    Sizes: ``size`` is the long side of the working resolution (optimization engines optimize there; MT runs its
    single pass there).  ``max_side`` is the long side of the output: ``None`` means "same as ``size``"; a client
    that wants the full canvas sends the canvas' long side (larger outputs are produced tiled, see impasto.tiling).
    """

    engine: str = "gatys"
    style_name: str | None = None          # MT: name of a shipped or trained style model
    size: int = 512                        # working long side (optimization engines; MT single pass)
    max_side: int | None = None            # output long side; None = same as size
    steps: int | None = None               # iterations (per scale for multi-scale engines); None = engine default
    schedule: str = "fast"                 # STROTSS/DST: "fast" (default) or "paper" (the papers' lr and steps)
    content_weight: float | None = None    # None = engine default
    style_weight: float | None = None
    tv_weight: float | None = None
    optimizer: str | None = None           # None = engine default
    learning_rate: float | None = None
    init: str = "content"
    preserve_color: bool = False           # keep the content's chroma (luminance-only transfer)
    strength: float = 1.0                  # 1 = full stylization, 0 = the content unchanged
    seed: int = 0
    # DST
    variant: str = "strotss"
    keypoints: list[KeypointPair] = field(default_factory=list)
    keypoint_mode: str = "none"            # none | auto | markers | both
    warp_weight: float | None = None       # β
    warp_tv_weight: float | None = None    # γ
    # Large canvases
    tile_size: int | None = None           # None = chosen from available memory
    # Daemon / preview
    preview_every: int = 0                 # send a small preview every N steps (0 = never)

    def validate(self) -> "StylizeOptions":
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise OptionsError(msg)

        def one_of(name: str, allowed: tuple, optional: bool = False) -> None:
            v = getattr(self, name)
            need((optional and v is None) or (isinstance(v, str) and v in allowed),
                 f"unknown {name.replace('_', ' ')} {quote(v)}; choose one of {', '.join(allowed)}")

        one_of("engine", ENGINES)
        if self.engine == "mt":
            need(bool(self.style_name), "engine 'mt' needs a style name (see `impasto styles`)")
        need(self.style_name is None or (isinstance(self.style_name, str) and len(self.style_name) <= 256),
             f"style_name must be a name of at most 256 characters, got {quote(self.style_name)}")
        need(_int(self.size) and 16 <= self.size <= 8192, f"size must be 16..8192 pixels, got {quote(self.size)}")
        need(self.max_side is None or (_int(self.max_side) and 16 <= self.max_side <= 65536),
             f"max_side must be 16..65536 pixels, got {quote(self.max_side)}")
        need(self.steps is None or (_int(self.steps) and 1 <= self.steps <= 100000),
             f"steps must be an integer 1..100000, got {quote(self.steps)}")
        for name in ("content_weight", "style_weight", "tv_weight", "learning_rate", "warp_weight", "warp_tv_weight"):
            v = getattr(self, name)
            need(v is None or (_num(v) and math.isfinite(v) and 0 <= v <= 1e12),
                 f"{name} must be a finite number >= 0, got {quote(v)}")
        one_of("optimizer", OPTIMIZERS, optional=True)
        one_of("init", INITS)
        need(_num(self.strength) and 0.0 <= self.strength <= 1.0,
             f"strength must be between 0 and 1, got {quote(self.strength)}")
        need(_int(self.seed) and 0 <= self.seed < 2**63,
             f"seed must be a non-negative integer, got {quote(self.seed)}")
        one_of("schedule", SCHEDULES)
        one_of("variant", VARIANTS)
        one_of("keypoint_mode", KEYPOINT_MODES)
        need(self.tile_size is None or (_int(self.tile_size) and 64 <= self.tile_size <= 16384),
             f"tile_size must be 64..16384 pixels, got {quote(self.tile_size)}")
        need(_int(self.preview_every) and self.preview_every >= 0, "preview_every must be an integer >= 0")
        need(isinstance(self.preserve_color, bool), "preserve_color must be true or false")
        need(isinstance(self.keypoints, list) and len(self.keypoints) <= MAX_KEYPOINTS,
             f"{len(self.keypoints)} keypoint pairs: at most {MAX_KEYPOINTS} markers per job")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["keypoints"] = [kp.to_dict() for kp in self.keypoints]
        return d

    @classmethod
    def from_dict(cls, d: Any) -> "StylizeOptions":
        """Build from JSON; unknown fields and wrong types are errors (never silently ignored)."""
        if not isinstance(d, dict):
            raise OptionsError("options must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise OptionsError(f"unknown option(s): {', '.join(quote(k, 40) for k in unknown[:10])}")
        kw = dict(d)
        if "keypoints" in kw:
            if not isinstance(kw["keypoints"], list):
                raise OptionsError("keypoints must be a list of pairs")
            if len(kw["keypoints"]) > MAX_KEYPOINTS:      # before parsing them: the limit bounds the work
                raise OptionsError(f"{len(kw['keypoints'])} keypoint pairs: at most {MAX_KEYPOINTS} markers per job")
            kw["keypoints"] = [KeypointPair.from_dict(p) for p in kw["keypoints"]]
        # ints that arrive as floats from JSON are accepted only when integral
        for name in ("size", "max_side", "steps", "seed", "tile_size", "preview_every"):
            v = kw.get(name)
            if isinstance(v, float) and v.is_integer():
                kw[name] = int(v)
        for name in ("preserve_color",):
            if name in kw and not isinstance(kw[name], bool):
                raise OptionsError(f"{name} must be true or false")
        return cls(**kw).validate()
