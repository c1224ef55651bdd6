"""The Impasto docker: a view of the shared ``Controller`` (PyQt5 widgets only; all logic is elsewhere)."""
from __future__ import annotations

import logging
import os

from krita import DockWidget
from PyQt5.QtCore import QSize, Qt
from PyQt5.QtGui import QColor, QIcon, QImage, QPalette, QPixmap
from PyQt5.QtWidgets import (QButtonGroup, QCheckBox, QComboBox, QFileDialog, QFormLayout, QFrame, QGroupBox,
                             QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QProgressBar,
                             QPushButton, QRadioButton, QScrollArea, QSizePolicy, QSlider, QSpinBox, QToolButton,
                             QVBoxLayout, QWidget)

from . import krita_api, pixels
from .instance import controller
from impasto_plugin import servers
from impasto_plugin.jobs import State
from .settings import ENGINE_TITLES, KEYPOINT_MODES

log = logging.getLogger(__name__)

ENGINE_ORDER = ("mt", "gatys", "strotss", "dst")
STATUS_COLORS = {"connected": "#3cb44b", "starting": "#f5a623", "disconnected": "#9b9b9b", "error": "#e6194b"}
ENGINE_HINTS = {
    "mt": "Instant: a trained style in one pass.",
    "gatys": "Classic optimisation: any painting as style; slower.",
    "strotss": "Optimisation with better structure (STROTSS); slower.",
    "dst": "Deformable: aligns shapes with keypoints (markers or automatic).",
}


def qimage_from_buffer(img) -> QImage:
    rgba = pixels.buffer_to_rgba(img)
    rgba = pixels.convert_depth(rgba, img.itemsize, 1)
    return QImage(bytes(rgba), img.width, img.height, img.width * 4, QImage.Format_RGBA8888).copy()


class LayerCombo(QComboBox):
    """Lists the active document's layers; refreshed each time it opens."""

    def showPopup(self) -> None:
        self.refresh()
        super().showPopup()

    def refresh(self, keep: str | None = None) -> None:
        keep = keep if keep is not None else self.currentText()
        doc = krita_api.active_document()
        names = [n.name() for n in krita_api.pixel_layers(doc)] if doc is not None else []
        self.blockSignals(True)
        self.clear()
        self.addItems(names)
        if keep in names:
            self.setCurrentText(keep)
        elif keep:
            self.insertItem(0, keep)
            self.setCurrentIndex(0)
        self.blockSignals(False)


class ServerCombo(QComboBox):
    """Local, then the paired remote servers (read from the remotes folder each time it opens, so a server paired
    while Krita runs shows up); the item data is the name the setting stores ("" = local)."""

    def showPopup(self) -> None:
        self.refresh(self.currentData())
        super().showPopup()

    def refresh(self, keep: str | None = None) -> None:
        keep = servers.normalize(keep if keep is not None else self.currentData())
        self.blockSignals(True)
        self.clear()
        for choice in servers.choices(keep):
            self.addItem(choice.title, choice.name)
            self.setItemData(self.count() - 1, choice.endpoint or "The Impasto daemon on this computer (started "
                             "on demand)", Qt.ToolTipRole)
        self.setCurrentIndex(max(0, self.findData(keep)))
        self.blockSignals(False)


HINT_COLOUR = "#9a9a9a"
ERROR_COLOUR = "#e6194b"


def thin_progress_bar() -> QProgressBar:
    """A textless progress bar 8 px high, 0..1000."""
    bar = QProgressBar()
    bar.setRange(0, 1000)
    bar.setTextVisible(False)
    bar.setMaximumHeight(8)
    return bar


def wrapped_label(colour: str = "") -> QLabel:
    """An empty word-wrapping label, in ``colour`` when given."""
    label = QLabel("")
    label.setWordWrap(True)
    if colour:
        label.setStyleSheet(f"color: {colour};")
    return label


class ImpastoDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Impasto")
        self.c = controller()
        self._building = True
        self._build()
        self._load_settings()
        self._building = False
        self.c.subscribe(self.refresh)
        self.destroyed.connect(lambda *_: self.c.unsubscribe(self.refresh))
        self.refresh()
        if self.c.conn.state == "disconnected" and self.c.client is None:
            self.c.connect(autostart=False)

    # ----------------------------------------------------------------------------------------------- layout
    def _build(self) -> None:
        """The docker's widgets, one section builder each, in a scroll area."""
        root = QWidget()
        lay = QVBoxLayout(root)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.setSpacing(6)
        self._build_status(lay)
        self._build_engine(lay)
        self._build_styles(lay)
        self._build_style_source(lay)
        self._build_options(lay)
        self._build_run(lay)
        self._build_training(lay)
        lay.addStretch(1)

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.NoFrame)
        scroll.setWidget(root)
        self.setWidget(scroll)

    def _build_status(self, lay: QVBoxLayout) -> None:
        """The server choice, its state and the Start daemon (local) / Connect (remote) button."""
        srow = QHBoxLayout()
        self.server = ServerCombo()
        self.server.setToolTip("Where the jobs run: the daemon on this computer, or a remote server paired with "
                               "`impasto remote add` (docs/remote.md)")
        self.server.activated.connect(self._server_chosen)
        srow.addWidget(QLabel("Server"))
        srow.addWidget(self.server, 1)
        lay.addLayout(srow)
        row = QHBoxLayout()
        self.dot = QLabel("●")
        self.status = QLabel("Not connected")
        self.status.setWordWrap(True)
        self.start_btn = QPushButton("Start daemon")
        self.start_btn.setToolTip("Connect to the Impasto daemon, starting it if it is not running")
        self.start_btn.clicked.connect(lambda: self.c.connect(autostart=True))      # remote: connects only
        row.addWidget(self.dot)
        row.addWidget(self.status, 1)
        row.addWidget(self.start_btn)
        lay.addLayout(row)

    def _build_engine(self, lay: QVBoxLayout) -> None:
        """The engine choice and its one-line hint."""
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        self.engine = QComboBox()
        for e in ENGINE_ORDER:
            self.engine.addItem(ENGINE_TITLES[e], e)
        self.engine.currentIndexChanged.connect(self._changed)
        form.addRow("Engine", self.engine)
        self.engine_hint = wrapped_label(HINT_COLOUR)
        form.addRow("", self.engine_hint)
        lay.addLayout(form)

    def _build_styles(self, lay: QVBoxLayout) -> None:
        """The MT style list (thumbnails)."""
        self.styles = QListWidget()
        self.styles.setViewMode(QListWidget.IconMode)
        self.styles.setIconSize(QSize(64, 64))
        self.styles.setGridSize(QSize(84, 96))
        self.styles.setResizeMode(QListWidget.Adjust)
        self.styles.setMovement(QListWidget.Static)
        self.styles.setFixedHeight(110)
        self.styles.setWordWrap(True)
        self.styles.itemSelectionChanged.connect(self._changed)
        self.styles_box = QGroupBox("Style")
        QVBoxLayout(self.styles_box).addWidget(self.styles)
        lay.addWidget(self.styles_box)

    def _build_style_source(self, lay: QVBoxLayout) -> None:
        """Where the style comes from: an image file or a layer."""
        self.source_box = QGroupBox("Style")
        sl = QFormLayout(self.source_box)
        self.src_file = QRadioButton("Image file")
        self.src_layer = QRadioButton("Layer")
        grp = QButtonGroup(self)
        grp.addButton(self.src_file)
        grp.addButton(self.src_layer)
        self.src_file.toggled.connect(self._changed)
        file_row = QHBoxLayout()
        self.style_file = QLineEdit()
        self.style_file.setPlaceholderText("a painting: PNG, JPEG…")
        self.style_file.editingFinished.connect(self._changed)
        self.style_file.textChanged.connect(lambda t: self.style_file.setToolTip(t))
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose the style image")
        browse.clicked.connect(self._browse)
        file_row.addWidget(self.style_file, 1)
        file_row.addWidget(browse)
        sl.addRow(self.src_file, file_row)
        self.style_layer = LayerCombo()
        self.style_layer.setToolTip("Any layer of this image can be the style (e.g. an imported painting)")
        self.style_layer.currentIndexChanged.connect(self._changed)
        sl.addRow(self.src_layer, self.style_layer)
        lay.addWidget(self.source_box)

    def _build_options(self, lay: QVBoxLayout) -> None:
        """Strength, colours, output size, detail and keypoints."""
        opts = QGroupBox("Options")
        of = QFormLayout(opts)
        of.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
        srow = QHBoxLayout()
        self.strength = QSlider(Qt.Horizontal)
        self.strength.setRange(0, 100)
        self.strength_label = QLabel("100%")
        self.strength_label.setMinimumWidth(36)
        self.strength.valueChanged.connect(lambda v: (self.strength_label.setText(f"{v}%"), self._changed()))
        srow.addWidget(self.strength, 1)
        srow.addWidget(self.strength_label)
        of.addRow("Strength", srow)
        self.preserve = QCheckBox("Keep the original colours")
        self.preserve.toggled.connect(self._changed)
        of.addRow("", self.preserve)
        self._build_output_rows(of)
        self._build_keypoints_row(of)
        lay.addWidget(opts)

    def _build_output_rows(self, of: QFormLayout) -> None:
        """Output size (full, or long side at most) and the working resolution ("Detail")."""
        orow = QHBoxLayout()
        self.output_mode = QComboBox()
        self.output_mode.addItem("Full size", "canvas")
        self.output_mode.addItem("Long side at most", "max_side")
        self.output_mode.currentIndexChanged.connect(self._changed)
        self.max_side = QSpinBox()
        self.max_side.setRange(64, 16384)
        self.max_side.setSuffix(" px")
        self.max_side.valueChanged.connect(self._changed)
        orow.addWidget(self.output_mode, 1)
        orow.addWidget(self.max_side)
        of.addRow("Output", orow)
        self.size = QSpinBox()
        self.size.setRange(64, 4096)
        self.size.setSingleStep(64)
        self.size.setSuffix(" px")
        self.size.setToolTip("Resolution the style is worked out at: larger = finer brush strokes, slower")
        self.size.valueChanged.connect(self._changed)
        of.addRow("Detail", self.size)

    def _build_keypoints_row(self, of: QFormLayout) -> None:
        """DST's keypoint mode with the Propose and Add markers buttons."""
        krow = QHBoxLayout()
        self.keypoints = QComboBox()
        for k, title in KEYPOINT_MODES.items():
            self.keypoints.addItem(title, k)
        self.keypoints.currentIndexChanged.connect(self._changed)
        self.markers_btn = QPushButton("Add markers")
        self.markers_btn.setToolTip("Add numbered rings over the content and the style layer; drag each pair onto "
                                    "matching features (same number = same feature)")
        self.markers_btn.clicked.connect(self.c.add_markers)
        self.propose_btn = QPushButton("Propose")
        self.propose_btn.setToolTip("Find keypoints automatically (seconds) and write them as numbered markers you "
                                    "can move, delete or add to; then Stylize from markers")
        self.propose_btn.clicked.connect(self.c.propose_keypoints)
        krow.addWidget(self.keypoints, 1)
        krow.addWidget(self.propose_btn)
        krow.addWidget(self.markers_btn)
        self.keypoints_label = QLabel("Keypoints")
        of.addRow(self.keypoints_label, krow)

    def _build_run(self, lay: QVBoxLayout) -> None:
        """Preview / Re-run / Stylize / Cancel, then what the job says."""
        brow = QHBoxLayout()
        self.preview_btn = QPushButton("Preview")
        self.preview_btn.setToolTip("Try the settings quickly at a small size; shown below, nothing is inserted")
        self.preview_btn.clicked.connect(lambda: self.c.stylize(preview=True))
        self.stylize_btn = QPushButton("Stylize")
        self.stylize_btn.setToolTip("Stylize the active layer (or the selection) into a new layer above it")
        f = self.stylize_btn.font()
        f.setBold(True)
        self.stylize_btn.setFont(f)
        self.stylize_btn.clicked.connect(lambda: self.c.stylize())
        self.rerun_btn = QPushButton("Re-run")
        self.rerun_btn.setToolTip("Take the selected result layer's recipe (engine, style, size, steps, seed) back "
                                  "into these settings; Stylize then makes the same result again")
        self.rerun_btn.clicked.connect(self.c.rerun)
        self.cancel_btn = QPushButton("Cancel")
        self.cancel_btn.clicked.connect(self.c.cancel)
        brow.addWidget(self.preview_btn)
        brow.addWidget(self.rerun_btn)
        brow.addWidget(self.stylize_btn, 1)
        brow.addWidget(self.cancel_btn)
        lay.addLayout(brow)
        self._build_job_feedback(lay)

    def _build_job_feedback(self, lay: QVBoxLayout) -> None:
        """The running job's progress bar and status, the last error and notice, and the preview image."""
        self.progress = thin_progress_bar()
        lay.addWidget(self.progress)
        self.job_label = wrapped_label()
        lay.addWidget(self.job_label)
        self.error = wrapped_label(ERROR_COLOUR)
        self.error.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.error)
        self.notice = wrapped_label(HINT_COLOUR)
        lay.addWidget(self.notice)
        self.preview = QLabel()
        self.preview.setAlignment(Qt.AlignCenter)
        self.preview.setFrameShape(QFrame.StyledPanel)
        self.preview.setMinimumHeight(0)
        lay.addWidget(self.preview)

    def _build_training(self, lay: QVBoxLayout) -> None:
        """Learning a new MT style: a collapsible section."""
        self.train_toggle = QToolButton()
        self.train_toggle.setText("Learn a new style (Fast engine)")
        self.train_toggle.setCheckable(True)
        self.train_toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.train_toggle.setArrowType(Qt.RightArrow)
        self.train_toggle.setAutoRaise(True)
        self.train_toggle.toggled.connect(self._train_toggled)
        lay.addWidget(self.train_toggle)
        self.train_box = QWidget()
        tl = QFormLayout(self.train_box)
        tl.setContentsMargins(12, 0, 0, 0)
        self.train_name = QLineEdit()
        self.train_name.setPlaceholderText("name of the new style")
        tl.addRow("Name", self.train_name)
        self.train_steps = QSpinBox()
        self.train_steps.setRange(0, 200000)
        self.train_steps.setSpecialValueText("default")
        tl.addRow("Steps", self.train_steps)
        trow = QHBoxLayout()
        self.train_btn = QPushButton("Train from the style above")
        self.train_btn.setToolTip("Send the style image or layer to the daemon to train a Fast style; it appears "
                                  "in the style list when done (training runs in the background)")
        self.train_btn.clicked.connect(lambda: self.c.train(self.train_name.text(), self.train_steps.value() or None))
        self.train_cancel = QPushButton("Stop")
        self.train_cancel.clicked.connect(self.c.cancel_training)
        trow.addWidget(self.train_btn, 1)
        trow.addWidget(self.train_cancel)
        tl.addRow(trow)
        self.train_progress = thin_progress_bar()
        tl.addRow(self.train_progress)
        self.train_label = wrapped_label()
        tl.addRow(self.train_label)
        self.train_box.setVisible(False)
        lay.addWidget(self.train_box)

    def _train_toggled(self, on: bool) -> None:
        self.train_toggle.setArrowType(Qt.DownArrow if on else Qt.RightArrow)
        self.train_box.setVisible(on)

    # ----------------------------------------------------------------------------------------------- settings
    def _server_chosen(self, index: int) -> None:
        self.c.set_server(self.server.itemData(index) or "")
        self.server.refresh(self.c.server)         # refused while a job runs: show the server still in use

    def _load_settings(self) -> None:
        s = self.c.settings
        self.server.refresh(s.server)
        self.engine.setCurrentIndex(max(0, ENGINE_ORDER.index(s.engine) if s.engine in ENGINE_ORDER else 1))
        (self.src_layer if s.style_source == "layer" else self.src_file).setChecked(True)
        self.style_file.setText(s.style_file)
        self.style_layer.refresh(keep=s.style_layer)
        self.strength.setValue(int(round(s.strength * 100)))
        self.strength_label.setText(f"{self.strength.value()}%")
        self.preserve.setChecked(s.preserve_color)
        self.output_mode.setCurrentIndex(1 if s.output_mode == "max_side" else 0)
        self.max_side.setValue(s.max_side)
        self.size.setValue(s.size)
        self._select_style()
        self.keypoints.setCurrentIndex(max(0, list(KEYPOINT_MODES).index(s.keypoint_mode)
                                           if s.keypoint_mode in KEYPOINT_MODES else 0))
        self._train_toggled(False)

    def _changed(self, *_: object) -> None:
        if self._building:
            return
        s = self.c.settings
        engine = self.engine.currentData()
        if engine in ENGINE_ORDER:
            s.engine = engine
        item = self.styles.currentItem()
        if item is not None:
            s.style_name = item.data(Qt.UserRole)
        s.style_source = "layer" if self.src_layer.isChecked() else "file"
        s.style_file = self.style_file.text().strip()
        s.style_layer = self.style_layer.currentText()
        s.strength = self.strength.value() / 100.0
        s.preserve_color = self.preserve.isChecked()
        s.output_mode = self.output_mode.currentData()
        s.max_side = self.max_side.value()
        s.size = self.size.value()
        s.keypoint_mode = self.keypoints.currentData()
        self.c.save_settings()
        self._update_visibility()

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Style image", os.path.dirname(self.style_file.text()),
                                              "Images (*.png *.jpg *.jpeg *.webp *.tif *.tiff *.bmp)")
        if path:
            self.style_file.setText(path)
            self.src_file.setChecked(True)
            self._changed()

    def _update_visibility(self) -> None:
        s = self.c.settings
        self.engine_hint.setText(ENGINE_HINTS.get(s.engine, ""))
        mt = s.engine == "mt"
        self.styles_box.setVisible(mt)
        self.source_box.setVisible(not mt)
        dst = s.engine == "dst"
        for w in (self.keypoints, self.markers_btn, self.propose_btn, self.keypoints_label):
            w.setVisible(dst)
        mode_index = list(KEYPOINT_MODES).index(s.keypoint_mode) if s.keypoint_mode in KEYPOINT_MODES else 0
        if self.keypoints.currentIndex() != mode_index:      # e.g. Propose switched to From markers
            self.keypoints.blockSignals(True)
            self.keypoints.setCurrentIndex(mode_index)
            self.keypoints.blockSignals(False)
        self.max_side.setEnabled(s.output_mode == "max_side")
        self.style_file.setEnabled(s.style_source == "file")
        self.style_layer.setEnabled(s.style_source == "layer")

    # ----------------------------------------------------------------------------------------------- refresh
    def _select_style(self) -> None:
        self.styles.blockSignals(True)
        for i in range(self.styles.count()):
            item = self.styles.item(i)
            item.setSelected(bool(item.data(Qt.UserRole)) and item.data(Qt.UserRole) == self.c.settings.style_name)
        self.styles.blockSignals(False)

    def _fill_styles(self) -> None:
        styles = self.c.conn.styles
        names = [s.get("name") for s in styles]
        current = [self.styles.item(i).data(Qt.UserRole) for i in range(self.styles.count())]
        if names == current:
            return
        self.styles.blockSignals(True)
        self.styles.clear()
        for s in styles:
            title = s.get("title") or s.get("name")
            item = QListWidgetItem(title)
            item.setData(Qt.UserRole, s.get("name"))
            tip = " · ".join(str(v) for v in (s.get("artist"), s.get("year")) if v)
            item.setToolTip(f"{title}\n{tip}" if tip else title)
            thumb = s.get("thumbnail")
            if thumb:
                pm = QPixmap()
                if pm.loadFromData(thumb):
                    item.setIcon(QIcon(pm))
            self.styles.addItem(item)
            if s.get("name") == self.c.settings.style_name:
                item.setSelected(True)
        if not styles:
            self.styles.addItem(QListWidgetItem("(no trained styles yet)"))
        per_row = max(1, (self.styles.viewport().width() or 336) // 84)
        rows = max(1, min(2, -(-max(1, len(styles)) // per_row)))      # one or two rows, then it scrolls
        self.styles.setFixedHeight(rows * 96 + 14)
        self.styles.blockSignals(False)

    def _mark_engines(self) -> None:
        """Grey out engines the connected daemon does not have (their title says so)."""
        available = set(self.c.conn.info.get("engines") or []) if self.c.conn.state == "connected" else None
        model = self.engine.model()
        for i, e in enumerate(ENGINE_ORDER):
            ok = available is None or e in available
            self.engine.setItemText(i, ENGINE_TITLES[e] if ok else f"{ENGINE_TITLES[e]} (not installed)")
            item = model.item(i) if hasattr(model, "item") else None
            if item is not None:
                item.setEnabled(ok or self.engine.currentIndex() == i)

    def refresh(self) -> None:
        c = self.c
        if getattr(self, "_settings_version", 0) != c.settings_version:     # Re-run changed them
            self._settings_version = c.settings_version
            self._load_settings()
        color = STATUS_COLORS.get(c.conn.state, "#9b9b9b")
        self.dot.setStyleSheet(f"color: {color}; font-size: 14px;")
        self.status.setText(c.conn.message)
        self.status.setToolTip(c.conn.message)
        self.start_btn.setVisible(c.conn.state != "connected")
        self.start_btn.setEnabled(c.conn.state != "starting")
        remote = bool(c.server)
        self.start_btn.setText("Connect" if remote else "Start daemon")
        self.start_btn.setToolTip(f"Connect to the server {c.server!r} (it is not started from here)" if remote
                                  else "Connect to the Impasto daemon, starting it if it is not running")
        if servers.normalize(self.server.currentData()) != c.server:
            self.server.refresh(c.server)
        self.server.setEnabled(not c.busy)
        self._fill_styles()
        self._mark_engines()
        self._update_visibility()
        job = c.job
        running = job is not None and job.active
        self.stylize_btn.setEnabled(not running and c.conn.state == "connected")
        self.preview_btn.setEnabled(not running and c.conn.state == "connected")
        self.propose_btn.setEnabled(not running and c.conn.state == "connected")
        self.rerun_btn.setEnabled(not running)
        self.cancel_btn.setEnabled(running)
        if job is not None:
            self.progress.setValue(int(job.fraction * 1000) if job.state is not State.QUEUED else 0)
            self.job_label.setText(job.status_text())
            self.job_label.setVisible(job.state is not State.FAILED)     # a failure shows as the error below
            preview_img = c.preview.image if (c.preview is not None and job.kind == "preview") else job.preview
            if preview_img is not None:
                pm = QPixmap.fromImage(qimage_from_buffer(preview_img))
                self.preview.setPixmap(pm.scaled(QSize(260, 200), Qt.KeepAspectRatio, Qt.SmoothTransformation))
                self.preview.setVisible(True)
        else:
            self.progress.setValue(0)
            self.job_label.setText("Ready. The result goes into a new layer above the active one.")
            self.job_label.setVisible(True)
        if self.preview.pixmap() is None or self.preview.pixmap().isNull():
            self.preview.setVisible(False)
        self.error.setText(c.error)
        self.error.setVisible(bool(c.error))
        self.notice.setText(c.notice)
        self.notice.setVisible(bool(c.notice))
        t = c.train_job
        if t is not None:
            self.train_progress.setValue(int(t.fraction * 1000))
            self.train_label.setText(t.status_text())
            if t.active and not self.train_toggle.isChecked():
                self.train_toggle.setChecked(True)
        self.train_btn.setEnabled(c.conn.state == "connected" and not (t is not None and t.active))
        self.train_cancel.setEnabled(t is not None and t.active)

    def canvasChanged(self, canvas) -> None:
        self.style_layer.refresh()

    def showEvent(self, event) -> None:  # reopened: show the controller's current state (jobs kept running)
        self.refresh()
        super().showEvent(event)
