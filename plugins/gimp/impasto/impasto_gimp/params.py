"""The procedure's arguments: one table that ``impasto.py`` registers with GIMP (so the dialog, the PDB and scripts
see the same names), and ``Params``, their values, turned into ``StylizeOptions``.  Plain Python.

The dialog reads in words: the MT style is a choice list of the installed styles (``stylize_args(styles)``, filled
when the procedure is created, from the daemon or the last list it gave), and "Output size" / "Steps" are
choices ("Canvas size" / "Engine default", or "Custom") with the number beside them used only for "Custom"."""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Optional

from impasto_plugin.keypoints import KeypointsMissing, job_keypoints
from impasto_protocol.options import KeypointPair, OptionsError, StylizeOptions

STYLIZE_PROC = "python-fu-impasto-stylize"
KEYPOINTS_PROC = "python-fu-impasto-keypoint-paths"
PROPOSE_PROC = "python-fu-impasto-propose-keypoints"
RERUN_PROC = "python-fu-impasto-rerun"
RECIPE_PARASITE = "impasto-recipe"      # a result layer's recipe (JSON), saved with the .xcf
MENU_PATH = "<Image>/Filters/Artistic/Impasto"

ENGINES = {"mt": "Fast (trained style, MT)", "gatys": "Gatys (any style image)", "strotss": "STROTSS",
           "dst": "DST (keypoints)"}
ENGINE_SHORT = {"mt": "MT", "dst": "DST", "gatys": "Gatys", "strotss": "STROTSS"}
STYLE_SOURCES = {"file": "Image file", "layer": "Layer of an open image"}
# what the dialog says -> StylizeOptions.keypoint_mode
KEYPOINT_MODES = {"auto": "Automatic", "paths": "From the keypoint paths", "both": "Automatic + paths"}
KEYPOINT_WIRE = {"auto": "auto", "paths": "markers", "both": "both"}
SIZE_MODES = {"canvas": "Canvas size (the selection or layer)", "custom": "Custom (the size below)"}
STEPS_MODES = {"default": "Engine default", "custom": "Custom (the steps below)"}
NO_STYLES = "none"             # the first style choice: none chosen.  GIMP turns a value that is not a choice into the
                               # first choice, so a script's unknown style name is refused, never silently replaced


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


# Where the job runs.  A string, not a choice: GIMP fixes a choice list when it registers the plug-in (a server paired
# later would be missing) and turns a script's value that is not a choice into one that is (a job meant for a remote
# server would silently run here); a string reaches the plug-in as given, and an unknown name is refused by name.
SERVER_ARG = Arg("server", "string", "Ser_ver", "Where the job runs: 'local' for the Impasto daemon on this computer "
                 "(started on demand), or the name of a remote server paired with `impasto remote add` "
                 "(`impasto remote list` shows them)", "local")

STYLIZE_ARGS: tuple[Arg, ...] = (
    Arg("engine", "choice", "_Engine", "Which method paints the style", "gatys", choices=ENGINES),
    Arg("style-name", "choice", "_MT style", "A trained style (Fast engine; `impasto styles` lists them)", NO_STYLES,
        choices={NO_STYLES: "(none found: start the daemon, or train one)"}),
    Arg("style-source", "choice", "Style _from", "Where the style image comes from (other engines)", "file",
        choices=STYLE_SOURCES),
    Arg("style-file", "file", "Style _image file", "A painting to take the style from"),
    Arg("style-layer", "layer", "Style la_yer", "A layer of any open image to take the style from"),
    Arg("strength", "double", "S_trength", "1 = full style, 0 = the picture unchanged", 1.0, 0.0, 1.0),
    Arg("preserve-colors", "boolean", "Preserve colo_urs", "Keep the picture's colours, take only the style's "
        "texture", False),
    Arg("keypoints", "choice", "_Keypoints", "DST: automatic correspondences, the keypoint paths, or both",
        "auto", choices=KEYPOINT_MODES),
    Arg("size-mode", "choice", "Output si_ze", "The new layer's size: the canvas's (the selection or layer), or "
        "the custom size below", "canvas", choices=SIZE_MODES),
    Arg("output-size", "int", "Size i_n pixels", "Long side of the new layer in pixels (with Output size: Custom)",
        1024, 16, 65536),
    Arg("working-size", "int", "_Working size", "Long side the engine works at (speed vs. detail)", 512, 16, 8192),
    Arg("steps-mode", "choice", "Ste_ps", "Optimization steps: the engine's default, or the custom number below",
        "default", choices=STEPS_MODES),
    Arg("steps", "int", "Num_ber of steps", "Optimization steps (with Steps: Custom)", 200, 1, 100000),
    Arg("seed", "int", "See_d", "Random seed: the same seed and settings give the same result", 0, 0, 2**31 - 1),
    SERVER_ARG,                       # last, so the positions of the arguments before it stay what they were
)


