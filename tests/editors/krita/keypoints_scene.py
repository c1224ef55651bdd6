"""Scene for docs/krita-propose-keypoints.png and docs/krita-warp-overlay.png (run by screenshot_keypoints.sh inside
the real Krita GUI through the impasto_ci driver): a canvas with the photo on the left and the painting on the right
as two layers, Propose keypoints, grab the window (the numbered markers); then DST from the markers, turn the warp
overlay group on, grab again.

The Tool Options docker stays: with it closed, Krita 5.1.5 crashes when a node is activated after vector shapes
were edited (see arrange_dockers)."""
import os
import sys
import time

from krita import Krita
from PyQt5.QtCore import QByteArray
from PyQt5.QtGui import QImage
from PyQt5.QtWidgets import QApplication

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from screenshot_scene import arrange_dockers, log, pump  # noqa: E402

OUT = os.environ["KRITA_CI_OUT"]
GAP = 40


def add_image_layer(doc, name, path, x):
    img = QImage(path).convertToFormat(QImage.Format_ARGB32)        # B, G, R, A bytes on little-endian
    node = doc.createNode(name, "paintlayer")
    ptr = img.constBits()
    ptr.setsize(img.byteCount())
    node.setPixelData(QByteArray(bytes(ptr)), x, 0, img.width(), img.height())
    return node, img.width(), img.height()


def fit_view(win, doc):
    """Zoom to fit, so that the photo and the painting both show."""
    action = Krita.instance().action("toggle_zoom_to_fit")
    if action is not None:
        action.setChecked(False) if action.isCheckable() and action.isChecked() else None
        action.trigger()
        pump(0.5)


def wait_job(c, timeout):
    end = time.time() + timeout
    while c.job is not None and c.job.active and time.time() < end:
        pump(0.1)
    return c.job


def run():
    import impasto_krita.instance as ext
    from impasto_krita.docker import ImpastoDocker
    app = Krita.instance()
    win = app.activeWindow()
    qwin = win.qwindow()
    qwin.setGeometry(0, 0, 1600, 1000)
    side = QImage(os.environ["SHOT_PHOTO"]).width()
    doc = app.openDocument(os.environ["SHOT_PHOTO"])       # its one layer is the photo
    win.addView(doc)
    pump(0.5)
    doc.resizeImage(0, 0, 2 * side + GAP, side)
    doc.waitForDone()
    root = doc.rootNode()
    photo = root.childNodes()[0]
    photo.setName("Photo")
    paint, _, _ = add_image_layer(doc, "Painting", os.environ["SHOT_PAINTING"], side + GAP)
    root.addChildNode(paint, photo)
    doc.refreshProjection()
    pump(1.0)
    c = ext.controller()
    if c.client is None:
        c.connect()
    log("connection", c.conn.state, c.conn.message)
    s = c.settings
    s.engine, s.style_source, s.style_layer = "dst", "layer", "Painting"
    s.size, s.steps, s.output_mode, s.strength = int(os.environ.get("SHOT_SIZE", "256")), \
        int(os.environ.get("SHOT_STEPS", "30")), "canvas", 1.0
    s.keypoint_mode = "auto"
    dockers = [d for d in QApplication.allWidgets() if isinstance(d, ImpastoDocker)]
    for d in dockers:
        d._building = True
        d._load_settings()
        d._building = False
        d.show()
    arrange_dockers(qwin, keep=("sharedtooldocker",))
    doc.setActiveNode(photo)
    pump(1.5)
    log("active before propose", doc.activeNode().name())
    tracker = c.propose_keypoints()
    log("propose", tracker is not None, c.error)
    job = wait_job(c, 300)
    log("proposal", job.status_text() if job else c.error, c.notice)
    pump(1.0)
    log("layers", [(n.name(), n.type()) for n in root.childNodes()])
    fit_view(win, doc)
    for d in dockers:
        d.refresh()
    pump(2.0)
    ok = qwin.grab().save(os.path.join(OUT, "krita-propose-keypoints.png"))
    log("saved proposal", ok)

    doc.setActiveNode(photo)
    pump(1.5)
    log("active before stylize", doc.activeNode().name())
    tracker = c.stylize()
    log("stylize", tracker is not None, c.error, c.notice)
    pump(1.0)
    job = wait_job(c, float(os.environ.get("SHOT_TIMEOUT", "900")))
    log("dst", job.status_text() if job else c.error)
    pump(1.0)
    names = [n.name() for n in root.childNodes()]
    log("layers", names)
    group = next((n for n in root.childNodes() if n.name().endswith("warp overlay")), None)
    if group is None:
        return 1
    log("overlay visible by default", group.visible(), [n.name() for n in group.childNodes()])
    group.setVisible(True)                      # the markers stay: the artist sees both
    doc.setActiveNode(group)
    doc.refreshProjection()
    fit_view(win, doc)
    for d in dockers:
        d.refresh()
    pump(3.0)
    ok = qwin.grab().save(os.path.join(OUT, "krita-warp-overlay.png"))
    log("saved overlay", ok)
    return 0 if job is not None and job.state.value == "done" else 1
