"""Every call into Krita's Python API (and the few into Qt images) lives here; the rest of the plugin is plain Python.

Krita 5.1 facts this module relies on (checked in real Krita 5.1.5, see tests/editors/krita):
- ``Node.pixelData``/``projectionPixelData`` return B,G,R,A for integer RGBA, R,G,B,A for float; native-endian.
- ``Node.duplicate()`` gives a detached copy whose ``setColorSpace`` converts only the copy; a detached
  ``createNode`` result can be converted and written before it is inserted.
- ``Node.addChildNode`` is one undo step (Edit > Undo removes the layer again).
- Vector shapes are in points; ``VectorLayer.addShapesFromSvg`` needs an open view in 5.1 (it dereferences
  ``Krita.activeDocument()``), so callers make sure a view exists.
"""
from __future__ import annotations

import logging
from typing import Any, Iterator, Optional

from impasto_protocol.images import ImageBuffer

from . import pixels
from .pixels import ITEMSIZE, SRGB_PROFILE, Rect

log = logging.getLogger(__name__)

try:  # real Krita / PyQt5; the logic tests' fake accepts plain bytes
    from PyQt5.QtCore import QByteArray as _QByteArray
except ImportError:  # pragma: no cover - only without PyQt5
    _QByteArray = bytes

PIXEL_LAYER_TYPES = ("paintlayer", "grouplayer", "filelayer", "clonelayer", "vectorlayer", "filllayer")


class KritaError(RuntimeError):
    """Something in the document prevents the action; the message tells the artist what to do."""


def krita():
    from krita import Krita
    return Krita.instance()


def active_document():
    return krita().activeDocument()


def require_document():
    doc = active_document()
    if doc is None:
        raise KritaError("open an image first")
    return doc


def doc_rect(doc) -> Rect:
    return Rect(0, 0, int(doc.width()), int(doc.height()))


def resolution(doc) -> float:
    r = float(doc.resolution() or 72)
    return r if r > 0 else 72.0


def walk(node) -> Iterator[Any]:
    for child in node.childNodes():
        yield child
        yield from walk(child)


def find_layer(doc, name: str):
    for node in walk(doc.rootNode()):
        if node.name() == name:
            return node
    return None


def layer_below(node):
    """The sibling directly under ``node`` in the Layers docker, or None."""
    parent = node.parentNode()
    if parent is None:
        return None
    siblings = parent.childNodes()                 # bottom-up
    for i, n in enumerate(siblings):
        if n.name() == node.name() and n.type() == node.type() and i > 0:
            return siblings[i - 1]
    return None


def pixel_layers(doc) -> list[Any]:
    """Layers that have pixels to use as a style, top-most first (as in the Layers docker)."""
    return [n for n in reversed(list(walk(doc.rootNode()))) if n.type() in PIXEL_LAYER_TYPES]


def node_rect(doc, node) -> Rect:
    b = node.bounds()
    return Rect(int(b.x()), int(b.y()), int(b.width()), int(b.height())).intersect(doc_rect(doc))


# ------------------------------------------------------------------------------------------------- reading
def read_selection(doc) -> Optional[tuple[Rect, bytes]]:
    """The selection's bounds (clipped to the canvas) and its 8-bit mask there, feathering included.

    None when nothing is selected, or when the selection covers the whole canvas fully (Select All)."""
    sel = doc.selection()
    if sel is None:
        return None
    rect = Rect(int(sel.x()), int(sel.y()), int(sel.width()), int(sel.height())).intersect(doc_rect(doc))
    if rect.empty:
        return None
    mask = bytes(sel.pixelData(rect.x, rect.y, rect.width, rect.height))
    if rect == doc_rect(doc) and pixels.is_full_mask(mask):
        return None
    return rect, mask


