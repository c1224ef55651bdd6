"""Tests that run INSIDE real Krita (5.1.5, kritarunner under Xvfb) with the plugin installed by
``impasto install-plugin krita`` and a real daemon with the test engines (``tests/support/serve.py``, started by
run_krita_tests.sh; IMPASTO_RUNTIME_DIR points at it).  Not collected by the normal suite (the file name does not
match test_*.py); run with tests/editors/run_krita_tests.sh.
"""
from __future__ import annotations

import json
import os
import struct
import time

import pytest
from krita import Krita, Selection
from PyQt5.QtCore import QByteArray, QPointF
from PyQt5.QtGui import QColor, QImage
from PyQt5.QtWidgets import QApplication

import impasto_krita
from impasto_krita import krita_api, markers
from impasto_krita.controller import Controller
from impasto_krita.extension import ImpastoExtension
from impasto_plugin.jobs import State

W, H = 96, 64
PYKRITA = os.path.dirname(os.path.dirname(os.path.abspath(impasto_krita.__file__)))


def pump(secs: float = 0.2) -> None:
    end = time.time() + secs
    while time.time() < end:
        QApplication.processEvents()
        time.sleep(0.01)


def wait(ctrl: Controller, cond, timeout: float = 120.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        ctrl.pump()
        QApplication.processEvents()
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out; job: {ctrl.job and ctrl.job.status_text()}; error: {ctrl.error}")


@pytest.fixture(scope="session")
def window():
    app = Krita.instance()
    return app.activeWindow() or app.openWindow()


@pytest.fixture
def png(tmp_path):
    """A 96x64 picture: horizontal gradient, a red square at (10, 12)."""
    img = QImage(W, H, QImage.Format_RGBA8888)
    for y in range(H):
        for x in range(W):
            img.setPixelColor(x, y, QColor(40 + x, 80 + y, 200, 255))
    for y in range(12, 32):
        for x in range(10, 30):
            img.setPixelColor(x, y, QColor(255, 0, 0, 255))
    path = str(tmp_path / "content.png")
    assert img.save(path)
    return path


def open_doc(window, path):
    doc = Krita.instance().openDocument(path)
    doc.setBatchmode(True)
    window.addView(doc)
    doc.waitForDone()
    return doc


@pytest.fixture
def ctrl():
    c = Controller()
    assert c.connect(), c.conn.message
    engines = c.conn.info.get("engines", [])                # the test engines are listed there too
    c.settings.engine = "gatys" if "gatys" in engines else "identity"
    c.settings.style_source = "file"
    c.settings.size, c.settings.steps = 32, 2
    c.settings.output_mode = "canvas"
    yield c
    c.disconnect()


def write_pattern(tmp_path) -> str:
    """A 40x40 colour pattern, "Test pattern.png": a style image."""
    img = QImage(40, 40, QImage.Format_RGBA8888)
    for y in range(40):
        for x in range(40):
            img.setPixelColor(x, y, QColor((x * 37) % 256, (y * 53) % 256, ((x + y) * 11) % 256, 255))
    path = str(tmp_path / "Test pattern.png")
    img.save(path)
    return path


@pytest.fixture
def style_png(tmp_path, ctrl):
    path = write_pattern(tmp_path)
    ctrl.settings.style_file = path
    return path


def layer_names(doc):
    """Layers, bottom-up, without Krita's global selection mask."""
    return [n.name() for n in doc.rootNode().childNodes() if n.type() != "selectionmask"]


def test_plugin_runs_on_vendored_pyzmq():
    import zmq
    import impasto_plugin.deps
    assert impasto_plugin.deps.zmq_problem("krita") is None
    assert os.path.join("impasto_krita", "vendor") in zmq.__file__, zmq.__file__
    assert os.path.join("impasto_krita", "vendor", "impasto_plugin") in impasto_plugin.deps.__file__
    assert impasto_krita.__file__.startswith(PYKRITA) and "pykrita" in PYKRITA


def test_stylize_selection_into_new_layer(window, png, ctrl, style_png):
    doc = open_doc(window, png)
    src = doc.rootNode().childNodes()[0]
    doc.setActiveNode(src)
    before = bytes(src.pixelData(0, 0, W, H))
    sel = Selection()
    sel.select(20, 10, 50, 40, 255)
    sel.select(20, 10, 4, 40, 128)           # a feathered strip at the left edge
    doc.setSelection(sel)
    tracker = ctrl.stylize()
    assert tracker is not None, ctrl.error
    wait(ctrl, lambda: not tracker.active)
    assert tracker.state is State.DONE, tracker.status_text()
    doc.waitForDone()
    expected = f"Test pattern · {'Gatys' if ctrl.settings.engine == 'gatys' else ctrl.settings.engine}"
    assert layer_names(doc) == ["Background", expected]
    new = doc.rootNode().childNodes()[1]
    b = new.bounds()
    assert (b.x(), b.y(), b.width(), b.height()) == (20, 10, 50, 40)
    assert bytes(src.pixelData(0, 0, W, H)) == before                  # source byte-identical
    outside = bytes(new.pixelData(0, 0, W, H))
    alphas = outside[3::4]
    for (x, y) in [(0, 0), (19, 30), (70, 30), (40, 9), (40, 50), (95, 63)]:
        assert alphas[y * W + x] == 0, (x, y)                         # outside the selection: transparent
    assert alphas[30 * W + 40] == 255 and alphas[30 * W + 21] == 128  # inside / feathered
    doc.setModified(False)
    doc.close()


def test_result_is_one_undo_step(window, png, ctrl, style_png):
    doc = open_doc(window, png)
    doc.setActiveNode(doc.rootNode().childNodes()[0])
    tracker = ctrl.stylize()
    assert tracker is not None, ctrl.error
    wait(ctrl, lambda: not tracker.active)
    assert tracker.state is State.DONE, tracker.status_text()
    assert len(layer_names(doc)) == 2
    Krita.instance().action("edit_undo").trigger()
    pump(0.3)
    doc.waitForDone()
    assert layer_names(doc) == ["Background"]
    doc.setModified(False)
    doc.close()


def test_markers_added_by_the_action_are_read_in_pixels(window, png, ctrl):
    doc = open_doc(window, png)
    doc.setResolution(144)                    # markers are in points: 1 pt = 2 px here
    root = doc.rootNode()
    src = root.childNodes()[0]
    style = doc.createNode("Painting", "paintlayer")
    style.setPixelData(QByteArray(bytes([0, 128, 255, 255]) * (40 * 24)), 50, 30, 40, 24)
    root.addChildNode(style, src)
    pump(0.2)                                 # Krita makes the inserted layer active a moment later
    doc.setActiveNode(src)
    pump(0.2)
    assert doc.activeNode().name() == "Background"
    ctrl.settings.style_source, ctrl.settings.style_layer = "layer", "Painting"
    ext = ImpastoExtension(Krita.instance())
    ext.controller = ctrl                     # the extension's actions drive this controller
    ext.createActions(window)
    ext.actions["impasto_add_markers"].trigger()
    assert not ctrl.error, ctrl.error
    assert layer_names(doc) == ["Background", markers.CONTENT_LAYER, "Painting", markers.STYLE_LAYER], layer_names(doc)
    c_layer = krita_api.find_layer(doc, markers.CONTENT_LAYER)
    assert sorted(s.name() for s in c_layer.shapes()) == ["kp1", "kp1 label", "kp2", "kp2 label", "kp3",
                                                          "kp3 label", "kp4", "kp4 label"]
    pairing = ctrl.marker_pairs(doc, krita_api.Rect(0, 0, W, H), krita_api.Rect(50, 30, 40, 24))
    assert pairing.numbers == [1, 2, 3, 4]
    assert pairing.pairs[0].content == pytest.approx((24.0, 16.0), abs=0.01)   # 1/4 of 96x64
    assert pairing.pairs[3].content == pytest.approx((72.0, 48.0), abs=0.01)
    assert pairing.pairs[1].style == pytest.approx((30.0, 6.0), abs=0.01)      # (3/4, 1/4) of the 40x24 style
    # the artist drags ring 2 on the content: its centre moves to (60 px, 10 px) = (30 pt, 5 pt)
    ring = [s for s in c_layer.shapes() if s.name() == "kp2"][0]
    centre = ring.boundingBox().center()
    ring.setPosition(ring.position() + QPointF(30 - centre.x(), 5 - centre.y()))
    pump(0.2)
    pairing = ctrl.marker_pairs(doc, krita_api.Rect(0, 0, W, H), krita_api.Rect(50, 30, 40, 24))
    assert pairing.pairs[1].content == pytest.approx((60.0, 10.0), abs=0.05)
    doc.setModified(False)
    doc.close()


def test_cancelled_job_inserts_nothing(window, png, ctrl):
    """Cancel from the docker while a slow job runs; the job also survives closing and reopening the docker."""
    from impasto_krita.docker import ImpastoDocker
    import impasto_krita.instance as ext_mod
    doc = open_doc(window, png)
    doc.setActiveNode(doc.rootNode().childNodes()[0])
    ctrl.settings.engine, ctrl.settings.steps, ctrl.settings.learning_rate = "sleep", 400, 0.05   # ~20 s
    old = ext_mod._controller
    ext_mod._controller = ctrl
    try:
        docker = ImpastoDocker()
        docker.stylize_btn.click()
        tracker = ctrl.job
        assert tracker is not None, ctrl.error
        wait(ctrl, lambda: tracker.fraction > 0.02 or not tracker.active, timeout=60)
        assert tracker.state is State.RUNNING, tracker.status_text()
        docker.close()
        docker.deleteLater()
        pump(0.2)
        reopened = ImpastoDocker()                       # a new docker shows the running job
        assert reopened.cancel_btn.isEnabled() and "Stylize:" in reopened.job_label.text()
        assert 0 < reopened.progress.value() < 1000
        reopened.cancel_btn.click()
        wait(ctrl, lambda: not tracker.active, timeout=30)
        assert tracker.state is State.CANCELLED, tracker.status_text()
        assert layer_names(doc) == ["Background"]
        assert "nothing was changed" in reopened.job_label.text()
        reopened.close()
    finally:
        ext_mod._controller = old
    doc.setModified(False)
    doc.close()


def test_16bit_document(window, ctrl):
    app = Krita.instance()
    doc = app.createDocument(64, 48, "deep", "RGBA", "U16", "", 72.0)
    doc.setBatchmode(True)
    window.addView(doc)
    src = doc.rootNode().childNodes()[0]
    assert src.colorDepth() == "U16"
    px = b"".join(struct.pack("<4H", 1000 * (x % 8), 30000, 60000, 65535) for _ in range(48) for x in range(64))
    src.setPixelData(QByteArray(px), 0, 0, 64, 48)
    doc.setActiveNode(src)
    before = bytes(src.pixelData(0, 0, 64, 48))
    ctrl.settings.engine = "identity"
    tracker = ctrl.stylize()
    assert tracker is not None, ctrl.error
    wait(ctrl, lambda: not tracker.active)
    assert tracker.state is State.DONE, tracker.status_text()
    new = doc.rootNode().childNodes()[1]
    assert new.colorDepth() == "U16" and new.colorProfile() == doc.colorProfile()
    assert bytes(src.pixelData(0, 0, 64, 48)) == before
    out = struct.unpack("<4H", bytes(new.pixelData(10, 10, 1, 1)))
    ref = struct.unpack("<4H", before[(10 * 64 + 10) * 8:(10 * 64 + 11) * 8])
    # identity engine through 16-bit sRGB and back to the document's linear profile
    assert all(abs(a - b) <= 700 for a, b in zip(out, ref)), (out, ref)
    doc.setModified(False)
    doc.close()


def test_errors_show_in_the_docker_not_as_tracebacks(window, png, ctrl):
    from impasto_krita.docker import ImpastoDocker
    doc = open_doc(window, png)
    doc.setActiveNode(doc.rootNode().childNodes()[0])
    ctrl.settings.engine = "gatys"
    ctrl.settings.style_file = "/no/such/painting.png"
    import impasto_krita.instance as ext_mod
    old = ext_mod._controller
    ext_mod._controller = ctrl
    try:
        docker = ImpastoDocker()
        assert docker.status.text().startswith("Connected"), docker.status.text()
        docker.stylize_btn.click()
        pump(0.1)
        assert "does not exist" in docker.error.text() and not docker.error.isHidden()
        assert layer_names(doc) == ["Background"]
    finally:
        ext_mod._controller = old
    doc.setModified(False)
    doc.close()


def test_preview_shows_in_the_docker_and_inserts_nothing(window, png, ctrl, style_png):
    from impasto_krita.docker import ImpastoDocker
    import impasto_krita.instance as ext_mod
    doc = open_doc(window, png)
    doc.setActiveNode(doc.rootNode().childNodes()[0])
    old = ext_mod._controller
    ext_mod._controller = ctrl
    try:
        docker = ImpastoDocker()
        docker.preview_btn.click()
        assert ctrl.job is not None and ctrl.job.kind == "preview", ctrl.error
        wait(ctrl, lambda: not ctrl.job.active)
        assert ctrl.job.state is State.DONE, ctrl.job.status_text()
        docker.refresh()
        pm = docker.preview.pixmap()
        assert pm is not None and not pm.isNull() and not docker.preview.isHidden()
        assert layer_names(doc) == ["Background"]
        docker.close()
    finally:
        ext_mod._controller = old
    doc.setModified(False)
    doc.close()


def test_start_daemon_from_krita(tmp_path, monkeypatch):
    """The docker's Start daemon: spawns `impasto serve` with the command install-plugin recorded, then connects."""
    from impasto_krita import controller as controller_mod
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("IMPASTO_RUNTIME_DIR", str(runtime))
    assert controller_mod.serve_command()[-1] == "serve"          # from install.json
    c = Controller()
    assert not c.connect()                                          # nothing runs there yet
    assert c.conn.state == "disconnected" and "Start daemon" in c.conn.message
    assert c.connect(autostart=True) and c.conn.state == "starting"
    wait(c, lambda: c.conn.state != "starting", timeout=120)
    assert c.conn.state == "connected", c.conn.message
    c.client.shutdown()
    c.disconnect()


def test_smaller_output_is_scaled_to_the_layer_and_style_files_read(window, png, ctrl, style_png):
    style = krita_api.read_image_file(style_png)
    assert (style.width, style.height, style.channels, style.dtype) == (40, 40, 4, "u8")
    first = bytes(style.data[0:4])
    assert first == bytes([0, 0, 0, 255])                               # RGBA of pixel (0, 0) of the pattern
    doc = open_doc(window, png)
    doc.setActiveNode(doc.rootNode().childNodes()[0])
    ctrl.settings.engine = "identity"
    ctrl.settings.output_mode, ctrl.settings.max_side = "max_side", 32
    tracker = ctrl.stylize()
    assert tracker is not None, ctrl.error
    wait(ctrl, lambda: not tracker.active)
    assert tracker.state is State.DONE, tracker.status_text()
    new = doc.rootNode().childNodes()[1]
    b = new.bounds()
    assert (b.width(), b.height()) == (W, H)                          # computed at 32x21, scaled back up
    px = bytes(new.pixelData(50, 50, 1, 1))
    assert px[3] == 255 and abs(px[2] - (40 + 50)) < 25               # still the gradient (R = 40 + x)
    doc.setModified(False)
    doc.close()


def test_train_a_style_then_use_it_from_the_list(window, png, ctrl, style_png):
    """Learn a style from the docker's style image (tiny network, 3 steps), see it with its thumbnail in the Fast
    list, and stylize with it."""
    from impasto_krita.docker import ImpastoDocker
    import impasto_krita.instance as ext_mod
    tracker = ctrl.train("kritatest", 3, net="tiny", crop=64, style_sizes=[64, 96, 128], batch=2)
    assert tracker is not None, ctrl.error
    wait(ctrl, lambda: not tracker.active, timeout=600)
    assert tracker.state is State.DONE, tracker.status_text()
    names = [s["name"] for s in ctrl.conn.styles]
    assert "kritatest" in names and "New style ready" in ctrl.notice
    entry = ctrl.conn.styles[names.index("kritatest")]
    assert entry["thumbnail"] and entry["thumbnail"][:4] == b"\x89PNG"
    ctrl.settings.engine, ctrl.settings.style_name = "mt", "kritatest"
    old = ext_mod._controller
    ext_mod._controller = ctrl
    try:
        docker = ImpastoDocker()
        items = [docker.styles.item(i) for i in range(docker.styles.count())]
        mine = [it for it in items if it.data(0x0100) == "kritatest"]          # Qt.UserRole
        assert mine and not mine[0].icon().isNull() and mine[0].isSelected()
        assert not docker.styles_box.isHidden() and docker.source_box.isHidden()
        doc = open_doc(window, png)
        doc.setActiveNode(doc.rootNode().childNodes()[0])
        docker.stylize_btn.click()
        job = ctrl.job
        assert job is not None, ctrl.error
        wait(ctrl, lambda: not job.active)
        assert job.state is State.DONE, job.status_text()
        title = entry.get("title") or "kritatest"
        assert layer_names(doc) == ["Background", f"{title} · MT"]
        docker.close()
    finally:
        ext_mod._controller = old
    doc.setModified(False)
    doc.close()


def test_dst_with_markers_end_to_end(window, png, ctrl):
    """DST driven by the artist's markers: pairs read from the two marker layers travel with the job."""
    if "dst" not in ctrl.conn.info.get("engines", []):
        pytest.skip("this daemon has no DST engine")
    doc = open_doc(window, png)
    root = doc.rootNode()
    src = root.childNodes()[0]
    style = doc.createNode("Painting", "paintlayer")
    pat = b"".join(bytes([(x * 7) % 256, (y * 5) % 256, 200, 255]) for y in range(48) for x in range(48))
    style.setPixelData(QByteArray(pat), 40, 8, 48, 48)
    root.addChildNode(style, src)
    pump(0.2)
    doc.setActiveNode(src)
    pump(0.2)
    ctrl.settings.engine, ctrl.settings.keypoint_mode = "dst", "markers"
    ctrl.settings.style_source, ctrl.settings.style_layer = "layer", "Painting"
    assert ctrl.add_markers() == [1, 2, 3, 4], ctrl.error
    pump(0.5)
    assert doc.activeNode().name() == "Background"          # the plugin gives the artist's layer back
    tracker = ctrl.stylize()
    assert tracker is not None, ctrl.error
    assert ctrl.last_markers is not None and len(ctrl.last_markers.pairs) == 4
    assert "4 marker pair(s) used" in ctrl.notice
    wait(ctrl, lambda: not tracker.active, timeout=600)
    assert tracker.state is State.DONE, tracker.status_text()
    assert "Painting · DST" in layer_names(doc)
    doc.setModified(False)
    doc.close()


def _doc_with_style_copy(window, png):
    """The picture, and a "Painting" layer holding a copy of it (so NBB has plenty to pair), above it."""
    doc = open_doc(window, png)
    root = doc.rootNode()
    src = root.childNodes()[0]
    style = doc.createNode("Painting", "paintlayer")
    style.setPixelData(src.pixelData(0, 0, W, H), 0, 0, W, H)
    root.addChildNode(style, src)
    style.setVisible(False)
    pump(0.2)
    doc.setActiveNode(src)
    pump(0.2)
    return doc, src, style


def test_propose_keypoints_writes_markers_at_the_pixels_nbb_returned(window, png, ctrl):
    """Propose keypoints: as many markers as NBB + cleaning returned, each within 0.5 px of its pixel; the DST job
    from the (then moved) markers uses the moved pair; its warp overlay is a hidden group aligned with the result."""
    if "dst" not in ctrl.conn.info.get("engines", []):
        pytest.skip("this daemon has no DST engine")
    doc, src, style = _doc_with_style_copy(window, png)
    ctrl.settings.style_source, ctrl.settings.style_layer = "layer", "Painting"
    ctrl.settings.engine, ctrl.settings.size, ctrl.settings.steps = "dst", 32, 1
    crop = krita_api.node_rect(doc, src)
    data, depth = krita_api.read_pixels(doc, src, crop)
    from impasto_krita import pixels as kpixels
    content = kpixels.krita_to_buffer(data, crop.width, crop.height, depth)
    sdata, sdepth = krita_api.read_pixels(doc, style, krita_api.node_rect(doc, style))
    sbuf = kpixels.krita_to_buffer(sdata, W, H, sdepth)
    import dataclasses as dc
    opts = dc.replace(ctrl.settings.to_options(crop.long_side), keypoint_mode="auto", keypoints=[])
    probe = ctrl.client.stylize(content, opts, style=sbuf, keypoints_only=True).wait(timeout=300)
    assert probe.error is None, probe.error
    expected = probe.info["keypoints"]
    assert len(expected) >= 3, expected

    tracker = ctrl.propose_keypoints()
    assert tracker is not None, ctrl.error
    assert layer_names(doc) == ["Background", "Painting"]           # nothing written before the result
    wait(ctrl, lambda: not tracker.active, timeout=300)
    assert tracker.state is State.DONE, tracker.status_text()
    pump(0.3)
    assert layer_names(doc) == ["Background", markers.CONTENT_LAYER, "Painting", markers.STYLE_LAYER], layer_names(doc)
    pairing = ctrl.marker_pairs(doc, crop, krita_api.node_rect(doc, style))
    assert pairing.numbers == list(range(1, len(expected) + 1))
    for got, want in zip(pairing.pairs, expected):
        assert abs(got.content[0] - want["content"][0]) <= 0.5 and abs(got.content[1] - want["content"][1]) <= 0.5
        assert abs(got.style[0] - want["style"][0]) <= 0.5 and abs(got.style[1] - want["style"][1]) <= 0.5
    assert ctrl.settings.keypoint_mode == "markers"

    # move marker 1 on the content by (+6, +4) px; the DST job's keypoints follow
    c_layer = krita_api.find_layer(doc, markers.CONTENT_LAYER)
    ring = next(s for s in c_layer.shapes() if s.name() == "kp1")
    res = doc.resolution()
    ring.setPosition(QPointF(ring.position().x() + 6 * 72.0 / res, ring.position().y() + 4 * 72.0 / res))
    pump(0.3)
    doc.setActiveNode(src)
    pump(0.2)
    tracker = ctrl.stylize()
    assert tracker is not None, ctrl.error
    sent = ctrl.last_markers.pairs
    assert abs(sent[0].content[0] - (pairing.pairs[0].content[0] + 6)) <= 0.5
    assert abs(sent[0].content[1] - (pairing.pairs[0].content[1] + 4)) <= 0.5
    wait(ctrl, lambda: not tracker.active, timeout=600)
    assert tracker.state is State.DONE, tracker.status_text()
    used = tracker.info["keypoints"]
    assert abs(used[0]["content"][0] - sent[0].content[0]) <= 0.01 and abs(used[0]["content"][1] - sent[0].content[1]) <= 0.01
    names = layer_names(doc)
    assert "Painting · DST" in names and "Painting · DST · warp overlay" in names, names
    group = next(n for n in doc.rootNode().childNodes() if n.name() == "Painting · DST · warp overlay")
    result = next(n for n in doc.rootNode().childNodes() if n.name() == "Painting · DST")
    assert group.type() == "grouplayer" and not group.visible()
    assert [n.name() for n in group.childNodes()] == ["warp grid", "keypoints → targets"]
    rb = result.bounds()
    for child in group.childNodes():
        b = child.bounds()
        assert (b.x(), b.y(), b.width(), b.height()) == (rb.x(), rb.y(), rb.width(), rb.height()) or \
            (b.x() >= rb.x() and b.y() >= rb.y() and b.right() <= rb.right() and b.bottom() <= rb.bottom())
    kp_layer = group.childNodes()[1]
    x, y = (int(round(v)) for v in used[0]["content"])
    assert bytes(kp_layer.pixelData(x, y, 1, 1))[3] == 255                    # a disc at the keypoint
    doc.setModified(False)
    doc.close()


def test_rerun_from_a_result_layers_recipe_reproduces_it(window, png, ctrl):
    styles = [s["name"] for s in ctrl.conn.styles]
    if not styles or "mt" not in ctrl.conn.info.get("engines", []):
        pytest.skip("no MT style in this daemon")
    doc = open_doc(window, png)
    src = doc.rootNode().childNodes()[0]
    doc.setActiveNode(src)
    ctrl.settings.engine, ctrl.settings.style_name, ctrl.settings.size, ctrl.settings.seed = "mt", styles[0], 64, 3
    tracker = ctrl.stylize()
    assert tracker is not None, ctrl.error
    wait(ctrl, lambda: not tracker.active)
    assert tracker.state is State.DONE, tracker.status_text()
    first = doc.rootNode().childNodes()[1]
    assert krita_api.read_recipe(doc, first) is not None
    ctrl.settings.engine, ctrl.settings.size, ctrl.settings.seed = "gatys", 512, 0        # the artist moved on
    doc.setActiveNode(first)
    pump(0.3)
    assert ctrl.rerun(), ctrl.error
    assert (ctrl.settings.engine, ctrl.settings.size, ctrl.settings.seed) == ("mt", 64, 3)
    pump(0.3)
    assert doc.activeNode().name() == "Background"
    tracker = ctrl.stylize()
    assert tracker is not None, ctrl.error
    wait(ctrl, lambda: not tracker.active)
    assert tracker.state is State.DONE, tracker.status_text()
    layers = [n for n in doc.rootNode().childNodes() if n.type() == "paintlayer"]
    assert len(layers) == 3
    a, b = layers[1:] if layers[2] is not first else (layers[2], layers[1])
    assert bytes(a.pixelData(0, 0, W, H)) == bytes(b.pixelData(0, 0, W, H))
    doc.setModified(False)
    doc.close()


# -- a remote server (issue 18): run_krita_tests.sh starts "studio" and "flaky" on a second host ----------------------
def remote_servers() -> dict:
    """remotes.json of tests/editors/remote_servers.py: where the servers are and their logs (relative paths)."""
    path = os.environ.get("IMPASTO_TEST_REMOTES")
    if not path:
        pytest.skip("no remote servers: run_krita_tests.sh starts them (tests/editors/remote_servers.py)")
    with open(path) as f:
        return json.load(f)


def work_file(rel: str) -> str:
    return os.path.join(os.environ["IMPASTO_TEST_WORK"], rel)


def report(line: str) -> None:
    """A line for run_krita_tests.sh to print after the run."""
    path = os.environ.get("IMPASTO_TEST_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


@pytest.fixture
def remote_ctrl():
    """A controller whose server setting is put back to Local afterwards (the settings persist in the profile)."""
    c = Controller()
    yield c
    c.disconnect()
    c.settings.server = ""
    c.save_settings()


def test_stylize_through_a_remote_server_over_curve(window, png, remote_ctrl, tmp_path):
    """The docker's Server box lists the paired servers; choosing "studio" connects over CURVE to the second host's
    non-loopback address, and a Gatys job through a feathered selection lands as a new layer, as locally."""
    from impasto_krita.docker import ImpastoDocker
    import impasto_krita.instance as ext_mod
    info = remote_servers()
    studio = info["servers"]["studio"]
    c = remote_ctrl
    old = ext_mod._controller
    ext_mod._controller = c
    try:
        docker = ImpastoDocker()
        items = [(docker.server.itemData(i), docker.server.itemText(i)) for i in range(docker.server.count())]
        assert [name for name, _ in items] == ["", "flaky", "studio"], items
        assert items[2][1] == f"studio ({studio['address']}:{studio['port']})"
        i = docker.server.findData("studio")
        docker.server.setCurrentIndex(i)
        docker.server.activated.emit(i)                     # the artist picks it
        assert c.conn.state == "connected", c.conn.message
        docker.refresh()
        assert docker.status.text().startswith("Connected to studio"), docker.status.text()
        assert docker.server.currentData() == "studio" and docker.start_btn.isHidden()
        docker.close()
    finally:
        ext_mod._controller = old
    assert Controller().server == "studio"                  # saved with the docker's other settings
    client = c.client
    assert client.info.curve and client.info.ip == studio["address"] and not client.info.ip.startswith("127.0.0.1")
    assert client.hello()["remote_client"] == studio["client"]
    log = work_file(studio["log"])
    before = open(log).read().count(f"event=remote_job client={studio['client']}")

    doc = open_doc(window, png)
    src = doc.rootNode().childNodes()[0]
    doc.setActiveNode(src)
    src_before = bytes(src.pixelData(0, 0, W, H))
    sel = Selection()
    sel.select(20, 10, 50, 40, 255)
    sel.select(20, 10, 4, 40, 128)
    doc.setSelection(sel)
    c.settings.engine, c.settings.style_source, c.settings.style_file = "gatys", "file", write_pattern(tmp_path)
    c.settings.size, c.settings.steps, c.settings.output_mode = 32, 20, "canvas"
    t0 = time.time()
    tracker = c.stylize()
    assert tracker is not None, c.error
    fractions = []
    wait(c, lambda: fractions.append(tracker.fraction) or not tracker.active)
    assert tracker.state is State.DONE, tracker.status_text()
    doc.waitForDone()
    assert layer_names(doc) == ["Background", "Test pattern · Gatys"]
    new = doc.rootNode().childNodes()[1]
    b = new.bounds()
    assert (b.x(), b.y(), b.width(), b.height()) == (20, 10, 50, 40)
    assert bytes(src.pixelData(0, 0, W, H)) == src_before
    alphas = bytes(new.pixelData(0, 0, W, H))[3::4]
    assert alphas[0] == 0 and alphas[30 * W + 40] == 255 and alphas[30 * W + 21] == 128
    assert open(log).read().count(f"event=remote_job client={studio['client']}") == before + 1
    steps = sorted({round(f, 2) for f in fractions if 0 < f < 1})
    assert steps, fractions                                 # progress came through as it went
    report(f"remote job: Krita -> {studio['endpoint']} ({info['where']}) over CURVE as {studio['client']!r}: "
           f"gatys 20 steps on a 50x40 feathered selection in {time.time() - t0:.1f} s, progress seen at {steps}, "
           f"layer {new.name()!r} inserted at (20, 10, 50, 40)")
    doc.setModified(False)
    doc.close()


def test_a_remote_server_vanishing_mid_job_is_reported_and_nothing_is_inserted(window, png, remote_ctrl):
    """"flaky" is killed (SIGKILL) a second into its job: the docker names the server within the heartbeat
    deadline and the document is left as it was."""
    from impasto_protocol.client import REMOTE_DEAD_AFTER
    info = remote_servers()
    c = remote_ctrl
    assert c.set_server("flaky"), c.conn.message
    doc = open_doc(window, png)
    doc.setActiveNode(doc.rootNode().childNodes()[0])
    c.settings.engine, c.settings.steps, c.settings.learning_rate = "sleep", 400, 0.05        # 20 s if it lived
    tracker = c.stylize()
    assert tracker is not None, c.error
    wait(c, lambda: not tracker.active, timeout=90)
    assert tracker.state is State.FAILED, tracker.status_text()
    assert tracker.fraction > 0                                       # it was running, with progress, when killed
    assert "the server 'flaky' stopped answering" in c.error and "nothing was changed" in c.error, c.error
    assert layer_names(doc) == ["Background"]
    assert c.conn.state == "disconnected" and "Press Connect" in c.conn.message
    with open(work_file("remote/flaky-killed.json")) as f:
        killed = json.load(f)["killed_at"]
    noticed = time.time() - killed
    assert noticed < REMOTE_DEAD_AFTER + 5, noticed
    report(f"vanished server: flaky ({info['servers']['flaky']['endpoint']}) killed at "
           f"{int(tracker.fraction * 100)}% of a sleep job; the docker said so {noticed:.1f} s later "
           f"({c.error!r}); layers: {layer_names(doc)}")
    doc.setModified(False)
    doc.close()
