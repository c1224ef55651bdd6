"""Krita plugin: the stylize / cancel / markers flows through krita_api against a fake Krita and a fake daemon."""
import struct

import pytest
from krita_plugin_support import install_fake

from impasto_krita import krita_api, markers
from impasto_krita.controller import Controller
from impasto_plugin.jobs import State
from impasto_protocol.images import ImageBuffer
from impasto_protocol.messages import CancelledEvent, ErrorEvent, ProgressEvent, ResultEvent, TileEvent


class FakeJob:
    def __init__(self):
        self.pending = []
        self.cancelled = False

    def poll(self):
        out, self.pending = self.pending, []
        return out

    def cancel(self):
        self.cancelled = True


class FakeClient:
    def __init__(self):
        self.calls = []

    def stylize(self, content, options, style=None, mask=None, mask_mode=None, keypoints_only=False, overlay=False):
        job = FakeJob()
        self.calls.append({"content": content, "options": options, "style": style, "mask": mask, "job": job,
                           "mask_mode": mask_mode, "keypoints_only": keypoints_only, "overlay": overlay})
        return job


@pytest.fixture
def app(monkeypatch):
    return install_fake(monkeypatch)


def make_doc(app, w=20, h=8, depth="U8", profile="sRGB-elle-V2-srgbtrc.icc", resolution=72):
    from krita_fake.krita import Document
    doc = Document(w, h, "RGBA", depth, profile, resolution)
    bg = doc.rootNode().childNodes()[0]
    size = 1 if depth == "U8" else 2
    px = []
    for y in range(h):
        for x in range(w):
            px += [(x * 10) % 256, (y * 20) % 256, 100, 255]                      # B, G, R, A
    data = bytes(px) if size == 1 else struct.pack(f"<{len(px)}H", *(v * 257 for v in px))
    bg.setPixelData(data, 0, 0, w, h)
    app.openWindow().addView(doc)
    return doc, bg


def controller(style_file):
    c = Controller(api=krita_api)
    c.client = FakeClient()
    c.settings.engine = "gatys"
    c.settings.style_source = "file"
    c.settings.style_file = str(style_file)
    return c


@pytest.fixture
def style_png(tmp_path, monkeypatch):
    p = tmp_path / "Starry.png"
    p.write_bytes(b"not read: read_image_file is replaced")
    monkeypatch.setattr(krita_api, "read_image_file", lambda path: ImageBuffer(4, 4, 4, "u8", bytes(64)))
    return p


def blended_result(call, value=(0, 0, 255)):
    """What the daemon would send: the content's format (BGR), stylized = a flat colour; with ``mask_mode`` "alpha"
    the colour unblended and the mask multiplied into alpha, else mask-blended with the content."""
    content, mask = call["content"], call["mask"]
    out = bytearray(content.data)
    n = content.width * content.height
    for i in range(n):
        m = (mask.data[i] / 255) if mask is not None else 1.0
        if call.get("mask_mode") == "alpha":
            out[4 * i:4 * i + 3] = bytes(value)
            out[4 * i + 3] = round(content.data[4 * i + 3] * m)
            continue
        for c in range(3):
            out[4 * i + c] = round(m * value[c] + (1 - m) * content.data[4 * i + c])
    return ImageBuffer(content.width, content.height, 4, content.dtype, bytes(out), bgr=True)


def test_stylize_selection_makes_a_new_layer_with_transparency(app, style_png):
    from krita_fake.krita import Selection
    doc, bg = make_doc(app, w=30, h=12)
    before = bg.pixelData(0, 0, 30, 12)
    sel = Selection(30, 12)
    sel.select(2, 1, 20, 4, 255)
    sel.select(2, 1, 1, 4, 128)                 # a feathered column
    doc.setSelection(sel)
    c = controller(style_png)
    tracker = c.stylize()
    assert tracker is not None, c.error
    call = c.client.calls[0]
    assert (call["content"].width, call["content"].height, call["content"].bgr) == (20, 4, True)
    assert call["mask"].channels == 1 and call["mask"].data[0] == 128 and call["mask"].data[1] == 255
    assert call["mask_mode"] == "alpha"                                 # the colour comes back unblended
    assert call["options"].max_side == 20 and call["style"].width == 4
    call["job"].pending += [ProgressEvent(0.5, "step 1"), ResultEvent(blended_result(call))]
    c.pump()
    assert tracker.state is State.DONE, tracker.message
    layers = [n.name() for n in doc.rootNode().childNodes()]
    assert layers == ["Background", "Starry · Gatys"]
    new = doc.rootNode().childNodes()[1]
    b = new.bounds()
    assert (b.x(), b.y(), b.width(), b.height()) == (2, 1, 20, 4)
    assert bg.pixelData(0, 0, 30, 12) == before                      # source untouched
    inside = new.pixelData(4, 2, 1, 1)
    assert inside == bytes([0, 0, 255, 255])
    edge = new.pixelData(2, 2, 1, 1)
    assert edge[3] == 128 and edge[2] == 255                       # feathered: stylized colour, half alpha
    assert new.pixelData(0, 0, 1, 1)[3] == 0 and new.pixelData(25, 6, 1, 1)[3] == 0