def read_pixels(doc, node, rect: Rect) -> tuple[bytes, str]:
    """Pixels of ``node`` (with its masks applied) inside ``rect`` as sRGB RGBA, 8- or 16-bit (Krita BGRA order).

    The node is never modified: other colour models, depths or profiles are converted on a detached copy."""
    model, depth, profile = node.colorModel(), node.colorDepth(), node.colorProfile()
    target = pixels.wire_depth(model, depth)
    data = bytes(node.projectionPixelData(rect.x, rect.y, rect.width, rect.height))
    if pixels.needs_conversion(model, depth, profile):
        tmp = doc.createNode("impasto conversion", "paintlayer")
        tmp.setColorSpace(model, depth, profile)
        tmp.setPixelData(_QByteArray(data), rect.x, rect.y, rect.width, rect.height)
        if not tmp.setColorSpace("RGBA", target, SRGB_PROFILE):
            raise KritaError(f"Krita could not convert the {model}/{depth} layer to sRGB")
        data = bytes(tmp.pixelData(rect.x, rect.y, rect.width, rect.height))
    expected = rect.width * rect.height * 4 * ITEMSIZE[target]
    if len(data) != expected:
        raise KritaError(f"Krita returned {len(data)} bytes for a {rect.width}x{rect.height} {target} layer "
                         f"(expected {expected})")
    return data, target


def read_image_file(path: str) -> ImageBuffer:
    """An image file as 8-bit sRGB RGBA (Qt reads it; Krita's own formats are not needed for a style picture)."""
    from PyQt5.QtGui import QImage
    img = QImage(path)
    if img.isNull():
        raise KritaError(f"cannot read the style image {path!r} (is it a PNG, JPEG or other common image?)")
    img = img.convertToFormat(QImage.Format_RGBA8888)
    ptr = img.constBits()
    ptr.setsize(img.sizeInBytes())
    return ImageBuffer(img.width(), img.height(), 4, "u8", bytes(ptr), stride=img.bytesPerLine())


def scale_rgba(rgba: bytes, width: int, height: int, itemsize: int, new_w: int, new_h: int) -> bytes:
    """Smoothly resize RGBA (u8 or u16) with Qt."""
    from PyQt5.QtCore import Qt
    from PyQt5.QtGui import QImage
    fmt = QImage.Format_RGBA8888 if itemsize == 1 else QImage.Format_RGBA64
    src = QImage(bytes(rgba), width, height, width * 4 * itemsize, fmt)
    out = src.scaled(new_w, new_h, Qt.IgnoreAspectRatio, Qt.SmoothTransformation).convertToFormat(fmt)
    ptr = out.constBits()
    ptr.setsize(out.sizeInBytes())
    row = new_w * 4 * itemsize
    raw = bytes(ptr)
    bpl = out.bytesPerLine()
    if bpl == row:
        return raw
    return b"".join(raw[y * bpl:y * bpl + row] for y in range(new_h))


# ------------------------------------------------------------------------------------------------- writing
def make_paint_layer(doc, name: str):
    return doc.createNode(name, "paintlayer")


def write_rgba(doc, node, rect: Rect, rgba: bytes, itemsize: int) -> None:
    """Write sRGB RGBA (u8/u16) into ``node`` at ``rect``, converting to the document's colour space if needed."""
    wire = "U8" if itemsize == 1 else "U16"
    model, depth, profile = node.colorModel(), node.colorDepth(), node.colorProfile()
    if model == "RGBA" and depth == wire and not pixels.needs_conversion(model, depth, profile):
        node.setPixelData(_QByteArray(bytes(pixels.rgba_to_krita(rgba, itemsize))),
                          rect.x, rect.y, rect.width, rect.height)
        return
    tmp = doc.createNode("impasto conversion", "paintlayer")
    tmp.setColorSpace("RGBA", wire, SRGB_PROFILE)
    tmp.setPixelData(_QByteArray(bytes(pixels.rgba_to_krita(rgba, itemsize))), rect.x, rect.y, rect.width, rect.height)
    tmp.setColorSpace(model, depth, profile)
    node.setPixelData(tmp.pixelData(rect.x, rect.y, rect.width, rect.height), rect.x, rect.y, rect.width, rect.height)


