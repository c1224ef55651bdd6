"""What the docker's controls describe, turned into ``StylizeOptions``.  Plain Python; persisted as JSON."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any

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
        kp_mode = "none"
        if self.engine == "dst":
            kp_mode = self.keypoint_mode
            if kp_mode in ("markers", "both") and not keypoints:
                if kp_mode == "markers":
                    raise OptionsError("keypoints 'from markers' needs marker pairs: use Add keypoint markers, "
                                       "then move the rings (same number = same feature)")
                kp_mode = "auto"
        opts = StylizeOptions(
            engine=self.engine,
            style_name=(self.style_name or None) if self.engine == "mt" else None,
            size=size,
            max_side=out_side,
            steps=self.steps or None,
            learning_rate=self.learning_rate or None,
            preserve_color=bool(self.preserve_color),
            strength=float(self.strength),
            keypoint_mode=kp_mode,
            keypoints=list(keypoints or []) if kp_mode in ("markers", "both") else [],
        )
        # the daemon's test engines (identity, sleep) are checked by the daemon itself
        return opts.validate() if self.engine in ENGINE_SHORT else opts