def test_cancel_after_tiles_leaves_nothing(app, style_png):
    doc, bg = make_doc(app)
    c = controller(style_png)
    tracker = c.stylize()
    call = c.client.calls[0]
    assert call["mask"] is None and call["content"].width == 20
    tile = ImageBuffer(4, 4, 3, "u8", bytes([9, 9, 9] * 16))
    call["job"].pending += [TileEvent(0, 0, tile)]
    c.pump()
    assert [n.name() for n in doc.rootNode().childNodes()] == ["Background", "Starry · Gatys (painting…)"]
    c.cancel()
    assert call["job"].cancelled
    call["job"].pending += [CancelledEvent()]
    c.pump()
    assert tracker.state is State.CANCELLED
    assert [n.name() for n in doc.rootNode().childNodes()] == ["Background"]


def test_failed_job_inserts_nothing_and_shows_the_message(app, style_png):
    doc, _ = make_doc(app)
    c = controller(style_png)
    c.stylize()
    c.client.calls[0]["job"].pending += [ErrorEvent("out_of_memory", "the job ran out of memory")]
    c.pump()
    assert [n.name() for n in doc.rootNode().childNodes()] == ["Background"]
    assert "ran out of memory" in c.error


def test_16bit_linear_document_travels_as_16bit_srgb(app, style_png):
    doc, bg = make_doc(app, depth="U16", profile="sRGB-elle-V2-g10.icc")
    before = bg.pixelData(0, 0, 20, 8)
    c = controller(style_png)
    tracker = c.stylize()
    call = c.client.calls[0]
    assert call["content"].dtype == "u16" and call["content"].nbytes == 20 * 8 * 8
    result = ImageBuffer(20, 8, 4, "u16", struct.pack("<4H", 0, 0, 65535, 65535) * 160, bgr=True)
    call["job"].pending += [ResultEvent(result)]
    c.pump()
    assert tracker.state is State.DONE, tracker.message
    new = doc.rootNode().childNodes()[1]
    assert new.colorDepth() == "U16" and new.colorProfile() == "sRGB-elle-V2-g10.icc"
    assert struct.unpack("<4H", new.pixelData(3, 3, 1, 1)) == (0, 0, 65535, 65535)
    assert bg.pixelData(0, 0, 20, 8) == before and bg.colorProfile() == "sRGB-elle-V2-g10.icc"


def test_add_markers_then_read_pairs_at_pixel_positions(app, style_png):
    doc, bg = make_doc(app, w=40, h=20, resolution=144)
    style = doc.createNode("Painting", "paintlayer")
    style.setPixelData(bytes([1, 2, 3, 255]) * (10 * 10), 30, 10, 10, 10)
    doc.rootNode().addChildNode(style, bg)
    doc.setActiveNode(bg)
    c = controller(style_png)
    c.settings.style_source, c.settings.style_layer = "layer", "Painting"
    assert c.add_markers() == [1, 2, 3, 4], c.error
    names = [n.name() for n in doc.rootNode().childNodes()]
    assert names == ["Background", markers.CONTENT_LAYER, "Painting", markers.STYLE_LAYER]
    pairing = c.marker_pairs(doc, krita_api.Rect(0, 0, 40, 20), krita_api.Rect(30, 10, 10, 10))
    assert pairing.numbers == [1, 2, 3, 4]
    assert pairing.pairs[0].content == pytest.approx((10.0, 5.0))     # 1/4 of the 40x20 content
    assert pairing.pairs[3].style == pytest.approx((7.5, 7.5))        # 3/4 of the 10x10 style, style-relative
    assert c.add_markers() == [5]                                     # a second press adds one more pair
    # DST from markers sends them; with the content-marker layer active, the picture under it is stylized
    c.settings.engine, c.settings.keypoint_mode = "dst", "markers"
    doc.setActiveNode(doc.rootNode().childNodes()[1])
    assert c.stylize() is not None, c.error
    opts = c.client.calls[-1]["options"]
    assert opts.keypoint_mode == "markers" and len(opts.keypoints) == 5
    assert c.client.calls[-1]["style"].width == 10 and c.client.calls[-1]["content"].width == 40


