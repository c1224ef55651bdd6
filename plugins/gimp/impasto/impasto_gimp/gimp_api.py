"""Every call into GIMP 3.0 the plug-in makes, in one small module (``actions`` gets it as ``api``; the logic tests
pass a fake with the same functions).  Coordinates given and returned here are image pixels (``Rect``); the
drawable-local coordinates that Gegl buffers use stay inside this module."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

from . import paths  # noqa: E402
from .pixels import Rect  # noqa: E402


# --------------------------------------------------------------------------------------------- items
def precision_name(image: Any) -> str:
    return image.get_precision().value_name


def item_name(item: Any) -> str:
    return item.get_name()


def item_image(item: Any) -> Any:
    return item.get_image()


def drawable_kind(d: Any) -> str:
    """"layer", "group" (a layer group) or "other" (channel, layer mask, selection)."""
    if d.is_group_layer():
        return "group"
    return "layer" if d.is_layer() else "other"


def _offsets(d: Any) -> tuple[int, int]:
    res = d.get_offsets()
    return (res[-2], res[-1])


def drawable_rect(d: Any) -> Rect:
    x, y = _offsets(d)
    return Rect(x, y, d.get_width(), d.get_height())


def image_rect(image: Any) -> Rect:
    return Rect(0, 0, image.get_width(), image.get_height())


def selection(image: Any, d: Any) -> tuple[Rect, Optional[bytes]]:
    """(crop, mask): the selection's bounds within the drawable, in image pixels, and the selection's 8-bit mask over
    that crop; without a selection, the whole drawable and None."""
    if Gimp.Selection.is_empty(image):
        return drawable_rect(d), None
    non_empty, x, y, w, h = d.mask_intersect()
    if not non_empty:
        return Rect(0, 0, 0, 0), None
    ox, oy = _offsets(d)
    crop = Rect(ox + x, oy + y, w, h)
    buf = image.get_selection().get_buffer()
    mask = buf.get(Gegl.Rectangle.new(crop.x, crop.y, w, h), 1.0, "Y u8", Gegl.AbyssPolicy.NONE)
    return crop, bytes(mask)


# --------------------------------------------------------------------------------------------- pixels
def read_rgba(d: Any, rect: Rect, fmt: str) -> bytes:
    ox, oy = _offsets(d)
    buf = d.get_buffer()
    return bytes(buf.get(Gegl.Rectangle.new(rect.x - ox, rect.y - oy, rect.width, rect.height), 1.0, fmt,
                         Gegl.AbyssPolicy.NONE))


def write_rgba(layer: Any, rect: Rect, data: bytes, fmt: str) -> None:
    ox, oy = _offsets(layer)
    x, y = rect.x - ox, rect.y - oy
    buf = layer.get_buffer()
    buf.set(Gegl.Rectangle.new(x, y, rect.width, rect.height), fmt, data)
    buf.flush()
    layer.update(x, y, rect.width, rect.height)


def read_image_file(path: str, fmt: str) -> tuple[int, int, bytes]:
    """Any image GIMP can open, its visible layers merged: (width, height, pixels in ``fmt``)."""
    img = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))
    try:
        layer = img.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE)
        w, h = img.get_width(), img.get_height()
        return w, h, read_rgba(layer, Rect(0, 0, w, h), fmt)
    finally:
        img.delete()


# --------------------------------------------------------------------------------------------- layers
def new_layer_above(image: Any, below: Any, name: str, rect: Rect) -> Any:
    """A transparent layer of ``rect``'s size at ``rect``'s position, just above ``below`` in the same group."""
    gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
    layer = Gimp.Layer.new(image, name, rect.width, rect.height,
                           Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE,
                           100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, below.get_parent(), image.get_item_position(below))
    layer.set_offsets(rect.x, rect.y)
    return layer


def new_group_above(image: Any, below: Any, name: str) -> Any:
    """A hidden layer group just above ``below`` (the warp overlay's)."""
    group = Gimp.GroupLayer.new(image, name)
    image.insert_layer(group, below.get_parent(), image.get_item_position(below))
    group.set_visible(False)
    return group


def new_layer_in(image: Any, group: Any, name: str, rect: Rect) -> Any:
    """A transparent layer of ``rect`` at the bottom of ``group``."""
    gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
    layer = Gimp.Layer.new(image, name, rect.width, rect.height,
                           Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE,
                           100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, group, len(group.get_children()))
    layer.set_offsets(rect.x, rect.y)
    return layer


def scale_layer(layer: Any, rect: Rect) -> None:
    Gimp.context_push()
    try:
        Gimp.context_set_interpolation(Gimp.InterpolationType.CUBIC)
        layer.scale(rect.width, rect.height, False)
        layer.set_offsets(rect.x, rect.y)
    finally:
        Gimp.context_pop()


def remove_layer(image: Any, layer: Any) -> None:
    image.remove_layer(layer)


def layer_below(image: Any, layer: Any) -> Any:
    """The layer just under ``layer`` in its group (None when it is the bottom one)."""
    parent = layer.get_parent()
    siblings = list(parent.get_children()) if parent is not None else list(image.get_layers())    # top first
    i = next((k for k, s in enumerate(siblings) if s.get_id() == layer.get_id()), -1)
    return siblings[i + 1] if 0 <= i < len(siblings) - 1 else None


# --------------------------------------------------------------------------------------------- recipes
def store_recipe(layer: Any, text: str) -> None:
    """Attach a result's recipe (JSON) to its layer as a persistent parasite (saved with the .xcf)."""
    from .params import RECIPE_PARASITE
    data = list(text.encode("utf-8"))
    layer.attach_parasite(Gimp.Parasite.new(RECIPE_PARASITE, Gimp.PARASITE_PERSISTENT, data))


def read_recipe(layer: Any) -> Optional[str]:
    from .params import RECIPE_PARASITE
    parasite = layer.get_parasite(RECIPE_PARASITE)
    if parasite is None:
        return None
    return bytes(parasite.get_data()).decode("utf-8")


@contextmanager
def undo_group(image: Any) -> Iterator[None]:
    image.undo_group_start()
    try:
        yield
    finally:
        image.undo_group_end()


# --------------------------------------------------------------------------------------------- paths
def find_path(image: Any, name: str) -> Any:
    for p in image.get_paths():
        if p.get_name() == name:
            return p
    return None


def path_strokes(path: Any) -> list[list[float]]:
    """Each stroke's flat control-point list (C A C triples for Bezier strokes)."""
    out = []
    for sid in path.get_strokes():
        _type, points, _closed = path.stroke_get_points(sid)
        out.append(list(points))
    return out


def replace_path(image: Any, name: str, points: list[tuple[float, float]]) -> Any:
    """A visible path ``name`` (replacing one of that name) whose one open stroke runs through ``points`` in order."""
    old = find_path(image, name)
    if old is not None:
        image.remove_path(old)
    p = Gimp.Path.new(image, name)
    image.insert_path(p, None, 0)
    p.stroke_new_from_points(Gimp.PathStrokeType.BEZIER, paths.stroke_points(points), False)
    p.set_visible(True)
    return p


# --------------------------------------------------------------------------------------------- progress
def progress_start(text: str) -> None:
    Gimp.progress_init(text)


def progress_update(fraction: float, stage: str) -> None:
    Gimp.progress_update(fraction)
    if stage:
        Gimp.progress_set_text(stage)


def progress_end() -> None:
    Gimp.progress_end()
