"""The one ``Controller`` of the Krita process, and the Qt timer that pumps it while it is busy.

All state lives in it; dockers (one per window) and the menu actions only show and drive it, so a running job or a
training run survives closing and reopening the docker.
"""
from __future__ import annotations

from typing import Optional

from PyQt5.QtCore import QObject, QTimer

from .controller import Controller

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