def stylize_args(styles: dict[str, str] | None = None) -> tuple[Arg, ...]:
    """``STYLIZE_ARGS`` with the MT style choice filled from ``styles`` (name -> title; None/empty: none known)."""
    if not styles:
        return STYLIZE_ARGS
    out = []
    for a in STYLIZE_ARGS:
        if a.name == "style-name":
            choices = {NO_STYLES: "(choose a trained style)"}
            choices.update({n: (f"{t} ({n})" if t and t != n else n) for n, t in sorted(styles.items())})
            a = Arg(a.name, a.kind, a.nick, a.blurb, NO_STYLES, choices=choices)
        out.append(a)
    return tuple(out)

# The Stylize dialog: (container id, frame title or None for a plain box, argument names), top to bottom.
DIALOG_GROUPS: tuple[tuple[str, Optional[str], tuple[str, ...]], ...] = (
    ("server-box", None, ("server",)),
    ("style-box", None, ("engine", "style-name", "style-source", "style-file", "style-layer")),
    ("result-box", "Result", ("strength", "preserve-colors", "size-mode", "output-size")),
    ("engine-box", "Engine settings", ("keypoints", "working-size", "steps-mode", "steps", "seed")),
)
# argument -> (the choice argument it depends on, values, sensitive when the choice is in them)
SENSITIVITY: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "style-name": ("engine", ("mt",), True),
    "style-source": ("engine", ("mt",), False),
    "style-file": ("style-source", ("file",), True),
    "style-layer": ("style-source", ("layer",), True),
    "keypoints": ("engine", ("dst",), True),
    "output-size": ("size-mode", ("custom",), True),
    "steps": ("steps-mode", ("custom",), True),
}

# Propose keypoints: the style layer the style path goes on, and the working size DST will run at
PROPOSE_ARGS: tuple[Arg, ...] = (
    Arg("style-layer", "layer", "Style la_yer", "The layer of an open image that holds the style"),
    Arg("working-size", "int", "_Working size", "Long side DST will work at (use the same when you stylize)",
        512, 16, 8192),
    SERVER_ARG,
)

