"""What the procedures do, in plain Python over ``gimp_api`` (passed in as ``api``, a fake in the tests).

Stylize: read the active drawable (the selection's bounds, or the whole layer), the style and the keypoint paths,
send one job to the daemon (``Params.server``: the local one or a paired remote server, ``impasto_plugin.servers``),
follow it on GIMP's progress bar, and only when the result has arrived insert it -- a new layer above the source,
inside one undo group, named after style and engine, the selection as its transparency.  Any failure before that
inserts nothing; a failure while inserting removes the half-made layer.  When GIMP kills the
plug-in (Cancel on the progress bar) the client's heartbeat stops and the daemon cancels the job; a server that
stops answering mid-job is noticed by the heartbeats within seconds, and nothing is inserted.

Propose keypoints: the same read, a ``keypoints_only`` job, then the two keypoint paths replaced by the proposal.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

from impasto_protocol.images import ImageBuffer
from impasto_protocol.options import KeypointPair

from impasto_plugin import deps, servers
from impasto_plugin.daemon import serve_command
from impasto_plugin.errors import PluginError
from impasto_plugin.jobs import wait_for_result

from . import locations, paths, pixels
from .params import ParamError, Params, params_from_recipe
from .pixels import Rect

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 5.0
AUTOSTART_TIMEOUT = 90.0


@dataclass
class Outcome:
    layer: Any
    name: str
    size: tuple[int, int]         # the new layer's size
    note: str = ""
    overlay: Any = None           # DST: the warp overlay's layer group


# --------------------------------------------------------------------------------------------- daemon
def connect(server: str = servers.LOCAL) -> Any:
    """A client of the chosen server: the local daemon (started when none answers) or a paired remote server by
    name (never started from here)."""
    problem = deps.zmq_problem("gimp")
    if problem:
        raise PluginError(problem)
    try:
        return servers.connect(server, autostart=True, timeout=CONNECT_TIMEOUT,
                               serve_command=serve_command(locations.INSTALL_INFO),
                               autostart_timeout=AUTOSTART_TIMEOUT)
    except servers.ServerError as e:
        if e.server:            # a remote server: the message already says what to check
            raise
        raise PluginError(f"cannot reach the Impasto daemon: {e.detail}. Start it with `impasto serve`.") from None


def daemon_summary(server: str = servers.LOCAL, timeout: float = 2.0) -> str:
    """The dialog's first lines: what the chosen server offers (or why it does not answer; the local daemon starts
    on OK), and the paired servers the Server field takes."""
    if deps.zmq_problem("gimp"):
        return deps.zmq_problem("gimp") or ""
    name = servers.normalize(server)
    paired = [c.name for c in servers.choices() if c.name]
    servers_line = (f"\nServer: local (this computer) or a paired server: {', '.join(paired)}" if paired else "")
    try:
        with servers.connect(name, timeout=timeout) as c:
            info = c.hello()
    except Exception as e:  # noqa: BLE001 - a line of text either way
        if not name:        # not running, stale file, old daemon: all mean "starts on OK"
            return "The Impasto daemon is not running: it starts when you press OK." + servers_line
        return f"{e}{servers_line}"
    devices = servers.devices_text(info) or "?"
    engines = ", ".join(e for e in info.get("engines", []) if e in ("mt", "gatys", "strotss", "dst")) or "none"
    styles = ", ".join(info.get("styles", [])) or "none installed"
    where = f"Server {name}" if name else "Daemon"
    return f"{where} on {devices} · engines: {engines}\nMT styles: {styles}{servers_line}"


def installed_styles(timeout: float = 1.5, cache: Optional[str] = None) -> dict[str, str]:
    """The trained MT styles (name -> title) for the dialog's choice list: from the running daemon (remembered in
    ``locations.STYLES_CACHE``), else the list it gave last time; {} when neither is there.  Never starts a daemon."""
    cache = cache or locations.STYLES_CACHE
    if not deps.zmq_problem("gimp"):
        from impasto_protocol.client import Client
        try:
            with Client.connect(timeout=timeout) as c:
                styles = {str(s["name"]): str(s.get("title") or s["name"])
                          for s in c.list_styles(thumbnails=False) if s.get("name")}
            try:
                with open(cache, "w") as f:
                    json.dump(styles, f)
            except OSError:
                pass
            return styles
        except Exception:  # noqa: BLE001 - not running: fall back to the remembered list
            pass
    try:
        with open(cache) as f:
            data = json.load(f)
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _run_job(api: Any, connect_fn: Callable[[], Any], title: str, submit: Callable[[Any], Any], *,
             image: bool = True, overlays: Optional[dict] = None) -> tuple[Optional[ImageBuffer], dict]:
    """Connect, ``submit(client)`` one job, follow it on GIMP's progress bar to its (image, info); always close."""
    client = connect_fn()
    try:
        api.progress_start(title)
        try:
            job = submit(client)
            return wait_for_result(job, lambda f, stage: api.progress_update(f, stage), image=image,
                                   overlays=overlays)
        except BaseException:
            api.progress_end()          # a failed job must not leave GIMP's progress bar running
            raise
    finally:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass


# --------------------------------------------------------------------------------------------- stylize
def _single_drawable(api: Any, drawables: Sequence[Any]) -> Any:
    if len(drawables) != 1:
        raise PluginError(f"select exactly one layer to stylize ({len(drawables)} are selected)")
    d = drawables[0]
    kind = api.drawable_kind(d)
    if kind == "group":
        raise PluginError(f"{api.item_name(d)!r} is a layer group: select a painted layer")
    if kind != "layer":
        raise PluginError(f"{api.item_name(d)!r} is not a layer (a channel or mask): select a layer")
    if api.item_name(d) in (paths.CONTENT_PATH, paths.STYLE_PATH):
        raise PluginError("select the picture layer to stylize")
    return d


def read_content(api: Any, image: Any, drawable: Any, fmt: tuple[str, str, int]
                 ) -> tuple[Rect, Optional[bytes], ImageBuffer]:
    """The crop (image pixels) of ``drawable`` to stylize, its selection mask (None = all) and its pixels."""
    crop, mask = api.selection(image, drawable)
    if crop.empty:
        raise PluginError("the selection does not overlap the layer: select part of the layer, or Select > None")
    if crop.long_side < 16:
        raise PluginError(f"the {'selection' if mask is not None else 'layer'} is too small to stylize "
                          f"({crop.width}×{crop.height} px; the long side needs at least 16 px)")
    if mask is not None and pixels.is_full_mask(mask):
        mask = None
    data = api.read_rgba(drawable, crop, fmt[0])
    return crop, mask, pixels.rgba_buffer(data, crop.width, crop.height, fmt[1])


def read_style(api: Any, p: Params, fmt: tuple[str, str, int]) -> tuple[Optional[ImageBuffer], Optional[Rect], str]:
    """(style image, the style layer's rect in its image or None for a file, label)."""
    if not p.needs_style_image:
        return None, None, ""
    if p.style_source == "layer":
        rect = api.drawable_rect(p.style_layer)
        if rect.empty:
            raise PluginError(f"the style layer {api.item_name(p.style_layer)!r} is empty")
        data = api.read_rgba(p.style_layer, rect, fmt[0])
        return pixels.rgba_buffer(data, rect.width, rect.height, fmt[1]), rect, api.item_name(p.style_layer)
    if not os.path.isfile(p.style_file):
        raise PluginError(f"the style image {p.style_file!r} does not exist")
    try:
        w, h, data = api.read_image_file(p.style_file, fmt[0])
    except Exception as e:  # noqa: BLE001 - GIMP's loaders raise GLib.Error with a readable message
        raise PluginError(f"cannot open the style image {p.style_file!r}: {getattr(e, 'message', None) or e}") from None
    return pixels.rgba_buffer(data, w, h, fmt[1]), None, ""


def keypoint_pairs(api: Any, image: Any, p: Params, crop: Rect, style_rect: Optional[Rect]) -> paths.Pairing:
    if p.style_source != "layer" or style_rect is None:
        raise PluginError("keypoints from paths need the style as a layer of an open image (Style from: layer)")
    c_path = api.find_path(image, paths.CONTENT_PATH)
    style_image = api.item_image(p.style_layer)
    s_path = api.find_path(style_image, paths.STYLE_PATH) or api.find_path(image, paths.STYLE_PATH)
    if c_path is None or s_path is None:
        missing = " and ".join(n for n, x in ((paths.CONTENT_PATH, c_path), (paths.STYLE_PATH, s_path)) if x is None)
        raise PluginError(f"no path named {missing}: run Filters > Artistic > Impasto > Add keypoint paths first")
    c = paths.path_anchors(api.path_strokes(c_path))
    s = paths.path_anchors(api.path_strokes(s_path))
    return paths.pair(c, s, (crop.x, crop.y), (style_rect.x, style_rect.y))


@dataclass
class JobInputs:
    """What a job is made of, read from the image before anything is sent: checked arguments, the source layer,
    the wire format, the crop, its selection mask and pixels, the style and where it came from."""

    drawable: Any
    fmt: tuple[str, str, int]
    crop: Rect
    mask: Optional[bytes]
    content: ImageBuffer
    style: Optional[ImageBuffer]
    style_rect: Optional[Rect]
    style_label: str


