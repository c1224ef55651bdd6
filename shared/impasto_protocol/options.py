"""Stylization options: the one description of a job shared by the CLI, the daemon, the plugins and the engines.

Stdlib only (plugins import this inside Krita/GIMP).  ``StylizeOptions.to_dict`` / ``from_dict`` are the JSON form
used on the wire (see PROTOCOL.md); ``validate`` raises ``OptionsError`` with a message an artist can act on.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

ENGINES = ("mt", "dst", "gatys", "strotss")
VARIANTS = ("gatys", "strotss")          # DST's style/content terms
OPTIMIZERS = ("lbfgs", "adam", "rmsprop", "sgd")
INITS = ("content", "noise")
KEYPOINT_MODES = ("none", "auto", "markers", "both")
SCHEDULES = ("fast", "paper")             # STROTSS/DST: measured equal-quality schedule, or the papers' own


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
                raise OptionsError(f"keypoint {key!r} must be two numbers [x, y], got {p!r}")
            if not all(math.isfinite(v) for v in p):
                raise OptionsError(f"keypoint {key!r} must be finite, got {p!r}")
            pts.append((float(p[0]), float(p[1])))
        return cls(content=pts[0], style=pts[1])


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

        need(self.engine in ENGINES, f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.engine == "mt":
            need(bool(self.style_name), "engine 'mt' needs a style name (see `impasto styles`)")
        need(isinstance(self.size, int) and 16 <= self.size <= 8192, f"size must be 16..8192 pixels, got {self.size}")
        need(self.max_side is None or (isinstance(self.max_side, int) and 16 <= self.max_side <= 65536),
             f"max_side must be 16..65536 pixels, got {self.max_side}")
        need(self.steps is None or (isinstance(self.steps, int) and 1 <= self.steps <= 100000),
             f"steps must be 1..100000, got {self.steps}")
        for name in ("content_weight", "style_weight", "tv_weight", "learning_rate", "warp_weight", "warp_tv_weight"):
            v = getattr(self, name)
            need(v is None or (isinstance(v, (int, float)) and math.isfinite(v) and 0 <= v <= 1e12),
                 f"{name} must be a finite number >= 0, got {v!r}")
        need(self.optimizer is None or self.optimizer in OPTIMIZERS,
             f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        need(self.init in INITS, f"unknown init {self.init!r}; choose one of {', '.join(INITS)}")
        need(isinstance(self.strength, (int, float)) and 0.0 <= self.strength <= 1.0,
             f"strength must be between 0 and 1, got {self.strength!r}")
        need(isinstance(self.seed, int) and 0 <= self.seed < 2**63, f"seed must be a non-negative integer, got {self.seed!r}")
        need(self.schedule in SCHEDULES,
             f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        need(self.variant in VARIANTS, f"unknown DST variant {self.variant!r}; choose one of {', '.join(VARIANTS)}")
        need(self.keypoint_mode in KEYPOINT_MODES,
             f"unknown keypoint mode {self.keypoint_mode!r}; choose one of {', '.join(KEYPOINT_MODES)}")
        need(self.tile_size is None or (isinstance(self.tile_size, int) and 64 <= self.tile_size <= 16384),
             f"tile_size must be 64..16384 pixels, got {self.tile_size}")
        need(isinstance(self.preview_every, int) and self.preview_every >= 0, "preview_every must be >= 0")
        need(isinstance(self.preserve_color, bool), "preserve_color must be true or false")
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
            raise OptionsError(f"unknown option(s): {', '.join(unknown)}")
        kw = dict(d)
        if "keypoints" in kw:
            if not isinstance(kw["keypoints"], list):
                raise OptionsError("keypoints must be a list of pairs")
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
