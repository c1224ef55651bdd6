"""GUI smoke test in the real Krita window (run by run_krita_tests.sh through krita_gui_run.sh): the plugin that
Krita itself loaded from the profile registers its docker and menu actions, and the Stylize action produces a layer
against the running daemon.  run() returns 0 on success; failures raise AssertionError (exit code 1)."""
import os
import time

from krita import Krita
from PyQt5.QtGui import QColor, QImage
from PyQt5.QtWidgets import QApplication


def log(*a):
    with open(os.environ["KRITA_CI_RESULT"], "a", encoding="utf-8") as f:
        f.write(" ".join(str(x) for x in a) + "\n")


def pump_until(cond, timeout):
    end = time.time() + timeout
    while time.time() < end and not cond():
        QApplication.processEvents()
        time.sleep(0.02)
    return cond()


def run():
    import impasto_krita.instance as ext
    from impasto_krita.docker import ImpastoDocker
    app = Krita.instance()
    names = {d.objectName() for d in app.dockers()}
    assert "impastoDocker" in names, sorted(names)
    for action_id in ("impasto_stylize", "impasto_cancel", "impasto_add_markers", "impasto_start_daemon"):
        assert app.action(action_id) is not None, action_id
    log("docker and actions registered")
    img = QImage(64, 48, QImage.Format_RGBA8888)
    img.fill(QColor(30, 120, 200, 255))
    path = os.path.join(os.environ["KRITA_CI_OUT"], "smoke.png")
    img.save(path)
    doc = app.openDocument(path)
    app.activeWindow().addView(doc)
    c = ext.controller()
    app.action("impasto_start_daemon").trigger()
    assert pump_until(lambda: c.conn.state == "connected", 60), c.conn.message
    dockers = [d for d in QApplication.allWidgets() if isinstance(d, ImpastoDocker)]
    assert dockers and dockers[0].status.text().startswith("Connected"), [d.status.text() for d in dockers]
    c.settings.engine = "identity"
    doc.setActiveNode(doc.rootNode().childNodes()[0])
    QApplication.processEvents()
    app.action("impasto_stylize").trigger()
    assert c.job is not None, c.error
    assert pump_until(lambda: not c.job.active, 60), c.job.status_text()
    assert c.job.state.value == "done", c.job.status_text()
    layers = [n.name() for n in doc.rootNode().childNodes()]
    assert layers == ["Background", "style · identity"], layers
    log("stylize action ok", layers, dockers[0].job_label.text())
    return 0
