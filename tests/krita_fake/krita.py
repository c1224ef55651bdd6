"""A small hand-written fake of the Krita classes the Impasto plugin's ``krita_api`` uses (Krita 5.1 behaviour).

Pixels are kept per node as a full-canvas buffer in the node's depth; integer RGBA is B, G, R, A like Krita.  Only
RGBA at U8/U16 is modelled; ``setColorSpace`` converts the depth (8 <-> 16 bit) and records the profile, which is
what the plugin relies on.  Vector layers parse ``<circle>``/``<ellipse>`` (shapes, bounding boxes in points) and
``<text>`` (label shapes) from SVG like Krita does.  Used by tests/test_krita_*.py; never shipped.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from array import array

IS_FAKE = True
ITEMSIZE = {"U8": 1, "U16": 2}


class QRectLike:
    def __init__(self, x, y, w, h):
        self._r = (x, y, w, h)

    def x(self):
        return self._r[0]

    def y(self):
        return self._r[1]

    def width(self):
        return self._r[2]

    def height(self):
        return self._r[3]

    def __eq__(self, other):
        return isinstance(other, QRectLike) and self._r == other._r

    def __repr__(self):
        return f"QRect{self._r}"


def _convert(data: bytes, src: str, dst: str) -> bytes:
    if src == dst:
        return bytes(data)
    if src == "U8":
        return array("H", (v * 257 for v in data)).tobytes()
    a = array("H")
    a.frombytes(bytes(data))
    return bytes((v + 128) // 257 for v in a)


class QUuidLike:
    """What PyQt5's QUuid gives the plugin: ``toString()`` as ``{xxxxxxxx-...}``."""

    def __init__(self, u):
        self._u = u

    def toString(self):
        return "{" + str(self._u) + "}"


class Node:
    def __init__(self, doc, name, type_):
        self.doc, self._name, self._type = doc, name, type_
        self._model, self._depth, self._profile = doc._model, doc._depth, doc._profile
        self._children: list[Node] = []
        self._parent: Node | None = None
        self._data = bytearray(doc._w * doc._h * 4 * ITEMSIZE[self._depth])
        self._bounds: tuple[int, int, int, int] | None = None
        self.writes = 0

    # identity
    def name(self):
        return self._name

    def visible(self):
        return getattr(self, "_visible", True)

    def setVisible(self, v):
        self._visible = bool(v)

    def uniqueId(self):
        if not hasattr(self, "_uuid"):
            import uuid
            self._uuid = QUuidLike(uuid.uuid4())
        return self._uuid

    def setName(self, n):
        self._name = n

    def type(self):
        return self._type

    def colorModel(self):
        return self._model

    def colorDepth(self):
        return self._depth

    def colorProfile(self):
        return self._profile

    def setColorSpace(self, model, depth, profile):
        if model != "RGBA" or depth not in ITEMSIZE:
            return False
        self._data = bytearray(_convert(bytes(self._data), self._depth, depth))
        self._model, self._depth, self._profile = model, depth, profile
        return True

    # tree
    def childNodes(self):
        return list(self._children)

    def parentNode(self):
        return self._parent

    def addChildNode(self, child, above):
        child._parent = self
        idx = self._children.index(above) + 1 if above is not None else len(self._children)
        self._children.insert(idx, child)
        return True

    def remove(self):
        if self._parent is not None:
            self._parent._children.remove(self)
            self._parent = None
        return True

    def duplicate(self):
        n = Node(self.doc, self._name, self._type)
        n._model, n._depth, n._profile = self._model, self._depth, self._profile
        n._data, n._bounds = bytearray(self._data), self._bounds
        return n

    # pixels
    def _px(self):
        return 4 * ITEMSIZE[self._depth]

    def bounds(self):
        if self._bounds is None:
            return QRectLike(0, 0, 0, 0)
        x0, y0, x1, y1 = self._bounds
        return QRectLike(x0, y0, x1 - x0, y1 - y0)

    def pixelData(self, x, y, w, h):
        px, W = self._px(), self.doc._w
        out = bytearray()
        for row in range(y, y + h):
            for col in range(x, x + w):
                if 0 <= col < W and 0 <= row < self.doc._h:
                    i = (row * W + col) * px
                    out += self._data[i:i + px]
                else:
                    out += bytes(px)
        return bytes(out)

    projectionPixelData = pixelData

    def setPixelData(self, data, x, y, w, h):
        data = bytes(data)
        px, W = self._px(), self.doc._w
        assert len(data) == w * h * px, (len(data), w, h, px)
        for row in range(h):
            for col in range(w):
                X, Y = x + col, y + row
                if 0 <= X < W and 0 <= Y < self.doc._h:
                    i = (Y * W + X) * px
                    self._data[i:i + px] = data[(row * w + col) * px:(row * w + col + 1) * px]
        b = self._bounds or (x, y, x + w, y + h)
        self._bounds = (min(b[0], x), min(b[1], y), max(b[2], x + w), max(b[3], y + h))
        self.writes += 1
        return None                      # Krita 5.1.5 returns None