def read_inputs(api: Any, image: Any, drawables: Sequence[Any], p: Params) -> JobInputs:
    try:
        p.check()
    except ParamError as e:
        raise PluginError(str(e)) from None
    drawable = _single_drawable(api, drawables)
    fmt = pixels.wire_format(api.precision_name(image))
    crop, mask, content = read_content(api, image, drawable, fmt)
    style, style_rect, style_label = read_style(api, p, fmt)
    return JobInputs(drawable, fmt, crop, mask, content, style, style_rect, style_label)


def _connector(p: Params, connect_fn: Optional[Callable[[], Any]]) -> Callable[[], Any]:
    """``connect_fn`` (the tests' fake daemon), else a connection to the server ``p`` names."""
    return connect_fn if connect_fn is not None else (lambda: connect(p.server))


def stylize(api: Any, image: Any, drawables: Sequence[Any], p: Params,
            connect_fn: Optional[Callable[[], Any]] = None) -> Outcome:
    i = read_inputs(api, image, drawables, p)
    drawable, fmt, crop, mask, content, style, style_rect, style_label = (
        i.drawable, i.fmt, i.crop, i.mask, i.content, i.style, i.style_rect, i.style_label)
    pairing = keypoint_pairs(api, image, p, crop, style_rect) if p.uses_paths else None
    try:
        options = p.to_options(crop.long_side, pairing.pairs if pairing else None)
    except ParamError as e:
        raise PluginError(str(e)) from None
    name = p.layer_name(style_label)

    overlays: dict = {}
    result, info = _run_job(api, _connector(p, connect_fn), f"Impasto: {name}", lambda c: c.stylize(
        content, options, style=style, **({"overlay": True} if p.engine == "dst" else {})), overlays=overlays)
    api.progress_update(1.0, "inserting the result")

    rgba = pixels.convert_depth(pixels.buffer_to_rgba(result), result.itemsize, fmt[2])
    scaled = (result.width, result.height) != (crop.width, crop.height)
    if mask is not None and not scaled:
        rgba = pixels.apply_mask(rgba, mask, fmt[2])
    layer = group = None
    with api.undo_group(image):
        try:
            layer = api.new_layer_above(image, drawable, name, Rect(crop.x, crop.y, result.width, result.height))
            api.write_rgba(layer, Rect(crop.x, crop.y, result.width, result.height), bytes(rgba), fmt[0])
            if scaled:          # output size smaller than the crop: GIMP scales it up, then the selection applies
                api.scale_layer(layer, crop)
                if mask is not None:
                    back = api.read_rgba(layer, crop, fmt[0])
                    api.write_rgba(layer, crop, bytes(pixels.apply_mask(back, mask, fmt[2])), fmt[0])
            group = _overlay_layers(api, image, layer, name, crop, overlays, fmt, scaled)
            if info.get("recipe"):       # inside the undo group: one Ctrl+Z removes the layer with its recipe
                try:                     # a convenience: never lose a finished result over it
                    api.store_recipe(layer, json.dumps(info["recipe"], sort_keys=True))
                except Exception as e:  # noqa: BLE001
                    log.warning("could not attach the result's recipe: %s", e)
        except Exception:
            for item in (group, layer):
                if item is not None:
                    api.remove_layer(image, item)
            raise
        finally:
            api.progress_end()
    note = pairing.note() if pairing else ""
    return Outcome(layer, name, (crop.width, crop.height), note, overlay=group)


def _overlay_layers(api: Any, image: Any, result: Any, name: str, crop: Rect, overlays: dict,
                    fmt: tuple[str, str, int], scaled: bool) -> Optional[Any]:
    """The DST warp overlay as a hidden layer group above the result: "keypoints → targets" over "warp grid", each
    exactly over the result (scaled with it).  Returns the group, or None when the job sent no overlay."""
    if not overlays:
        return None
    group = api.new_group_above(image, result, f"{name} · warp overlay")
    for key, title in (("keypoints", "keypoints → targets"), ("grid", "warp grid")):
        img = overlays.get(key)
        if img is None:
            continue
        rgba = pixels.convert_depth(pixels.buffer_to_rgba(img), img.itemsize, fmt[2])
        rect = Rect(crop.x, crop.y, img.width, img.height)
        layer = api.new_layer_in(image, group, title, rect)
        api.write_rgba(layer, rect, bytes(rgba), fmt[0])
        if scaled:
            api.scale_layer(layer, crop)
    return group


