"""The Krita Extension (menu actions under Tools > Scripts > Impasto) and the docker registration.

One ``Controller`` per Krita process holds all state; dockers (one per window) only show it, so a running job or a
training run survives closing and reopening the docker.  A Qt timer pumps the controller while it is busy.
"""
from __future__ import annotations

from typing import Optional

from krita import DockWidgetFactory, DockWidgetFactoryBase, Extension, Krita
from PyQt5.QtCore import QObject, QTimer

from .controller import Controller

DOCKER_ID = "impastoDocker"
ACTIONS = (
    ("impasto_stylize", "Impasto: Stylize", "stylize"),
    ("impasto_cancel", "Impasto: Cancel", "cancel"),
    ("impasto_add_markers", "Impasto: Add keypoint markers", "add_markers"),
    ("impasto_propose_keypoints", "Impasto: Propose keypoints", "propose_keypoints"),
    ("impasto_rerun", "Impasto: Re-run from the layer's recipe", "rerun"),
    ("impasto_start_daemon", "Impasto: Start daemon", "start_daemon"),
)
PUMP_MS = 40

_controller: Optional[Controller] = None
_pump: Optional["Pump"] = None


class Pump(QObject):
    """Calls ``controller.pump()`` every 40 ms while something is in flight, and stops when idle."""

    def __init__(self, controller: Controller):
        super().__init__()
        self.controller = controller
        self.timer = QTimer(self)
        self.timer.setInterval(PUMP_MS)
        self.timer.timeout.connect(self._tick)
        controller.subscribe(self.kick)

    def kick(self) -> None:
        if self.controller.busy and not self.timer.isActive():
            self.timer.start()

    def _tick(self) -> None:
        self.controller.pump()
        if not self.controller.busy:
            self.timer.stop()


def controller() -> Controller:
    global _controller, _pump
    if _controller is None:
        _controller = Controller()
        _pump = Pump(_controller)
    return _controller


class ImpastoExtension(Extension):
    def __init__(self, parent):
        super().__init__(parent)
        self.controller = controller()
        self.actions: dict = {}

    def setup(self) -> None:
        Krita.instance().notifier().applicationClosing.connect(self._closing)

    def createActions(self, window) -> None:
        for action_id, text, method in ACTIONS:
            action = window.createAction(action_id, text, "tools/scripts")
            action.triggered.connect(getattr(self, method))
            self.actions[action_id] = action

    # actions
    def stylize(self) -> None:
        self.controller.stylize()

    def cancel(self) -> None:
        self.controller.cancel()

    def add_markers(self) -> None:
        self.controller.add_markers()

    def propose_keypoints(self) -> None:
        self.controller.propose_keypoints()

    def rerun(self) -> None:
        self.controller.rerun()

    def start_daemon(self) -> None:
        self.controller.connect(autostart=True)

    def _closing(self) -> None:
        self.controller.disconnect()


def register() -> None:
    from .docker import ImpastoDocker
    app = Krita.instance()
    app.addExtension(ImpastoExtension(app))
    app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, ImpastoDocker))
