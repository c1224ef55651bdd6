"""A result's recipe: everything needed to make the same result again, in one small JSON object.

Stdlib only (the plugins read recipes back inside Krita/GIMP for *Re-run*).  A recipe holds the job's options
(engine, seed and every setting, as ``StylizeOptions.to_dict``), what the style was (an MT model's name and the
SHA-256 of its file, or the SHA-256 of the painting's pixels), the Impasto and torch versions, and the device and
precision it ran on.  The same recipe, content and style on the same device gives the same pixels (tested).

It travels as the PNG text chunk ``impasto:recipe`` in CLI outputs, as the optional ``recipe`` field of a job's
``done`` reply (PROTOCOL.md), and in the editors as a Krita document annotation / GIMP parasite.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .options import OptionsError, StylizeOptions

RECIPE_KEY = "impasto:recipe"       # PNG text chunk, Krita annotation prefix, GIMP parasite name
RECIPE_VERSION = 1


@dataclass
class StyleSource:
    """What the style was: ``kind`` "model" (an MT style: ``name`` and the model file's SHA-256) or "painting"
    (the SHA-256 of its pixels, see ``impasto.recipe.pixels_sha256``; ``name`` is the file name when known)."""

    kind: str
    sha256: str
    name: str | None = None


@dataclass
class Recipe:
    """How a result was made (see the module docstring)."""

    options: dict[str, Any]
    style: StyleSource | None
    impasto: str
    torch: str
    device: str
    precision: str
    content_sha256: str | None = None
    version: int = RECIPE_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def engine(self) -> str:
        return str(self.options.get("engine", ""))

    @property
    def seed(self) -> int:
        return int(self.options.get("seed", 0))

    def stylize_options(self) -> StylizeOptions:
        """The job's options, validated (raises ``OptionsError`` for a recipe from an incompatible version)."""
        return StylizeOptions.from_dict(self.options)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extra"]:
            del d["extra"]
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: Any) -> "Recipe":
        if not isinstance(d, dict) or not isinstance(d.get("options"), dict):
            raise OptionsError("a recipe must be a JSON object with an 'options' object")
        if d.get("version") != RECIPE_VERSION:
            raise OptionsError(f"recipe version {d.get('version')!r} is not {RECIPE_VERSION}; "
                               "it was made by another Impasto")
        style = d.get("style")
        if style is not None:
            if not isinstance(style, dict) or style.get("kind") not in ("model", "painting") \
                    or not isinstance(style.get("sha256"), str):
                raise OptionsError("recipe 'style' must be {kind: model|painting, sha256, name}")
            style = StyleSource(kind=style["kind"], sha256=style["sha256"], name=style.get("name"))
        try:
            return cls(options=d["options"], style=style, impasto=str(d.get("impasto", "")),
                       torch=str(d.get("torch", "")), device=str(d.get("device", "")),
                       precision=str(d.get("precision", "")), content_sha256=d.get("content_sha256"),
                       extra=dict(d.get("extra") or {}))
        except (TypeError, ValueError) as e:
            raise OptionsError(f"not a recipe: {e}") from None

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise OptionsError(f"recipe is not JSON: {e}") from None

    def summary(self) -> str:
        """One line for a layer name or a status line: engine, style, seed."""
        style = (self.style.name or self.style.sha256[:8]) if self.style else "-"
        return f"{self.engine} {style} seed {self.seed}"
