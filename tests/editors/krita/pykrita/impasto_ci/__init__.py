"""Test-only Krita plugin: once the main window exists, run ``run()`` from ``$KRITA_CI_SCRIPT`` (a Python file), log
to ``$KRITA_CI_RESULT``, close the documents and quit Krita with the script's exit code (an exception gives 1).
Used by krita_gui_run.sh for GUI smoke tests and the docs screenshot."""
import os
import runpy
import sys
import traceback

from krita import Extension, Krita
from PyQt5.QtCore import QTimer

RESULT = os.environ.get("KRITA_CI_RESULT", "/tmp/impasto_ci_result.txt")


def log(msg: str) -> None:
    with open(RESULT, "a", encoding="utf-8") as f:
        f.write(msg + "\n")
    print("IMPASTO_CI", msg, flush=True)


class Driver(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self._ran = False

    def setup(self):
        Krita.instance().notifier().windowCreated.connect(self._window)

    def createActions(self, window):
        pass

    def _window(self):
        if not self._ran:
            self._ran = True
            QTimer.singleShot(int(os.environ.get("KRITA_CI_DELAY_MS", "800")), self._run)

    def _run(self):
        code = 0
        try:
            ns = runpy.run_path(os.environ["KRITA_CI_SCRIPT"], run_name="__krita_ci__")
            code = int(ns["run"]() or 0)
        except SystemExit as e:
            code = int(e.code or 0)
        except BaseException:
            log("EXCEPTION\n" + traceback.format_exc())
            code = 1
        log(f"exit code {code}")
        for d in Krita.instance().documents():
            d.setModified(False)
            d.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


Krita.instance().addExtension(Driver(Krita.instance()))