def test_problems_become_messages(app, style_png):
    from krita_fake.krita import Selection
    c = controller(style_png)
    assert c.stylize() is None and c.error == "open an image first"
    doc, bg = make_doc(app)
    sel = Selection(20, 8)
    sel.select(0, 0, 10, 5, 255)
    doc.setSelection(sel)
    assert c.stylize() is None and "too small" in c.error
    doc.setSelection(None)
    c.settings.style_file = "/nonexistent/style.png"
    assert c.stylize() is None and "does not exist" in c.error
    c.settings.style_source = "file"
    assert c.add_markers() is None and "style as a layer" in c.error
    c.settings.engine = "mt"
    assert c.stylize() is None and "style name" in c.error


def test_preview_runs_small_and_inserts_nothing(app, style_png):
    doc, _ = make_doc(app, w=600, h=20)
    c = controller(style_png)
    tracker = c.stylize(preview=True)
    assert tracker is not None, c.error
    call = c.client.calls[0]
    assert call["options"].max_side == 256 and call["content"].width == 600
    small = ImageBuffer(256, 9, 4, "u8", bytes(256 * 9 * 4), bgr=True)
    call["job"].pending += [ResultEvent(small)]
    c.pump()
    assert tracker.state is State.DONE and c.preview.image is small
    assert [n.name() for n in doc.rootNode().childNodes()] == ["Background"]


def test_training_job_survives_and_refreshes_the_style_list(app, style_png):
    doc, _ = make_doc(app)
    c = controller(style_png)
    trained = []

    def train(style, name, steps=None):
        trained.append((style.width, name, steps))
        job = FakeJob()
        c.client.train_job = job
        return job

    c.client.train = train
    c.client.list_styles = lambda thumbnails=True: [{"name": "my-style", "title": "My style", "thumbnail": None}]
    assert c.train("  ") is None and "name" in c.error
    tracker = c.train("my-style", 500)
    assert tracker is not None, c.error
    assert trained == [(4, "my-style", 500)]
    assert c.busy and c.train("again") is None and "already" in c.error
    c.client.train_job.pending += [ProgressEvent(0.5, "step 250/500")]
    c.pump()
    assert "50%" in tracker.status_text()
    c.client.train_job.pending += [ResultEvent(None, {"name": "my-style"})]
    c.pump()
    assert tracker.state is State.DONE and not c.busy
    assert [s["name"] for s in c.conn.styles] == ["my-style"] and "my-style" in c.notice


def test_tiles_of_a_smaller_output_are_not_painted(app, style_png):
    doc, _ = make_doc(app, w=40, h=20)
    c = controller(style_png)
    c.settings.output_mode, c.settings.max_side = "max_side", 20
    c.stylize()
    call = c.client.calls[0]
    assert call["options"].max_side == 20
    call["job"].pending += [TileEvent(0, 0, ImageBuffer(4, 4, 3, "u8", bytes(48)))]
    c.pump()
    assert [n.name() for n in doc.rootNode().childNodes()] == ["Background"]


def test_daemon_dying_mid_job_fails_it_and_cleans_up(app, style_png):
    doc, _ = make_doc(app)
    c = controller(style_png)
    c.conn.state = "connected"
    c.client.daemon_alive = True
    c.client.close = lambda: None
    tracker = c.stylize()
    call = c.client.calls[0]
    call["job"].pending += [TileEvent(0, 0, ImageBuffer(4, 4, 3, "u8", bytes(48)))]
    c.pump()
    assert len(doc.rootNode().childNodes()) == 2                 # a tile was painted progressively
    c.client.daemon_alive = False
    c.pump()
    assert tracker.state is State.FAILED and "daemon stopped" in c.error
    assert [n.name() for n in doc.rootNode().childNodes()] == ["Background"]
    assert c.conn.state == "disconnected" and c.client is None


