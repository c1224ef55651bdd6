"""The Krita Extension (menu actions under Tools > Scripts > Impasto) and the docker registration.

The actions and the dockers (one per window) all drive the one controller of the process, ``instance.controller()``.
"""
from __future__ import annotations

from krita import DockWidgetFactory, DockWidgetFactoryBase, Extension, Krita

from .docker import ImpastoDocker
from .instance import controller

DOCKER_ID = "impastoDocker"
ACTIONS = (
    ("impasto_stylize", "Impasto: Stylize", "stylize"),
    ("impasto_cancel", "Impasto: Cancel", "cancel"),
    ("impasto_add_markers", "Impasto: Add keypoint markers", "add_markers"),
    ("impasto_propose_keypoints", "Impasto: Propose keypoints", "propose_keypoints"),
    ("impasto_rerun", "Impasto: Re-run from the layer's recipe", "rerun"),
    ("impasto_start_daemon", "Impasto: Start daemon", "start_daemon"),
)
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
    app = Krita.instance()
    app.addExtension(ImpastoExtension(app))
    app.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, ImpastoDocker))
