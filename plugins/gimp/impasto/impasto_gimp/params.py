"""The procedure's arguments: one table that ``impasto.py`` registers with GIMP (so the dialog, the PDB and scripts
see the same names), and ``Params``, their values, turned into ``StylizeOptions``.  Plain Python."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional

from impasto_protocol.options import KeypointPair, OptionsError, StylizeOptions

STYLIZE_PROC = "python-fu-impasto-stylize"
KEYPOINTS_PROC = "python-fu-impasto-keypoint-paths"
PROPOSE_PROC = "python-fu-impasto-propose-keypoints"
MENU_PATH = "<Image>/Filters/Artistic/Impasto"

ENGINES = {"mt": "Fast (trained style, MT)", "gatys": "Gatys (any style image)", "strotss": "STROTSS",
           "dst": "DST (keypoints)"}
ENGINE_SHORT = {"mt": "MT", "dst": "DST", "gatys": "Gatys", "strotss": "STROTSS"}
STYLE_SOURCES = {"file": "Image file", "layer": "Layer of an open image"}
# what the dialog says -> StylizeOptions.keypoint_mode
KEYPOINT_MODES = {"auto": "Automatic", "paths": "From the keypoint paths", "both": "Automatic + paths"}
KEYPOINT_WIRE = {"auto": "auto", "paths": "markers", "both": "both"}


@dataclass(frozen=True)
class Arg:
    """One procedure argument.  ``kind``: choice | string | file | layer | double | int | boolean."""

    name: str
    kind: str
    nick: str
    blurb: str
    default: Any = None
    minimum: float = 0
    maximum: float = 0
    choices: Optional[dict] = None


STYLIZE_ARGS: tuple[Arg, ...] = (
    Arg("engine", "choice", "_Engine", "Which method paints the style", "gatys", choices=ENGINES),
    Arg("style-name", "string", "_MT style", "Name of a trained style (Fast engine; see `impasto styles`)", ""),
    Arg("style-source", "choice", "Style _from", "Where the style image comes from (other engines)", "file",
        choices=STYLE_SOURCES),
    Arg("style-file", "file", "Style _image file", "A painting to take the style from"),
    Arg("style-layer", "layer", "Style la_yer", "A layer of any open image to take the style from"),
    Arg("strength", "double", "S_trength", "1 = full style, 0 = the picture unchanged", 1.0, 0.0, 1.0),
    Arg("preserve-colors", "boolean", "Preserve colo_urs", "Keep the picture's colours, take only the style's "
        "texture", False),
    Arg("keypoints", "choice", "_Keypoints", "DST: automatic correspondences, the keypoint paths, or both",
        "auto", choices=KEYPOINT_MODES),
    Arg("output-size", "int", "Output si_ze", "Long side of the new layer in pixels (0 = the selection's or "
        "layer's full size)", 0, 0, 65536),
    Arg("working-size", "int", "_Working size", "Long side the engine works at (speed vs. detail)", 512, 16, 8192),
    Arg("steps", "int", "Ste_ps", "Optimization steps (0 = the engine's default)", 0, 0, 100000),
)

# The Stylize dialog: (container id, frame title or None for a plain box, argument names), top to bottom.
DIALOG_GROUPS: tuple[tuple[str, Optional[str], tuple[str, ...]], ...] = (
    ("style-box", None, ("engine", "style-name", "style-source", "style-file", "style-layer")),
    ("result-box", "Result", ("strength", "preserve-colors", "output-size")),
    ("engine-box", "Engine settings", ("keypoints", "working-size", "steps")),
)
# argument -> (the choice argument it depends on, values, sensitive when the choice is in them)
SENSITIVITY: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "style-name": ("engine", ("mt",), True),
    "style-source": ("engine", ("mt",), False),
    "style-file": ("style-source", ("file",), True),
    "style-layer": ("style-source", ("layer",), True),
    "keypoints": ("engine", ("dst",), True),
}

# Propose keypoints: the style layer the style path goes on, and the working size DST will run at
PROPOSE_ARGS: tuple[Arg, ...] = (
    Arg("style-layer", "layer", "Style la_yer", "The layer of an open image that holds the style"),
    Arg("working-size", "int", "_Working size", "Long side DST will work at (use the same when you stylize)",
        512, 16, 8192),
)

KEYPOINT_ARGS: tuple[Arg, ...] = (
    Arg("style-layer", "layer", "Style la_yer", "The layer the style keypoints go on (default: the picture)"),
    Arg("count", "int", "_Number of keypoints", "How many keypoints each path gets", 4, 1, 64),
)


class ParamError(ValueError):
    """An argument is missing or inconsistent; the message says what to change."""


@dataclass
class Params:
    engine: str = "gatys"
    style_name: str = ""
    style_source: str = "file"
    style_file: str = ""              # a local path ("" = none)
    style_layer: Any = None           # a Gimp.Drawable (or a fake in tests); None = none
    strength: float = 1.0
    preserve_colors: bool = False
    keypoints: str = "auto"
    output_size: int = 0
    working_size: int = 512
    steps: int = 0

    @classmethod
    def from_config(cls, get: Any) -> "Params":
        """Read every argument through ``get(name)`` (``config.get_property`` in GIMP)."""
        kw = {}
        for f in fields(cls):
            kw[f.name] = get(f.name.replace("_", "-"))
        kw["style_file"] = kw["style_file"] or ""
        kw["style_name"] = (kw["style_name"] or "").strip()
        return cls(**kw)

    def check(self) -> "Params":
        if self.engine not in ENGINES:
            raise ParamError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.style_source not in STYLE_SOURCES:
            raise ParamError(f"unknown style source {self.style_source!r}; choose one of {', '.join(STYLE_SOURCES)}")
        if self.keypoints not in KEYPOINT_MODES:
            raise ParamError(f"unknown keypoints mode {self.keypoints!r}; choose one of {', '.join(KEYPOINT_MODES)}")
        if self.engine == "mt" and not self.style_name:
            raise ParamError("the Fast (MT) engine needs a trained style: type its name in 'MT style' "
                             "(`impasto styles` lists them)")
        if self.needs_style_image:
            if self.style_source == "file" and not self.style_file:
                raise ParamError("choose a style image file (or set 'Style from' to a layer)")
            if self.style_source == "layer" and self.style_layer is None:
                raise ParamError("choose the style layer (or set 'Style from' to an image file)")
        return self

    @property
    def needs_style_image(self) -> bool:
        return self.engine != "mt"

    @property
    def uses_paths(self) -> bool:
        return self.engine == "dst" and self.keypoints in ("paths", "both")

    def style_label(self, layer_name: str = "") -> str:
        if self.engine == "mt":
            return self.style_name or "style"
        if self.style_source == "layer":
            return layer_name or "style layer"
        name = self.style_file.replace("\\", "/").rsplit("/", 1)[-1]
        return name.rsplit(".", 1)[0] if "." in name else (name or "style")

    def layer_name(self, style_layer_name: str = "") -> str:
        """Name of the result layer: style and engine, e.g. ``Starry night · Gatys``."""
        return f"{self.style_label(style_layer_name)} · {ENGINE_SHORT.get(self.engine, self.engine)}"

    def output_side(self, crop_long_side: int) -> int:
        if self.output_size > 0:
            return max(16, min(int(self.output_size), crop_long_side))
        return crop_long_side

    def to_options(self, crop_long_side: int, keypoints: Optional[list[KeypointPair]] = None) -> StylizeOptions:
        """The job for a content crop whose long side is ``crop_long_side`` pixels."""
        if crop_long_side < 16:
            raise ParamError(f"the selection or layer is too small to stylize (long side {crop_long_side} px; "
                             "it needs at least 16)")
        out_side = self.output_side(crop_long_side)
        kp_mode = "none"
        if self.engine == "dst":
            kp_mode = KEYPOINT_WIRE[self.keypoints]
            if kp_mode in ("markers", "both") and not keypoints:
                if kp_mode == "markers":
                    raise ParamError("keypoints 'from the keypoint paths' needs points: run Filters > Artistic > "
                                     "Impasto > Add keypoint paths, then move the anchors")
                kp_mode = "auto"
        opts = StylizeOptions(
            engine=self.engine,
            style_name=self.style_name if self.engine == "mt" else None,
            size=max(16, min(int(self.working_size), out_side)),
            max_side=out_side,
            steps=self.steps or None,
            preserve_color=bool(self.preserve_colors),
            strength=float(self.strength),
            keypoint_mode=kp_mode,
            keypoints=list(keypoints or []) if kp_mode in ("markers", "both") else [],
        )
        try:
            return opts.validate()
        except OptionsError as e:
            raise ParamError(str(e)) from None