def test_propose_keypoints_writes_numbered_markers_and_runs_from_them(app, style_png):
    doc, bg = make_doc(app, w=40, h=20, resolution=144)
    style = doc.createNode("Painting", "paintlayer")
    style.setPixelData(bytes([1, 2, 3, 255]) * (16 * 10), 20, 8, 16, 10)
    doc.rootNode().addChildNode(style, bg)
    doc.setActiveNode(bg)
    c = controller(style_png)
    c.settings.engine, c.settings.keypoint_mode = "gatys", "auto"          # proposing is DST's, from any engine
    c.settings.style_source, c.settings.style_layer = "layer", "Painting"
    tracker = c.propose_keypoints()
    assert tracker is not None, c.error
    call = c.client.calls[-1]
    assert call["keypoints_only"] and call["options"].engine == "dst" and call["options"].keypoint_mode == "auto"
    assert (call["style"].width, call["style"].height) == (16, 10)
    assert [n.name() for n in doc.rootNode().childNodes()] == ["Background", "Painting"]   # nothing before the result
    proposed = [{"content": [3.25, 4.5], "style": [1.75, 2.0]}, {"content": [30.0, 12.125], "style": [12.5, 8.25]},
                {"content": [20.5, 2.0], "style": [8.0, 1.5]}]
    call["job"].pending += [ResultEvent(None, {"keypoints": proposed})]
    c.pump()
    assert tracker.state is State.DONE, tracker.message
    names = [n.name() for n in doc.rootNode().childNodes()]
    assert names == ["Background", markers.CONTENT_LAYER, "Painting", markers.STYLE_LAYER]
    c_layer = doc.rootNode().childNodes()[1]
    assert sorted(s.name() for s in c_layer.shapes() if markers.marker_number(s.name()) is not None) == \
        ["kp1", "kp2", "kp3"]
    pairing = c.marker_pairs(doc, krita_api.Rect(0, 0, 40, 20), krita_api.Rect(20, 8, 16, 10))
    assert pairing.numbers == [1, 2, 3]
    for got, want in zip(pairing.pairs, proposed):                          # at NBB's pixels, within 0.5 px
        assert got.content == pytest.approx(tuple(want["content"]), abs=0.5)
        assert got.style == pytest.approx(tuple(want["style"]), abs=0.5)
    assert c.settings.keypoint_mode == "markers" and "Proposed 3 keypoints" in c.notice
    # unchanged markers: the DST job gets the proposed pairs; a moved marker moves its pair
    c.settings.engine = "dst"
    assert c.stylize() is not None, c.error
    sent = c.client.calls[-1]["options"]
    assert sent.keypoint_mode == "markers"
    assert [kp.content for kp in sent.keypoints] == [pytest.approx(tuple(p["content"]), abs=1e-3) for p in proposed]
    c.client.calls[-1]["job"].pending += [CancelledEvent("requested")]
    c.pump()
    ring = next(s for s in c_layer.shapes() if s.name() == "kp2")
    bb = ring.boundingBox()
    ring.setPosition((bb.x() + markers.px_to_pt(6, 144), bb.y()))               # 6 px to the right
    assert c.stylize() is not None, c.error
    moved = c.client.calls[-1]["options"].keypoints
    assert moved[1].content == pytest.approx((36.0, 12.125), abs=1e-3) and moved[0].content == sent.keypoints[0].content


def test_a_failed_proposal_leaves_the_markers_alone(app, style_png):
    doc, bg = make_doc(app, w=40, h=20)
    style = doc.createNode("Painting", "paintlayer")
    style.setPixelData(bytes([1, 2, 3, 255]) * 100, 0, 0, 10, 10)
    doc.rootNode().addChildNode(style, bg)
    doc.setActiveNode(bg)
    c = controller(style_png)
    c.settings.style_source, c.settings.style_layer = "layer", "Painting"
    assert c.add_markers() == [1, 2, 3, 4]
    before = [(n.name(), len(n.shapes()) if hasattr(n, "shapes") else 0) for n in doc.rootNode().childNodes()]
    doc.setActiveNode(bg)
    tracker = c.propose_keypoints()
    c.client.calls[-1]["job"].pending += [ErrorEvent("engine_error", "NBB failed")]
    c.pump()
    assert tracker.state is State.FAILED and "NBB failed" in c.error
    assert [(n.name(), len(n.shapes()) if hasattr(n, "shapes") else 0) for n in doc.rootNode().childNodes()] == before