def insert_hidden_group(doc, above, name: str, children: list) -> Any:
    """Insert a hidden group layer just above ``above``, then put ``children`` (bottom-up) into it.  The group goes
    into the document before its children (the order the real Krita GUI runs were made with; the GUI crash once
    blamed on the other order was Krita's Tool Options bug, docs/krita.md)."""
    group = doc.createNode(name, "grouplayer")
    insert_above(above, group)
    group.setVisible(False)
    for child in children:
        group.addChildNode(child, None)
    return group


def insert_above(source, node) -> None:
    """Insert ``node`` just above ``source`` in the same group (one undo step)."""
    parent = source.parentNode()
    parent.addChildNode(node, source)


def remove_node(node) -> None:
    if node is not None and node.parentNode() is not None:
        node.remove()


def refresh(doc) -> None:
    doc.refreshProjection()


def set_active(doc, node) -> None:
    doc.setActiveNode(node)


def restore_active_later(doc, node, delay_ms: int = 150) -> None:
    """Krita activates an inserted layer asynchronously; put the artist's layer back once that has happened."""
    if node is None:
        return
    try:
        from PyQt5.QtCore import QTimer
    except ImportError:                        # no Qt event loop (the logic tests' fake): nothing is pending
        doc.setActiveNode(node)
        return
    QTimer.singleShot(delay_ms, lambda: doc.setActiveNode(node))


# ------------------------------------------------------------------------------------------------- vector markers
def ensure_view(doc) -> None:
    """Krita 5.1's ``addShapesFromSvg`` crashes without an active view: make sure ``doc`` is shown somewhere."""
    app = krita()
    if app.activeDocument() is not None and app.activeWindow() is not None:
        return
    win = app.activeWindow() or (app.windows()[0] if app.windows() else app.openWindow())
    win.addView(doc)


def create_vector_layer(doc, name: str, above):
    layer = doc.createVectorLayer(name)
    parent = above.parentNode() if above is not None else doc.rootNode()
    parent.addChildNode(layer, above)
    return layer


def add_svg_shapes(doc, layer, svg: str) -> list[str]:
    ensure_view(doc)
    return [s.name() for s in layer.addShapesFromSvg(svg)]


def shape_boxes(layer) -> list[tuple[str, tuple[float, float, float, float]]]:
    """(name, bounding box in points) of each top-level shape of a vector layer."""
    out = []
    for s in layer.shapes():
        bb = s.boundingBox()
        out.append((s.name(), (bb.x(), bb.y(), bb.width(), bb.height())))
    return out


# ------------------------------------------------------------------------------------------------- recipes
RECIPE_ANNOTATION = "impasto/recipe/"         # + the layer's uniqueId: one document annotation per result layer


def _layer_key(node) -> str:
    return RECIPE_ANNOTATION + node.uniqueId().toString().strip("{}")


def store_recipe(doc, node, text: str) -> None:
    """Keep ``node``'s recipe (JSON) in the document: an annotation, which Krita saves in the .kra."""
    try:
        from PyQt5.QtCore import QByteArray
        data = QByteArray(text.encode("utf-8"))
    except ImportError:            # the fake Krita of the tests takes bytes
        data = text.encode("utf-8")
    doc.setAnnotation(_layer_key(node), f"Impasto recipe of the layer {node.name()!r}", data)


def read_recipe(doc, node) -> Optional[str]:
    """The recipe stored for ``node`` (JSON text), or None."""
    key = _layer_key(node)
    if key not in list(doc.annotationTypes()):
        return None
    raw = bytes(doc.annotation(key))
    return raw.decode("utf-8") if raw else None


# ------------------------------------------------------------------------------------------------- settings
def read_setting(key: str, default: str = "") -> str:
    return krita().readSetting("impasto", key, default)


def write_setting(key: str, value: str) -> None:
    krita().writeSetting("impasto", key, value)
