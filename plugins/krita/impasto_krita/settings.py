"""What the docker's controls describe, turned into ``StylizeOptions``.  Plain Python; persisted as JSON."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

from impasto_plugin.keypoints import KeypointsMissing, job_keypoints
from impasto_protocol.options import KeypointPair, OptionsError, StylizeOptions

ENGINE_TITLES = {"mt": "Fast (trained style)", "dst": "DST (keypoints)", "gatys": "Gatys", "strotss": "STROTSS"}
ENGINE_SHORT = {"mt": "MT", "dst": "DST", "gatys": "Gatys", "strotss": "STROTSS"}
OUTPUT_MODES = ("canvas", "max_side")
STYLE_SOURCES = ("file", "layer")
KEYPOINT_MODES = {"auto": "Automatic", "markers": "From markers", "both": "Automatic + markers"}
PREVIEW_SIDE = 256


@dataclass
class Settings:
    engine: str = "gatys"
    style_name: str = ""              # MT
    style_source: str = "file"        # other engines: "file" or "layer"
    style_file: str = ""
    style_layer: str = ""             # layer name in the active document
    strength: float = 1.0
    preserve_color: bool = False
    output_mode: str = "canvas"       # canvas: result at the selection/layer's full size; max_side: at most max_side
    max_side: int = 1024
    size: int = 512                   # working long side (quality vs. speed)
    steps: int = 0                    # 0 = engine default
    learning_rate: float = 0.0        # 0 = engine default (the daemon's ``sleep`` test engine: seconds per step)
    keypoint_mode: str = "auto"       # DST only
    seed: int = 0                     # random seed (noise, sampling): a recipe's, for Re-run
    server: str = ""                  # "" = the local daemon, else a paired remote server (impasto_plugin.servers)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | None) -> "Settings":
        """Settings saved by an older or newer plugin: unknown keys are dropped, bad values fall back."""
        try:
            raw = json.loads(text or "{}")
        except ValueError:
            raw = {}
        s = cls()
        if isinstance(raw, dict):
            for f in fields(cls):
                if f.name in raw and isinstance(raw[f.name], type(getattr(s, f.name))):
                    setattr(s, f.name, raw[f.name])
        return s

    @property
    def needs_style_image(self) -> bool:
        return self.engine in ("dst", "gatys", "strotss")

    def style_label(self) -> str:
        if self.engine == "mt":
            return self.style_name or "style"
        if self.style_source == "layer":
            return self.style_layer or "style layer"
        name = self.style_file.replace("\\", "/").rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if "." in name else (name or "style")

    def layer_name(self, style_title: str | None = None) -> str:
        """Name of the result layer: style and engine, e.g. ``Starry night · Gatys`` (MT: the style's title)."""
        label = style_title if (style_title and self.engine == "mt") else self.style_label()
        return f"{label} · {ENGINE_SHORT.get(self.engine, self.engine)}"

    def output_side(self, crop_long_side: int) -> int:
        if self.output_mode == "max_side":
            return max(16, min(int(self.max_side), crop_long_side))
        return crop_long_side

    def to_options(self, crop_long_side: int, keypoints: list[KeypointPair] | None = None,
                   preview: bool = False) -> StylizeOptions:
        """The job for a content crop whose long side is ``crop_long_side`` pixels."""
        out_side = PREVIEW_SIDE if preview else self.output_side(crop_long_side)
        out_side = max(16, min(out_side, crop_long_side)) if crop_long_side >= 16 else 16
        size = max(16, min(int(self.size), out_side))
        try:
            kp_mode, pairs = job_keypoints(self.engine, self.keypoint_mode, keypoints)
        except KeypointsMissing:
            raise OptionsError("keypoints 'from markers' needs marker pairs: use Add keypoint markers, "
                               "then move the rings (same number = same feature)") from None
        opts = StylizeOptions(
            engine=self.engine,
            style_name=(self.style_name or None) if self.engine == "mt" else None,
            size=size,
            max_side=out_side,
            steps=self.steps or None,
            learning_rate=self.learning_rate or None,
            preserve_color=bool(self.preserve_color),
            strength=float(self.strength),
            seed=int(self.seed),
            keypoint_mode=kp_mode,
            keypoints=pairs,
        )
        # the daemon's test engines (identity, sleep) are checked by the daemon itself
        return opts.validate() if self.engine in ENGINE_SHORT else opts


def apply_recipe(s: Settings, recipe: Any) -> list[str]:
    """Put a result's recipe (``impasto_protocol.recipe.Recipe``) back into the docker's settings, so Stylize makes
    that result again.  Returns notes on what the artist still has to see to (the painting, options the docker
    does not show)."""
    o = recipe.options
    notes: list[str] = []
    s.engine = str(o.get("engine", s.engine))
    if s.engine == "mt":
        s.style_name = str(o.get("style_name") or s.style_name)
    elif recipe.style is not None:
        notes.append(f"use the same painting ({recipe.style.name or 'pixels ' + recipe.style.sha256[:12]})")
    s.strength = float(o.get("strength", 1.0))
    s.preserve_color = bool(o.get("preserve_color", False))
    s.size = int(o.get("size", s.size))
    s.steps = int(o.get("steps") or 0)
    s.learning_rate = float(o.get("learning_rate") or 0.0)
    s.seed = int(o.get("seed", 0))
    if o.get("max_side"):
        s.output_mode, s.max_side = "max_side", int(o["max_side"])
    if s.engine == "dst":
        mode = str(o.get("keypoint_mode", "auto"))
        s.keypoint_mode = mode if mode in KEYPOINT_MODES else "auto"
        if s.keypoint_mode in ("markers", "both"):
            notes.append("the keypoints come from the markers as they are now")
    shown = {"engine", "style_name", "strength", "preserve_color", "size", "steps", "learning_rate", "seed",
             "max_side", "keypoint_mode", "keypoints", "preview_every"}
    defaults = StylizeOptions().to_dict()
    hidden = sorted(k for k, v in o.items() if k not in shown and k in defaults and v != defaults[k])
    if hidden:
        notes.append("not settable in the docker, left at their defaults: " + ", ".join(hidden))
    return notes
