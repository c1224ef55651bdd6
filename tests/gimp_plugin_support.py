"""Shared setup for tests/test_gimp_*.py: the GIMP plug-in's modules from plugins/gimp/impasto, and a fake of its
``gimp_api`` (images, layers, selection, paths, undo groups) plus a fake daemon job, so the logic runs without GIMP."""
from __future__ import annotations

import importlib.util
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIR = ROOT / "plugins" / "gimp" / "impasto"
CORE_DIR = ROOT / "plugins" / "core"           # impasto_plugin: install-plugin vendors it, tests take it from here
if str(CORE_DIR) not in sys.path:
    sys.path.insert(0, str(CORE_DIR))



def _load_plugin_package() -> None:
    """Import ``impasto_gimp`` from the plug-in folder without putting that folder on sys.path: it also holds the
    plug-in's executable ``impasto.py``, which would shadow the backend package ``impasto``."""
    if "impasto_gimp" in sys.modules:
        return
    pkg = PLUGIN_DIR / "impasto_gimp"
    spec = importlib.util.spec_from_file_location("impasto_gimp", pkg / "__init__.py",
                                                  submodule_search_locations=[str(pkg)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["impasto_gimp"] = module
    spec.loader.exec_module(module)


_load_plugin_package()

from impasto_gimp.pixels import Rect  # noqa: E402
from impasto_protocol.images import ImageBuffer  # noqa: E402
from impasto_protocol.messages import (Accepted, CancelledEvent, ErrorEvent, ProgressEvent,  # noqa: E402
                                       ResultEvent)


@dataclass(eq=False)
class FakeLayer:
    name: str
    rect: Rect
    pixels: bytearray = None            # RGBA u8, rect-sized
    kind: str = "layer"
    image: Any = None
    parasites: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.pixels is None:
            self.pixels = bytearray(self.rect.width * self.rect.height * 4)


@dataclass(eq=False)
class FakePath:
    name: str
    strokes: list


@dataclass(eq=False)
class FakeImage:
    width: int
    height: int
    precision: str = "GIMP_PRECISION_U8_NON_LINEAR"
    layers: list = field(default_factory=list)        # top first
    selection: Optional[tuple[Rect, bytes]] = None    # (bounds in image pixels, mask over the bounds)
    paths: list = field(default_factory=list)
    undo_log: list = field(default_factory=list)

    def add(self, layer: FakeLayer) -> FakeLayer:
        layer.image = self
        self.layers.append(layer)
        return layer


def solid(rect: Rect, rgba: tuple[int, int, int, int]) -> bytearray:
    return bytearray(bytes(rgba) * (rect.width * rect.height))


class FakeApi:
    """The functions ``actions`` calls on ``gimp_api``, over FakeImage/FakeLayer (RGBA u8 only)."""

    def __init__(self):
        self.progress: list = []
        self.files: dict[str, tuple[int, int, bytes]] = {}
        self.fail_write = False

    def precision_name(self, image): return image.precision
    def item_name(self, item): return item.name
    def item_image(self, item): return item.image
    def drawable_kind(self, d): return d.kind
    def drawable_rect(self, d): return d.rect
    def image_rect(self, image): return Rect(0, 0, image.width, image.height)

    def selection(self, image, d):
        if image.selection is None:
            return d.rect, None
        bounds, mask = image.selection
        crop = bounds.intersect(d.rect)
        if crop.empty:
            return Rect(0, 0, 0, 0), None
        rows = []
        for y in range(crop.y, crop.y + crop.height):
            start = (y - bounds.y) * bounds.width + (crop.x - bounds.x)
            rows.append(mask[start:start + crop.width])
        return crop, b"".join(rows)

    def read_rgba(self, d, rect, fmt):
        assert fmt == "R'G'B'A u8"
        out = bytearray()
        for y in range(rect.y, rect.y + rect.height):
            start = ((y - d.rect.y) * d.rect.width + (rect.x - d.rect.x)) * 4
            out += d.pixels[start:start + rect.width * 4]
        return bytes(out)

    def write_rgba(self, layer, rect, data, fmt):
        if self.fail_write:
            raise RuntimeError("disk full")
        assert len(data) == rect.width * rect.height * 4
        for y in range(rect.height):
            start = ((rect.y + y - layer.rect.y) * layer.rect.width + (rect.x - layer.rect.x)) * 4
            layer.pixels[start:start + rect.width * 4] = data[y * rect.width * 4:(y + 1) * rect.width * 4]

    def read_image_file(self, path, fmt):
        return self.files[path]

    def new_layer_above(self, image, below, name, rect):
        layer = FakeLayer(name, rect, image=image)
        image.layers.insert(image.layers.index(below), layer)
        image.undo_log.append(("insert", name))
        return layer

    def scale_layer(self, layer, rect):          # nearest neighbour, enough to follow the data
        w0, h0 = layer.rect.width, layer.rect.height
        out = bytearray()
        for y in range(rect.height):
            for x in range(rect.width):
                sx, sy = x * w0 // rect.width, y * h0 // rect.height
                out += layer.pixels[(sy * w0 + sx) * 4:(sy * w0 + sx) * 4 + 4]
        layer.rect, layer.pixels = rect, out

    def remove_layer(self, image, layer):
        image.layers.remove(layer)
        image.undo_log.append(("remove", layer.name))

    def new_group_above(self, image, below, name):
        group = FakeLayer(name, Rect(0, 0, 0, 0), kind="group", image=image)
        group.visible, group.children = False, []
        image.layers.insert(image.layers.index(below), group)
        image.undo_log.append(("insert", name))
        return group

    def new_layer_in(self, image, group, name, rect):
        layer = FakeLayer(name, rect, image=image)
        group.children.append(layer)
        return layer

    def layer_below(self, image, layer):
        i = image.layers.index(layer)
        return image.layers[i + 1] if i + 1 < len(image.layers) else None

    def store_recipe(self, layer, text):
        layer.parasites["impasto-recipe"] = text.encode("utf-8")
        layer.image.undo_log.append(("parasite", layer.name))

    def read_recipe(self, layer):
        raw = layer.parasites.get("impasto-recipe")
        return raw.decode("utf-8") if raw is not None else None

    @contextmanager
    def undo_group(self, image):
        image.undo_log.append("start")
        try:
            yield
        finally:
            image.undo_log.append("end")

    def find_path(self, image, name):
        return next((p for p in image.paths if p.name == name), None)

    def path_strokes(self, path):
        return path.strokes

    def replace_path(self, image, name, points):
        from impasto_gimp import paths
        image.paths = [p for p in image.paths if p.name != name]
        p = FakePath(name, [paths.stroke_points(points)])
        image.paths.insert(0, p)
        return p

    def progress_start(self, text): self.progress.append(("start", text))
    def progress_update(self, fraction, stage): self.progress.append((round(fraction, 3), stage))
    def progress_end(self): self.progress.append(("end",))


class FakeJob:
    def __init__(self, events):
        self._events = list(events)

    def events(self, timeout=None):
        yield from self._events


class FakeClient:
    """Records the job it was sent; answers with the events ``respond(content, options, style)`` returns."""

    def __init__(self, respond):
        self.respond = respond
        self.sent: list = []
        self.closed = False

    def stylize(self, content, options, style=None, mask=None, keypoints_only=False, overlay=False):
        self.sent.append((content, options, style))
        self.keypoints_only, self.overlay = keypoints_only, overlay
        return FakeJob(self.respond(content, options, style))

    def close(self):
        self.closed = True


def invert(content: ImageBuffer, options, style) -> list:
    """A daemon that returns the content inverted (alpha kept) at the requested size (top-left sampling)."""
    src = bytes(content.data)
    w0, h0 = content.width, content.height
    side = options.max_side or options.size
    scale = side / max(w0, h0)
    w, h = max(1, round(w0 * scale)), max(1, round(h0 * scale))
    out = bytearray()
    for y in range(h):
        for x in range(w):
            i = ((y * h0 // h) * w0 + (x * w0 // w)) * 4
            out += bytes([255 - src[i], 255 - src[i + 1], 255 - src[i + 2], src[i + 3]])
    return [Accepted("j", 0), ProgressEvent(0.5, "step 1/2"), ResultEvent(ImageBuffer(w, h, 4, "u8", bytes(out)), {})]


__all__ = ["Accepted", "CancelledEvent", "ErrorEvent", "FakeApi", "FakeClient", "FakeImage", "FakeJob", "FakeLayer",
           "FakePath", "ImageBuffer", "PLUGIN_DIR", "ProgressEvent", "Rect", "ResultEvent", "invert", "solid"]