def test_result_keeps_its_recipe_and_rerun_puts_it_back_into_the_settings(app, style_png):
    from impasto_protocol.recipe import Recipe, StyleSource
    doc, bg = make_doc(app, w=30, h=12)
    c = controller(style_png)
    c.settings.engine, c.settings.style_name, c.settings.seed, c.settings.steps = "mt", "starry", 5, 0
    tracker = c.stylize()
    call = c.client.calls[-1]
    assert call["options"].seed == 5
    recipe = Recipe(options={**call["options"].to_dict(), "size": 24, "strength": 0.75, "seed": 5},
                    style=StyleSource("model", "ab" * 32, "starry"), impasto="0.1.0", torch="2.14.1", device="cpu",
                    precision="fp32")
    call["job"].pending += [ResultEvent(blended_result(call), {"recipe": recipe.to_dict()})]
    c.pump()
    assert tracker.state is State.DONE
    result = doc.rootNode().childNodes()[1]
    assert Recipe.from_json(krita_api.read_recipe(doc, result)).to_dict() == recipe.to_dict()
    assert krita_api.read_recipe(doc, bg) is None
    c.settings.engine, c.settings.style_name, c.settings.seed, c.settings.strength = "gatys", "", 0, 1.0
    doc.setActiveNode(result)
    assert c.rerun(), c.error
    s = c.settings
    assert (s.engine, s.style_name, s.seed, s.size, s.strength) == ("mt", "starry", 5, 24, 0.75)
    assert doc.activeNode() is bg and "seed 5" in c.notice and c.settings_version == 1
    assert c.stylize() is not None, c.error                 # the same job again
    again = c.client.calls[-1]["options"]
    assert (again.engine, again.style_name, again.seed, again.size, again.strength) == ("mt", "starry", 5, 24, 0.75)
    doc.setActiveNode(bg)
    assert not c.rerun() and "no Impasto recipe" in c.error


def test_dst_result_brings_its_warp_overlay_as_a_hidden_group_over_the_result(app, style_png):
    doc, bg = make_doc(app, w=30, h=12)
    c = controller(style_png)
    c.settings.engine, c.settings.keypoint_mode = "dst", "auto"
    tracker = c.stylize()
    call = c.client.calls[-1]
    assert call["overlay"] is True
    dot = bytearray(30 * 12 * 4)
    dot[(5 * 30 + 7) * 4:(5 * 30 + 7) * 4 + 4] = bytes([255, 0, 0, 255])           # RGBA: one red pixel at (7, 5)
    grid = bytes([0, 255, 0, 128]) * (30 * 12)
    overlays = {"keypoints": ImageBuffer(30, 12, 4, "u8", bytes(dot)), "grid": ImageBuffer(30, 12, 4, "u8", grid)}
    call["job"].pending += [ResultEvent(blended_result(call), {}, overlays)]
    c.pump()
    assert tracker.state is State.DONE, tracker.message
    names = [n.name() for n in doc.rootNode().childNodes()]
    assert names == ["Background", "Starry · DST", "Starry · DST · warp overlay"]
    group = doc.rootNode().childNodes()[2]
    assert group.type() == "grouplayer" and not group.visible()                      # hidden by default
    assert [n.name() for n in group.childNodes()] == ["warp grid", "keypoints → targets"]
    kp = group.childNodes()[1]
    assert kp.pixelData(7, 5, 1, 1) == bytes([0, 0, 255, 255])                       # BGRA, where it was drawn
    assert kp.pixelData(8, 5, 1, 1)[3] == 0
    b = group.childNodes()[0].bounds()
    assert (b.x(), b.y(), b.width(), b.height()) == (0, 0, 30, 12)                    # aligned with the result
    assert c.stylize(preview=True) is not None
    assert c.client.calls[-1]["overlay"] is False                                     # previews bring none


# -- the Server setting (impasto_plugin.servers): the local daemon or a paired remote server --------------------------
class HelloClient(FakeClient):
    """A connected client as ``servers.connect`` returns it."""

    def __init__(self, server):
        super().__init__()
        self.server, self.closed = server, False
        self.daemon_alive = True

    def hello(self):
        return {"devices": ["cuda:0"], "engines": ["gatys"], "styles": []}

    def list_styles(self, thumbnails=False):
        return []

    def close(self, cancel_jobs=True):
        self.closed = True