def rerun(api: Any, image: Any, drawables: Sequence[Any], style: Params,
          connect_fn: Optional[Callable[[], Any]] = None) -> Outcome:
    """Make a result layer again from its recipe (the ``impasto-recipe`` parasite): the same options and seed, on
    the layer it sits above, with the painting ``style`` points to (MT needs none), on the server ``style``
    names.  A new layer, as Stylize."""
    from impasto_protocol.options import OptionsError
    from impasto_protocol.recipe import Recipe
    if len(drawables) != 1:
        raise PluginError("select the one result layer to make again")
    result = drawables[0]
    text = api.read_recipe(result)
    if not text:
        raise PluginError(f"{api.item_name(result)!r} has no Impasto recipe: select a layer Impasto made")
    try:
        recipe = Recipe.from_json(text)
    except OptionsError as e:
        raise PluginError(f"the layer's recipe cannot be used: {e}") from None
    source = api.layer_below(image, result)
    if source is None:
        raise PluginError("the result layer has no layer under it to stylize again")
    p, notes = params_from_recipe(recipe, style)
    outcome = stylize(api, image, [source], p, connect_fn)
    outcome.note = "; ".join([f"made again from the recipe ({recipe.summary()})"] + notes + [outcome.note]).strip("; ")
    return outcome


# --------------------------------------------------------------------------------------------- keypoint paths
def add_keypoint_paths(api: Any, image: Any, drawables: Sequence[Any], style_layer: Any, count: int
                       ) -> tuple[Any, Any]:
    """Create (or replace) the content and style keypoint paths with ``count`` anchors each, spread over the
    selection (or the active layer) and over the style layer; returns the two paths."""
    if count < 1:
        raise PluginError("add at least one keypoint")
    if len(drawables) == 1:
        crop, _ = api.selection(image, drawables[0])
    else:
        crop = api.image_rect(image)
    if crop.empty:
        crop = api.image_rect(image)
    style_image = api.item_image(style_layer) if style_layer is not None else image
    style_rect = api.drawable_rect(style_layer) if style_layer is not None else crop
    with api.undo_group(image):
        c = api.replace_path(image, paths.CONTENT_PATH, paths.default_positions(crop, count))
        if style_image is image:
            s = api.replace_path(image, paths.STYLE_PATH, paths.default_positions(style_rect, count))
    if style_image is not image:
        with api.undo_group(style_image):
            s = api.replace_path(style_image, paths.STYLE_PATH, paths.default_positions(style_rect, count))
    return c, s


def propose_keypoints(api: Any, image: Any, drawables: Sequence[Any], p: Params,
                      connect_fn: Optional[Callable[[], Any]] = None) -> Outcome:
    """Ask the daemon for the keypoints DST's Automatic mode would use (NBB + cleaning) and write them as the two
    keypoint paths (anchor i of the content path pairs with anchor i of the style path), replacing the old ones.
    Nothing in the images changes before the keypoints are there; then the artist moves, deletes or adds anchors
    and runs Stylize with Keypoints "From the keypoint paths"."""
    p = dataclasses.replace(p, engine="dst", style_source="layer", keypoints="auto")
    i = read_inputs(api, image, drawables, p)
    crop, content, style, style_rect = i.crop, i.content, i.style, i.style_rect
    assert style_rect is not None
    try:
        options = p.to_options(crop.long_side, None)
    except ParamError as e:
        raise PluginError(str(e)) from None
    _none, info = _run_job(api, _connector(p, connect_fn), "Impasto: proposing keypoints",
                           lambda c: c.stylize(content, options, style=style, keypoints_only=True), image=False)
    found = [KeypointPair.from_dict(kp) for kp in info.get("keypoints") or []]
    if not found:
        api.progress_end()
        raise PluginError("no keypoints found: place them by hand (Add keypoint paths)")
    c_pts = [(kp.content[0] + crop.x, kp.content[1] + crop.y) for kp in found]
    s_pts = [(kp.style[0] + style_rect.x, kp.style[1] + style_rect.y) for kp in found]
    style_image = api.item_image(p.style_layer)
    with api.undo_group(image):
        c_path = api.replace_path(image, paths.CONTENT_PATH, c_pts)
        if style_image is image:
            api.replace_path(image, paths.STYLE_PATH, s_pts)
    if style_image is not image:
        with api.undo_group(style_image):
            api.replace_path(style_image, paths.STYLE_PATH, s_pts)
    api.progress_end()
    note = (f"{len(found)} keypoints proposed as the paths {paths.CONTENT_PATH!r} and {paths.STYLE_PATH!r}: move, "
            "delete or add anchors (in order), then Stylize with Keypoints: From the keypoint paths")
    return Outcome(c_path, "keypoints", (crop.width, crop.height), note)