class Shape:
    def __init__(self, name, type_, bbox):
        self._name, self._type, self._bbox = name, type_, bbox

    def name(self):
        return self._name

    def type(self):
        return self._type

    def boundingBox(self):
        return QRectLike(*self._bbox)

    def setPosition(self, p):
        x, y, w, h = self._bbox
        self._bbox = (p[0], p[1], w, h)


class VectorLayer(Node):
    def __init__(self, doc, name):
        super().__init__(doc, name, "vectorlayer")
        self._shapes: list[Shape] = []

    def shapes(self):
        return list(self._shapes)

    def addShapesFromSvg(self, svg):
        if Krita.instance().activeDocument() is None:
            raise RuntimeError("Krita 5.1 would crash: addShapesFromSvg without an active view")
        root = ET.fromstring(svg)
        added = []
        for el in root.iter():
            tag = el.tag.split("}")[-1]
            f = lambda k: float(el.get(k, 0))  # noqa: E731
            if tag == "circle":
                r = f("r")
                s = Shape(el.get("id", ""), "KoPathShape", (f("cx") - r, f("cy") - r, 2 * r, 2 * r))
            elif tag == "ellipse":
                s = Shape(el.get("id", ""), "KoPathShape", (f("cx") - f("rx"), f("cy") - f("ry"), 2 * f("rx"), 2 * f("ry")))
            elif tag == "text":
                s = Shape(el.get("id", ""), "KoSvgTextShapeID", (f("x"), f("y") - f("font-size"), f("font-size"), f("font-size")))
            else:
                continue
            self._shapes.append(s)
            added.append(s)
        return added


class Selection:
    def __init__(self, doc_w=0, doc_h=0):
        self._w, self._h = doc_w, doc_h
        self._mask = bytearray(doc_w * doc_h)

    def select(self, x, y, w, h, value):
        for row in range(y, y + h):
            for col in range(x, x + w):
                if 0 <= col < self._w and 0 <= row < self._h:
                    self._mask[row * self._w + col] = value

    def setPixelData(self, data, x, y, w, h):
        for row in range(h):
            for col in range(w):
                self._mask[(y + row) * self._w + x + col] = data[row * w + col]

    def _box(self):
        xs = [i % self._w for i, v in enumerate(self._mask) if v]
        ys = [i // self._w for i, v in enumerate(self._mask) if v]
        return (min(xs), min(ys), max(xs) + 1, max(ys) + 1) if xs else (0, 0, 0, 0)

    def x(self):
        return self._box()[0]

    def y(self):
        return self._box()[1]

    def width(self):
        b = self._box()
        return b[2] - b[0]

    def height(self):
        b = self._box()
        return b[3] - b[1]

    def pixelData(self, x, y, w, h):
        return bytes(self._mask[(y + r) * self._w + x + c] for r in range(h) for c in range(w))


class Document:
    def __init__(self, w, h, model="RGBA", depth="U8", profile="sRGB-elle-V2-srgbtrc.icc", resolution=72):
        self._w, self._h, self._res = w, h, resolution
        self._model, self._depth, self._profile = model, depth, profile
        self._root = Node(self, "root", "grouplayer")
        bg = Node(self, "Background", "paintlayer")
        self._root.addChildNode(bg, None)
        self._active = bg
        self._selection: Selection | None = None
        self.refreshes = 0

    def width(self):
        return self._w

    def height(self):
        return self._h

    def resolution(self):
        return self._res

    def colorModel(self):
        return self._model

    def colorDepth(self):
        return self._depth

    def colorProfile(self):
        return self._profile

    def rootNode(self):
        return self._root

    def activeNode(self):
        return self._active

    def setActiveNode(self, n):
        self._active = n

    def selection(self):
        return self._selection

    def setSelection(self, s):
        self._selection = s

    def createNode(self, name, type_):
        return Node(self, name, type_)

    def createVectorLayer(self, name):
        return VectorLayer(self, name)

    def refreshProjection(self):
        self.refreshes += 1

    # annotations: (type, description, bytes), saved in the .kra by real Krita
    def setAnnotation(self, type_, description, annotation):
        if not hasattr(self, "_annotations"):
            self._annotations = {}
        self._annotations[type_] = (description, bytes(annotation))

    def annotation(self, type_):
        return getattr(self, "_annotations", {}).get(type_, ("", b""))[1]

    def annotationTypes(self):
        return list(getattr(self, "_annotations", {}))

    def waitForDone(self):
        pass


class Window:
    def __init__(self, app):
        self.app = app

    def addView(self, doc):
        self.app._active_doc = doc


class Krita:
    _instance = None

    def __init__(self):
        self._active_doc = None
        self._windows: list[Window] = []
        self._settings: dict = {}

    @classmethod
    def instance(cls):
        if cls._instance is None:
            cls._instance = Krita()
        return cls._instance

    @classmethod
    def reset(cls):
        cls._instance = Krita()
        return cls._instance

    def activeDocument(self):
        return self._active_doc

    def activeWindow(self):
        return self._windows[0] if self._windows and self._active_doc is not None else None

    def windows(self):
        return list(self._windows)

    def openWindow(self):
        w = Window(self)
        self._windows.append(w)
        return w

    def readSetting(self, group, key, default):
        return self._settings.get((group, key), default)

    def writeSetting(self, group, key, value):
        self._settings[(group, key)] = value