@pytest.fixture
def connects(monkeypatch):
    """``servers.connect`` recorded: the servers asked for (and whether autostart was); ``fail`` makes it raise."""
    from impasto_plugin import servers
    import impasto_protocol.client as client_mod
    monkeypatch.setattr(client_mod, "spawn_daemon", lambda *a, **k: pytest.fail("nothing may be started"))
    log = {"calls": [], "fail": None}

    def connect(server, timeout=5.0, autostart=False, **kw):
        log["calls"].append((server, autostart))
        if log["fail"] is not None:
            raise log["fail"]
        return HelloClient(server)
    monkeypatch.setattr(servers, "connect", connect)
    return log


def test_server_setting_is_saved_and_a_remote_is_connected_by_name(app, connects):
    from impasto_krita.settings import Settings
    c = Controller(api=krita_api)
    assert c.server == "" and c.set_server("studio")
    assert connects["calls"] == [("studio", False)]
    assert c.conn.state == "connected" and c.conn.message == "Connected to studio · cuda:0"
    assert Settings.from_json(krita_api.read_setting("settings")).server == "studio"       # persisted
    assert Controller(api=krita_api).server == "studio"                                   # and read back
    first = c.client
    assert c.set_server("local") and first.closed and c.server == "" and c.conn.message == "Connected · cuda:0"


def test_a_remote_server_is_never_started_and_its_problem_is_shown(app, connects):
    from impasto_plugin import servers
    c = Controller(api=krita_api)
    c.settings.server = "studio"
    connects["fail"] = servers.ServerError("The server 'studio' at tcp://10.0.0.5:5555 did not answer within 3 s: "
                                           "is `impasto serve --listen` running there?", "studio")
    assert not c.connect(autostart=True) and not c.start_daemon()          # Start daemon / Connect: connects only
    assert connects["calls"] == [("studio", False), ("studio", False)]
    assert c.conn.state == "error" and "did not answer" in c.conn.message and "Press Connect" in c.conn.message
    connects["fail"] = servers.UnknownServer("no server named 'studio' is paired with this computer", "studio")
    assert not c.connect() and c.conn.message == "no server named 'studio' is paired with this computer"


def test_an_unknown_server_name_is_explained_in_the_docker(app, tmp_path, monkeypatch):
    monkeypatch.setenv("IMPASTO_CONFIG_DIR", str(tmp_path / "config"))
    c = Controller(api=krita_api)
    c.settings.server = "attic"
    assert not c.connect(autostart=True)
    assert c.conn.state == "error" and "no server named 'attic' is paired" in c.conn.message
    assert "impasto remote add attic" in c.conn.message


def test_switching_servers_waits_for_the_running_job(app, style_png, connects):
    make_doc(app)
    c = controller(style_png)
    c.conn.state = "connected"
    assert c.stylize() is not None
    assert not c.set_server("studio") and "job is running" in c.error and c.server == ""
    assert connects["calls"] == []


def test_a_remote_server_vanishing_mid_job_is_named_and_nothing_is_inserted(app, style_png, connects):
    doc, _ = make_doc(app)
    c = Controller(api=krita_api)
    c.settings.engine, c.settings.style_source, c.settings.style_file = "gatys", "file", str(style_png)
    assert c.set_server("studio")
    c.client.dead_after = 5.0
    tracker = c.stylize()
    call = c.client.calls[0]
    call["job"].pending += [ProgressEvent(0.2, "step 1"), TileEvent(0, 0, ImageBuffer(4, 4, 3, "u8", bytes(48)))]
    c.pump()
    assert len(doc.rootNode().childNodes()) == 2 and tracker.fraction == pytest.approx(0.2)
    c.client.daemon_alive = False                          # no pong for REMOTE_DEAD_AFTER seconds
    c.pump()
    assert tracker.state is State.FAILED
    assert "the server 'studio' stopped answering (nothing for 5 s); nothing was changed" in c.error
    assert [n.name() for n in doc.rootNode().childNodes()] == ["Background"]          # the painted tile is gone
    assert c.conn.state == "disconnected" and "Press Connect" in c.conn.message and c.client is None