# Re-run: the recipe gives everything but a painting, which the artist points to again (MT needs none)
RERUN_ARGS: tuple[Arg, ...] = tuple(a for a in STYLIZE_ARGS
                                    if a.name in ("server", "style-source", "style-file", "style-layer"))

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
    size_mode: str = "canvas"
    output_size: int = 0              # used when size_mode == "custom"
    working_size: int = 512
    steps_mode: str = "default"
    steps: int = 0                    # used when steps_mode == "custom"
    seed: int = 0
    server: str = "local"             # "local" (or "") = this computer's daemon; else a paired remote server's name

    @classmethod
    def from_config(cls, get: Any) -> "Params":
        """Read every argument through ``get(name)`` (``config.get_property`` in GIMP)."""
        kw = {}
        for f in fields(cls):
            kw[f.name] = get(f.name.replace("_", "-"))
        kw["style_file"] = kw["style_file"] or ""
        kw["server"] = (kw["server"] or "").strip() or "local"
        kw["style_name"] = (kw["style_name"] or "").strip()
        if kw["style_name"] == NO_STYLES:
            kw["style_name"] = ""
        return cls(**kw)

    def check(self) -> "Params":
        if self.engine not in ENGINES:
            raise ParamError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.style_source not in STYLE_SOURCES:
            raise ParamError(f"unknown style source {self.style_source!r}; choose one of {', '.join(STYLE_SOURCES)}")
        if self.keypoints not in KEYPOINT_MODES:
            raise ParamError(f"unknown keypoints mode {self.keypoints!r}; choose one of {', '.join(KEYPOINT_MODES)}")
        if self.size_mode not in SIZE_MODES:
            raise ParamError(f"unknown output size {self.size_mode!r}; choose one of {', '.join(SIZE_MODES)}")
        if self.steps_mode not in STEPS_MODES:
            raise ParamError(f"unknown steps {self.steps_mode!r}; choose one of {', '.join(STEPS_MODES)}")
        if self.engine == "mt" and not self.style_name:
            raise ParamError("the Fast (MT) engine needs a trained style: choose one in 'MT style' (a name that is "
                             "not an installed style reads as none; if the list is empty, start the daemon or train "
                             "one; `impasto styles` lists them)")
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
        if self.size_mode == "custom" and self.output_size > 0:
            return max(16, min(int(self.output_size), crop_long_side))
        return crop_long_side

    def to_options(self, crop_long_side: int, keypoints: Optional[list[KeypointPair]] = None) -> StylizeOptions:
        """The job for a content crop whose long side is ``crop_long_side`` pixels."""
        if crop_long_side < 16:
            raise ParamError(f"the selection or layer is too small to stylize (long side {crop_long_side} px; "
                             "it needs at least 16)")
        out_side = self.output_side(crop_long_side)
        try:
            wire_mode = KEYPOINT_WIRE[self.keypoints] if self.engine == "dst" else "none"
            kp_mode, pairs = job_keypoints(self.engine, wire_mode, keypoints)
        except KeypointsMissing:
            raise ParamError("keypoints 'from the keypoint paths' needs points: run Filters > Artistic > "
                             "Impasto > Add keypoint paths, then move the anchors") from None
        opts = StylizeOptions(
            engine=self.engine,
            style_name=self.style_name if self.engine == "mt" else None,
            size=max(16, min(int(self.working_size), out_side)),
            max_side=out_side,
            steps=(self.steps or None) if self.steps_mode == "custom" else None,
            preserve_color=bool(self.preserve_colors),
            strength=float(self.strength),
            seed=int(self.seed),
            keypoint_mode=kp_mode,
            keypoints=pairs,
        )
        try:
            return opts.validate()
        except OptionsError as e:
            raise ParamError(str(e)) from None


def params_from_recipe(recipe: Any, style: Params) -> tuple[Params, list[str]]:
    """The Stylize arguments that make a result again from its recipe (``impasto_protocol.recipe.Recipe``); the
    painting comes from ``style`` (its style source, file and layer), and so does the server it runs on.  Returns
    (params, notes for the artist)."""
    o = recipe.options
    engine = str(o.get("engine", "gatys"))
    kp = {v: k for k, v in KEYPOINT_WIRE.items()}.get(str(o.get("keypoint_mode", "auto")), "auto")
    p = Params(engine=engine, style_name=str(o.get("style_name") or "") if engine == "mt" else "",
               style_source=style.style_source, style_file=style.style_file, style_layer=style.style_layer,
               strength=float(o.get("strength", 1.0)), preserve_colors=bool(o.get("preserve_color", False)),
               keypoints=kp, size_mode="custom" if o.get("max_side") else "canvas",
               output_size=int(o.get("max_side") or 0), working_size=int(o.get("size", 512)),
               steps_mode="custom" if o.get("steps") else "default", steps=int(o.get("steps") or 0),
               seed=int(o.get("seed", 0)), server=style.server)
    notes = []
    if engine != "mt" and recipe.style is not None:
        notes.append(f"the painting must be the same ({recipe.style.name or 'pixels ' + recipe.style.sha256[:12]})")
    shown = {"engine", "style_name", "strength", "preserve_color", "keypoint_mode", "keypoints", "max_side", "size",
             "steps", "seed", "preview_every"}
    defaults = StylizeOptions().to_dict()
    hidden = sorted(k for k, v in o.items() if k not in shown and k in defaults and v != defaults[k])
    if hidden:
        notes.append("not settable here, left at their defaults: " + ", ".join(hidden))
    return p, notes
