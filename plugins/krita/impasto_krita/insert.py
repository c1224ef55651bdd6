"""Turning a finished job into a layer (the ``impasto_plugin.jobs.Sink`` for stylize jobs), and keeping previews for the docker.

Rules: the result goes into a *new* paint layer just above the source layer, covering the selection's bounds (or the
whole layer/canvas), with the selection mask as its alpha: the daemon sends the stylized colour unblended and the mask
multiplied into the alpha (``mask_mode: "alpha"``), so feathered edges lose nothing; a result scaled up here gets the
full-resolution mask multiplied into its alpha after scaling; large results are painted progressively into
that layer as engine tiles arrive; if the job fails or is cancelled the layer is removed again, so nothing is left.
Without tiles the layer is inserted once, fully painted: one undo step.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Optional

from impasto_protocol.messages import ResultEvent, TileEvent

from . import krita_api, markers, pixels
from .pixels import ITEMSIZE, Rect

log = logging.getLogger(__name__)


@dataclass
class Target:
    """Where and how a result lands: computed when the job is sent, used when pixels come back."""

    doc: Any
    source: Any                      # the layer that was stylized (never written to)
    crop: Rect                       # document pixels the content came from
    mask: Optional[bytes]            # selection mask over ``crop`` (None = everything)
    depth: str                       # "U8" | "U16": the depth the content was sent at
    name: str                        # new layer's name
    scaled: bool = False             # the result comes back smaller than ``crop`` (scaled up on arrival)
    mask_in_alpha: bool = False      # the daemon applied ``mask`` as the result's alpha (mask_mode "alpha")
    overlay: bool = False            # DST: the job asked for the warp overlay (a hidden group above the result)


@dataclass
class LayerSink:
    target: Target
    api: Any = krita_api
    layer: Any = None                # the new layer once it exists
    inserted: bool = False
    overlay_group: Any = None        # the warp overlay's group, once inserted
    tiles_painted: int = 0
    result_size: tuple[int, int] = (0, 0)
    _tmp_name: str = field(default="", init=False)

    def on_tile(self, ev: TileEvent) -> None:
        t = self.target
        img = ev.image
        if img is None or ev.final or t.scaled:
            return
        # Engine tiles are in output pixels; paint them only when the output is the crop's size.
        if ev.x + img.width > t.crop.width or ev.y + img.height > t.crop.height:
            return
        rgba = pixels.buffer_to_rgba(img)
        rgba = pixels.convert_depth(rgba, img.itemsize, ITEMSIZE[t.depth])
        self._ensure_layer(progressive=True)
        self.api.write_rgba(t.doc, self.layer, Rect(t.crop.x + ev.x, t.crop.y + ev.y, img.width, img.height),
                            rgba, ITEMSIZE[t.depth])
        self.tiles_painted += 1
        self.api.refresh(t.doc)

    def on_result(self, ev: ResultEvent) -> None:
        t = self.target
        img = ev.image
        if img is None:
            raise RuntimeError("the daemon finished without sending an image")
        self.result_size = (img.width, img.height)
        rgba = pixels.buffer_to_rgba(img)
        size = ITEMSIZE[t.depth]
        rgba = pixels.convert_depth(rgba, img.itemsize, size)
        if (img.width, img.height) != (t.crop.width, t.crop.height):
            rgba = self.api.scale_rgba(rgba, img.width, img.height, size, t.crop.width, t.crop.height)
        if t.mask is not None and not t.mask_in_alpha:
            rgba = pixels.apply_mask(rgba, t.mask, size)
        self._ensure_layer(progressive=False)
        self.api.write_rgba(t.doc, self.layer, t.crop, bytes(rgba), size)
        if not self.inserted:
            self.api.insert_above(t.source, self.layer)
            self.inserted = True
        else:
            self.layer.setName(t.name)
        if ev.overlays:
            try:
                self._insert_overlay(ev)
            except Exception as e:  # noqa: BLE001 - the overlay is a help: never lose the result over it
                log.warning("could not insert the warp overlay: %s", e)
        recipe = (ev.info or {}).get("recipe")
        if recipe:
            try:                         # a convenience: never lose a finished result over it
                self.api.store_recipe(t.doc, self.layer, json.dumps(recipe, sort_keys=True))
            except Exception as e:  # noqa: BLE001
                log.warning("could not store the result's recipe: %s", e)
        self.api.refresh(t.doc)

    def _insert_overlay(self, ev: ResultEvent) -> None:
        """The DST warp overlay as a hidden group above the result: the keypoints with lines to their targets, and
        the deformed grid, each a layer exactly over the result."""
        t = self.target
        size = ITEMSIZE[t.depth]
        layers = []
        for key, title in (("grid", "warp grid"), ("keypoints", "keypoints → targets")):
            img = ev.overlays.get(key)
            if img is None:
                continue
            rgba = pixels.convert_depth(pixels.buffer_to_rgba(img), img.itemsize, size)
            if (img.width, img.height) != (t.crop.width, t.crop.height):
                rgba = self.api.scale_rgba(rgba, img.width, img.height, size, t.crop.width, t.crop.height)
            layer = self.api.make_paint_layer(t.doc, title)
            self.api.write_rgba(t.doc, layer, t.crop, bytes(rgba), size)
            layers.append(layer)
        if not layers:
            return
        self.overlay_group = self.api.insert_hidden_group(t.doc, self.layer, f"{t.name} · warp overlay", layers)

    def on_abort(self, reason: str) -> None:
        if self.inserted and self.layer is not None:
            self.api.remove_node(self.layer)
            self.api.refresh(self.target.doc)
        self.layer, self.inserted = None, False

    def _ensure_layer(self, progressive: bool) -> None:
        if self.layer is not None:
            return
        t = self.target
        name = f"{t.name} (painting…)" if progressive else t.name
        self.layer = self.api.make_paint_layer(t.doc, name)
        if progressive:                 # show tiles as they come: the layer must be in the document
            self.api.insert_above(t.source, self.layer)
            self.inserted = True


@dataclass
class MarkerSink:
    """Writes proposed keypoints (a ``keypoints_only`` job) into the two marker layers when they arrive.

    Both marker layers are replaced by new ones (the content layer above ``source``, the style layer above
    ``style_node``) holding markers 1..K at the proposed pixels, numbered and coloured alike on both; nothing is
    touched before the result is there, and a failed or cancelled job leaves the document as it was."""

    doc: Any
    source: Any                      # the content layer (its marker layer goes above it)
    style_node: Any                  # the style layer
    crop: Rect                       # document pixels the content came from
    style_rect: Rect                 # document pixels the style came from
    api: Any = krita_api
    count: int = 0
    pairs: list = field(default_factory=list)        # proposed KeypointPairs, in document pixels

    def on_tile(self, ev: TileEvent) -> None:
        pass

    def on_result(self, ev: ResultEvent) -> None:
        from impasto_protocol.options import KeypointPair
        raw = (ev.info or {}).get("keypoints") or []
        pairs = [KeypointPair.from_dict(p) for p in raw]
        if not pairs:
            raise RuntimeError("no keypoints found: place markers by hand (Add markers)")
        t, a = self, self.api
        doc_pairs = [KeypointPair(content=(p.content[0] + t.crop.x, p.content[1] + t.crop.y),
                                  style=(p.style[0] + t.style_rect.x, p.style[1] + t.style_rect.y)) for p in pairs]
        res = a.resolution(t.doc)
        w, h = t.doc.width(), t.doc.height()
        for name, above, rect, side in ((markers.CONTENT_LAYER, t.source, t.crop, "content"),
                                        (markers.STYLE_LAYER, t.style_node, t.style_rect, "style")):
            old = a.find_layer(t.doc, name)
            if old is not None:
                a.remove_node(old)
            layer = a.create_vector_layer(t.doc, name, above)
            pts = [(i + 1, *getattr(p, side)) for i, p in enumerate(doc_pairs)]
            a.add_svg_shapes(t.doc, layer, markers.markers_svg(pts, res, w, h, markers.marker_radius(rect)))
        a.refresh(t.doc)
        self.count, self.pairs = len(pairs), doc_pairs

    def on_abort(self, reason: str) -> None:
        pass


@dataclass
class PreviewSink:
    """Keeps the preview result for the docker; touches no document."""

    image: Any = None
    info: dict = field(default_factory=dict)

    def on_tile(self, ev: TileEvent) -> None:
        pass

    def on_result(self, ev: ResultEvent) -> None:
        if ev.image is None:
            raise RuntimeError("the daemon finished without sending an image")
        self.image, self.info = ev.image, dict(ev.info or {})

    def on_abort(self, reason: str) -> None:
        self.image = None
