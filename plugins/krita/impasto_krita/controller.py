"""The plugin's state and actions, shared by the Extension (menu actions) and every docker (one per window).

Plain Python over ``krita_api`` and the Impasto client: it survives dockers being closed and reopened, and the
logic tests drive it against a fake Krita.  A Qt timer (see ``instance``) calls ``pump()`` while ``busy``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from impasto_plugin import deps, servers
from impasto_plugin.daemon import serve_command as recorded_serve_command
from impasto_plugin.errors import PluginError
from impasto_plugin.jobs import JobTracker, State
from impasto_protocol.options import OptionsError

from . import krita_api, markers, pixels
from .insert import LayerSink, MarkerSink, PreviewSink, Target
from .pixels import Rect
from .settings import Settings, apply_recipe

log = logging.getLogger(__name__)

CONTENT_TYPES = ("paintlayer", "grouplayer", "filelayer", "clonelayer", "filllayer", "vectorlayer")
AUTOSTART_TIMEOUT = 90.0
MIN_SIDE = 16                      # StylizeOptions' smallest size
INSTALL_INFO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "install.json")


@dataclass
class Connection:
    state: str = "disconnected"        # disconnected | starting | connected | error
    message: str = "Not connected"
    info: dict = field(default_factory=dict)
    styles: list = field(default_factory=list)


def serve_command() -> Optional[list[str]]:
    """How to start the daemon: $IMPASTO_SERVE_COMMAND, else what install-plugin recorded, else ``impasto`` on PATH."""
    return recorded_serve_command(INSTALL_INFO)


class Controller:
    def __init__(self, api: Any = krita_api, clock: Callable[[], float] = time.monotonic):
        self.api = api
        self.clock = clock
        try:
            self.settings = Settings.from_json(api.read_setting("settings", ""))
        except Exception:
            self.settings = Settings()
        self.conn = Connection()
        self.client: Any = None
        self.job: Optional[JobTracker] = None          # stylize or preview
        self.train_job: Optional[JobTracker] = None
        self.preview: Optional[PreviewSink] = None
        self.error = ""                                # last problem, shown in the docker
        self.notice = ""                               # last non-error note (e.g. unmatched markers)
        self.last_markers: Optional[markers.Pairing] = None
        self.settings_version = 0                      # bumped when settings change outside the docker (Re-run)
        self.recipe_source: Any = None                 # the layer whose recipe Re-run loaded
        self._listeners: list[Callable[[], None]] = []
        self._daemon_proc: Any = None
        self._start_deadline = 0.0
        self._next_try = 0.0

    # ------------------------------------------------------------------------------------------ observers
    def subscribe(self, fn: Callable[[], None]) -> None:
        self._listeners.append(fn)

    def unsubscribe(self, fn: Callable[[], None]) -> None:
        if fn in self._listeners:
            self._listeners.remove(fn)

    def notify(self) -> None:
        for fn in list(self._listeners):
            try:
                fn()
            except RuntimeError as e:          # "wrapped C/C++ object ... has been deleted": a closed window's docker
                log.debug("dropping a listener: %s", e)
                self.unsubscribe(fn)
            except Exception:
                log.exception("a docker failed to refresh")

    def save_settings(self) -> None:
        try:
            self.api.write_setting("settings", self.settings.to_json())
        except Exception:
            log.exception("could not save the settings")

    @property
    def busy(self) -> bool:
        return (self.conn.state == "starting" or (self.job is not None and self.job.active)
                or (self.train_job is not None and self.train_job.active))

    def _fail(self, msg: str) -> None:
        self.error = msg
        self.notify()

    # ------------------------------------------------------------------------------------------ daemon
    def _zmq_missing(self) -> bool:
        """True (and the docker says what to run) when Krita's Python cannot load pyzmq and the client."""
        problem = deps.zmq_problem("krita")
        if problem:
            self.conn = Connection("error", problem)
            self.notify()
        return bool(problem)

    @property
    def server(self) -> str:
        """The chosen server: "" for the local daemon, else a paired remote server's name (``servers``)."""
        return servers.normalize(self.settings.server)

    def connect(self, autostart: bool = False) -> bool:
        """Connect to the chosen server.  Local: a running daemon (quick); with ``autostart`` start one when none
        answers (non-blocking).  Remote: the paired server (never started from here; up to 3 s when it is silent)."""
        if self._zmq_missing():
            return False
        server = self.server
        try:
            client = servers.connect(server, timeout=3.0)
        except servers.UnknownServer as e:
            self.conn = Connection("error", str(e))
            self.notify()
            return False
        except servers.ServerError as e:
            if server:
                self.conn = Connection("error", f"{e} Press Connect to try again.")
            elif autostart:
                return self.start_daemon()
            else:
                self.conn = Connection("disconnected", f"Daemon not running ({e.detail}). Press Start daemon.")
            self.notify()
            return False
        self._connected(client)
        return True

    def set_server(self, name: str) -> bool:
        """Switch to another server (the docker's Server box): saved with the settings, then connected.  Refused
        while a job or a training run is in flight (it belongs to the current connection)."""
        name = servers.normalize(name)
        if name == self.server and self.client is not None:
            return True
        if self.busy:
            self._fail("a job is running on the current server: wait for it or cancel it before switching")
            return False
        self.settings.server = name
        self.save_settings()
        self.disconnect()
        self.error = ""
        return self.connect()

    def _connected(self, client: Any) -> None:
        if self.client is not None and self.client is not client:
            try:
                self.client.close()
            except Exception:
                pass
        self.client = client
        info = client.hello()
        styles: list = []
        try:
            styles = client.list_styles(thumbnails=True)
        except Exception as e:   # an old daemon without MT: the list stays empty
            log.info("no styles: %s", e)
        self.conn = Connection("connected", servers.connected_text(self.server, info), info, styles)
        self.error = "" if self.error.startswith("Daemon") else self.error
        self.notify()

    def start_daemon(self) -> bool:
        """Start the local daemon in the background (a remote server is only connected to: see ``connect``)."""
        if self._zmq_missing():
            return False
        if self.server:
            return self.connect()
        from impasto_protocol.client import DaemonNotRunning, spawn_daemon
        from impasto_protocol.connection import default_connection_file
        try:
            self._daemon_proc = spawn_daemon(serve_command(), connection_file=default_connection_file())
        except (DaemonNotRunning, OSError) as e:
            self.conn = Connection("error", f"Could not start the daemon: {e}")
            self.notify()
            return False
        self._start_deadline = self.clock() + AUTOSTART_TIMEOUT
        self.conn = Connection("starting", "Starting the daemon…")
        self.notify()
        return True

    def _pump_start(self) -> None:
        now = self.clock()
        if now < self._next_try:
            return
        self._next_try = now + 0.5
        from impasto_protocol.client import Client, DaemonNotRunning, ProtocolError
        try:
            self._connected(Client.connect(timeout=1.0))
            return
        except (DaemonNotRunning, ProtocolError, OSError) as e:
            last = str(e)
        proc = self._daemon_proc
        if proc is not None and proc.poll() is not None and proc.returncode != 0:
            self.conn = Connection("error", f"The daemon exited with status {proc.returncode}: {self._log_tail()}")
        elif now > self._start_deadline:
            self.conn = Connection("error", f"The daemon did not answer within {AUTOSTART_TIMEOUT:.0f} s ({last})")
        else:
            return
        self.notify()

    def _daemon_alive(self) -> bool:
        try:
            return bool(getattr(self.client, "daemon_alive", True))
        except Exception:
            return False

    def _log_tail(self) -> str:
        from impasto_protocol.connection import default_connection_file
        try:
            with open(default_connection_file().parent / "daemon.log", encoding="utf-8", errors="replace") as f:
                lines = [line.strip() for line in f.read().splitlines() if line.strip()]
            return lines[-1] if lines else "no output"
        except OSError:
            return "no log"

    def disconnect(self) -> None:
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
        self.client = None
        self.conn = Connection()

    def _require_client(self) -> Any:
        if self.client is None and not self.connect():
            raise PluginError(self.conn.message)
        return self.client

    # ------------------------------------------------------------------------------------------ pumping
    def pump(self) -> None:
        changed = False
        if self.conn.state == "starting":
            self._pump_start()
        if self.client is not None and self.conn.state == "connected" and not self._daemon_alive():
            for tracker in (self.job, self.train_job):
                if tracker is not None and tracker.active:
                    tracker.fail(servers.lost_text(self.server, getattr(self.client, "dead_after", None)))
                    self._finished(tracker)
            self.disconnect()
            self.conn = Connection("disconnected", servers.disconnected_text(self.server))
            changed = True
        for attr in ("job", "train_job"):
            tracker: Optional[JobTracker] = getattr(self, attr)
            if tracker is not None and tracker.active:
                before = (tracker.state, round(tracker.fraction, 3), tracker.stage, tracker.tiles)
                tracker.pump()
                changed |= before != (tracker.state, round(tracker.fraction, 3), tracker.stage, tracker.tiles)
                if not tracker.active:
                    self._finished(tracker)
        if changed:
            self.notify()

    def _finished(self, tracker: JobTracker) -> None:
        if tracker.state is State.FAILED:
            self.error = tracker.status_text()
        if tracker.kind == "keypoints" and tracker.state is State.DONE and isinstance(tracker.sink, MarkerSink):
            self.settings.keypoint_mode = "markers"      # the next Stylize runs from the proposed (edited) markers
            self.save_settings()
            self.notice = (f"Proposed {tracker.sink.count} keypoints as markers: move, delete or add markers, then "
                           "Stylize (Keypoints: From markers)")
        if tracker.kind == "train" and tracker.state is State.DONE and self.client is not None:
            try:
                self.conn.styles = self.client.list_styles(thumbnails=True)
                name = tracker.info.get("name") or tracker.title
                self.notice = f"New style ready: {name}"
            except Exception as e:
                log.warning("could not refresh styles: %s", e)

    # ------------------------------------------------------------------------------------------ actions
    def run_action(self, fn: Callable[[], Any]) -> Any:
        """Run an action; artist-fixable problems become the docker's error line, never a traceback."""
        from impasto_protocol.options import OptionsError as _OE
        self.error = ""
        try:
            return fn()
        except (PluginError, krita_api.KritaError, _OE, pixels.PixelError) as e:
            self._fail(str(e))
        except Exception as e:
            log.exception("action failed")
            name = type(e).__name__
            self._fail(f"{getattr(e, 'message', None) or e} ({name})" if name in ("ProtocolError", "DaemonNotRunning")
                       else f"Unexpected error: {name}: {e}")
        return None

    def _content(self, doc) -> tuple[Any, Rect, Optional[bytes]]:
        source = doc.activeNode()
        if source is not None and source.name() == markers.CONTENT_LAYER:
            source = self.api.layer_below(source)      # the content markers sit right above the picture
        if source is None or source.type() not in CONTENT_TYPES:
            raise PluginError("select a paint layer (or group) to stylize in the Layers docker")
        if source.name() in (markers.CONTENT_LAYER, markers.STYLE_LAYER):
            raise PluginError("the active layer is a keypoint-marker layer: select the picture layer to stylize")
        sel = self.api.read_selection(doc)
        if sel is not None:
            crop, mask = sel
        else:
            crop, mask = self.api.node_rect(doc, source), None
        if crop.empty:
            raise PluginError(f"the layer {source.name()!r} is empty (nothing to stylize)")
        if crop.long_side < MIN_SIDE:
            raise PluginError(f"the {'selection' if mask is not None else 'layer'} is too small to stylize "
                              f"({crop.width}×{crop.height} px; the long side needs at least {MIN_SIDE} px)")
        return source, crop, mask

    def _style_node(self, doc) -> Any:
        name = self.settings.style_layer
        node = self.api.find_layer(doc, name) if name else None
        if node is None:
            raise PluginError(f"style layer {name!r} not found in this image: pick one in the docker"
                              if name else "pick the style layer in the docker")
        return node

    def _style_image(self, doc) -> tuple[Any, Optional[Rect]]:
        s = self.settings
        if s.style_source == "layer":
            node = self._style_node(doc)
            rect = self.api.node_rect(doc, node)
            if rect.empty:
                raise PluginError(f"the style layer {node.name()!r} is empty")
            data, depth = self.api.read_pixels(doc, node, rect)
            return pixels.krita_to_buffer(data, rect.width, rect.height, depth), rect
        if not s.style_file:
            raise PluginError("choose a style image file (or use a layer as the style)")
        if not os.path.isfile(s.style_file):
            raise PluginError(f"the style image {s.style_file!r} does not exist")
        return self.api.read_image_file(s.style_file), None

    def marker_pairs(self, doc, crop: Rect, style_rect: Optional[Rect]) -> markers.Pairing:
        """Pairs from the two marker layers, in pixels of the content crop and the style image."""
        res = self.api.resolution(doc)
        c_layer = self.api.find_layer(doc, markers.CONTENT_LAYER)
        s_layer = self.api.find_layer(doc, markers.STYLE_LAYER)
        if c_layer is None or s_layer is None:
            raise PluginError("no keypoint markers yet: use Add keypoint markers, then move the rings")
        if style_rect is None:
            raise PluginError("markers need the style as a layer of this image (Style: Layer)")
        c = markers.read_markers(self.api.shape_boxes(c_layer), res, (crop.x, crop.y))
        s = markers.read_markers(self.api.shape_boxes(s_layer), res, (style_rect.x, style_rect.y))
        if c.duplicates or s.duplicates:
            raise PluginError("marker numbers used twice: " + ", ".join(map(str, sorted(set(c.duplicates + s.duplicates)))))
        pairing = markers.pair_markers(c, s)
        self.last_markers = pairing
        return pairing

    def stylize(self, preview: bool = False) -> Optional[JobTracker]:
        return self.run_action(lambda: self._stylize(preview))

    def _stylize(self, preview: bool) -> JobTracker:
        if self.job is not None and self.job.active:
            raise PluginError("a job is already running: wait for it or press Cancel")
        client = self._require_client()
        doc = self.api.require_document()
        source, crop, mask = self._content(doc)
        data, depth = self.api.read_pixels(doc, source, crop)
        content = pixels.krita_to_buffer(data, crop.width, crop.height, depth)
        mask_buf = pixels.mask_buffer(mask, crop.width, crop.height) if mask is not None else None
        s = self.settings
        style, style_rect = self._style_image(doc) if s.needs_style_image else (None, None)
        keypoints = None
        self.notice = ""
        if s.engine == "dst" and s.keypoint_mode in ("markers", "both"):
            pairing = self.marker_pairs(doc, crop, style_rect)
            keypoints = pairing.pairs
            self.notice = pairing.warning() or f"{len(pairing.pairs)} marker pair(s) used"
        try:
            options = s.to_options(crop.long_side, keypoints, preview=preview)
        except OptionsError as e:
            raise PluginError(str(e)) from None
        scaled = options.max_side != crop.long_side
        # Lossless selections: the daemon sends the stylized colour unblended with the mask as alpha
        # (mask_mode "alpha"); a result scaled up here gets the full-resolution mask applied after scaling instead.
        overlay = options.engine == "dst" and not preview
        job = client.stylize(content, options, style=style, mask=None if scaled else mask_buf,
                             mask_mode="alpha" if mask_buf is not None and not scaled else None,
                             **({"overlay": True} if overlay else {}))
        if preview:
            self.preview = PreviewSink()
            sink: Any = self.preview
            title = "Preview"
        else:
            style_title = next((st.get("title") for st in self.conn.styles if st.get("name") == s.style_name), None)
            sink = LayerSink(Target(doc, source, crop, mask, depth, s.layer_name(style_title),
                                    scaled=scaled, mask_in_alpha=mask_buf is not None and not scaled,
                                    overlay=overlay), api=self.api)
            title = "Stylize"
        self.job = JobTracker(job, "preview" if preview else "stylize", title, sink, clock=self.clock)
        self.notify()
        return self.job

    def cancel(self) -> None:
        if self.job is not None and self.job.active:
            self.job.cancel()
        self.notify()

    def cancel_training(self) -> None:
        if self.train_job is not None and self.train_job.active:
            self.train_job.cancel()
        self.notify()

    def train(self, name: str, steps: Optional[int] = None, **params: Any) -> Optional[JobTracker]:
        """Train an MT style from the style image/layer; ``params`` go to the daemon's trainer (net, crop, ...)."""
        return self.run_action(lambda: self._train(name, steps, params))

    def _train(self, name: str, steps: Optional[int], params: dict) -> JobTracker:
        name = (name or "").strip()
        if not name:
            raise PluginError("give the new style a name")
        if self.train_job is not None and self.train_job.active:
            raise PluginError("a style is already being trained")
        client = self._require_client()
        doc = self.api.active_document()
        if self.settings.style_source == "layer":
            if doc is None:
                raise PluginError("open the image that holds the painting layer")
            style, _ = self._style_image(doc)
        else:
            style, _ = self._style_image(doc)
        job = client.train(style, name, steps=steps, **params)
        self.train_job = JobTracker(job, "train", f"Training {name!r}", None, clock=self.clock)
        self.notify()
        return self.train_job

    def add_markers(self, count: int = 4) -> Optional[list[int]]:
        return self.run_action(lambda: self._add_markers(count))

    def _add_markers(self, count: int) -> list[int]:
        doc = self.api.require_document()
        if self.settings.style_source != "layer":
            raise PluginError("keypoint markers need the style as a layer of this image: set Style to Layer "
                              "(File > Import as layer) and pick it")
        style_node = self._style_node(doc)
        style_rect = self.api.node_rect(doc, style_node)
        c_layer = self.api.find_layer(doc, markers.CONTENT_LAYER)
        s_layer = self.api.find_layer(doc, markers.STYLE_LAYER)
        was_active = doc.activeNode()
        if c_layer is None:
            source, crop, _ = self._content(doc)
        else:
            source, crop = None, self._marker_area(doc)
        res = self.api.resolution(doc)
        existing = set()
        for layer in (c_layer, s_layer):
            if layer is not None:
                existing |= set(markers.read_markers(self.api.shape_boxes(layer), res).points)
        numbers = markers.next_numbers(existing, count if not existing else 1)
        if c_layer is None:
            c_layer = self.api.create_vector_layer(doc, markers.CONTENT_LAYER, source)
        if s_layer is None:
            s_layer = self.api.create_vector_layer(doc, markers.STYLE_LAYER, style_node)
        w, h = doc.width(), doc.height()
        for layer, rect in ((c_layer, crop), (s_layer, style_rect)):
            pos = markers.default_positions(rect, len(existing) + len(numbers))[len(existing):]
            svg = markers.markers_svg([(n, x, y) for n, (x, y) in zip(numbers, pos)], res, w, h,
                                      markers.marker_radius(rect))
            self.api.add_svg_shapes(doc, layer, svg)
        self.api.restore_active_later(doc, was_active)
        self.notice = (f"Added marker(s) {', '.join(map(str, numbers))}: move each ring onto the same feature in "
                       "the content and in the style")
        self.notify()
        return numbers

    def propose_keypoints(self) -> Optional[JobTracker]:
        """Ask the daemon for the keypoints DST's Automatic mode would use (NBB + cleaning, seconds) and write them
        into the two marker layers when they arrive, numbered 1..K, so the artist can move, delete or add markers
        and then stylize *From markers*."""
        return self.run_action(self._propose_keypoints)

    def _propose_keypoints(self) -> JobTracker:
        if self.job is not None and self.job.active:
            raise PluginError("a job is already running: wait for it or press Cancel")
        client = self._require_client()
        doc = self.api.require_document()
        s = self.settings
        if s.style_source != "layer":
            raise PluginError("proposed keypoints are markers on the style layer: set Style to Layer "
                              "(File > Import as layer) and pick it")
        source, crop, _mask = self._content(doc)
        if source is not None and source.name() in (markers.CONTENT_LAYER, markers.STYLE_LAYER):
            raise PluginError("select the picture's layer, not a marker layer")
        data, depth = self.api.read_pixels(doc, source, crop)
        content = pixels.krita_to_buffer(data, crop.width, crop.height, depth)
        style, style_rect = self._style_image(doc)
        assert style_rect is not None
        try:
            options = dataclasses.replace(s.to_options(crop.long_side, None), engine="dst", keypoint_mode="auto",
                                          keypoints=[]).validate()
        except OptionsError as e:
            raise PluginError(str(e)) from None
        job = client.stylize(content, options, style=style, keypoints_only=True)
        sink = MarkerSink(doc, source, self._style_node(doc), crop, style_rect, api=self.api)
        self.job = JobTracker(job, "keypoints", "Propose keypoints", sink, clock=self.clock)
        self.notice = ""
        self.notify()
        return self.job

    def rerun(self) -> bool:
        """Take the active result layer's recipe back into the settings (the docker shows them; Stylize then makes
        that result again: same recipe, same device, same pixels)."""
        return bool(self.run_action(self._rerun))

    def _rerun(self) -> bool:
        from impasto_protocol.recipe import Recipe
        doc = self.api.require_document()
        node = doc.activeNode()
        text = self.api.read_recipe(doc, node) if node is not None else None
        if not text:
            raise PluginError("the active layer has no Impasto recipe: select a layer Impasto made")
        try:
            recipe = Recipe.from_json(text)
        except OptionsError as e:
            raise PluginError(f"the layer's recipe cannot be used: {e}") from None
        notes = apply_recipe(self.settings, recipe)
        self.settings_version += 1
        self.save_settings()
        self.recipe_source = node
        below = self.api.layer_below(node)
        if below is not None:           # stylize the layer the result was made from
            self.api.set_active(doc, below)
        self.notice = (f"Settings from {node.name()!r}: {recipe.summary()} ({recipe.device}). Press Stylize"
                       + (f"; {'; '.join(notes)}" if notes else ""))
        self.notify()
        return True

    def _marker_area(self, doc) -> Rect:
        sel = self.api.read_selection(doc)
        if sel is not None:
            return sel[0]
        node = doc.activeNode()
        if node is not None and node.name() not in (markers.CONTENT_LAYER, markers.STYLE_LAYER):
            r = self.api.node_rect(doc, node)
            if not r.empty:
                return r
        return self.api.doc_rect(doc)
