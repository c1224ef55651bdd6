#!/usr/bin/env python3
"""Impasto for GIMP 3: neural style transfer through the local ``impasto serve`` daemon (or a paired remote server:
the "server" argument).

Registers two procedures under Filters > Artistic > Impasto:
  python-fu-impasto-stylize        "Stylize…": the active layer (the selection's bounds) in, a new layer out
  python-fu-impasto-keypoint-paths "Add keypoint paths": the two paths whose anchors pair content and style points
  python-fu-impasto-propose-keypoints "Propose keypoints…": the same two paths, from DST's automatic keypoints
  python-fu-impasto-rerun           "Re-run from recipe…": the selected result made again from its recipe parasite
Both take the same arguments in a dialog (interactive) and from scripts (non-interactive), e.g.
  proc = Gimp.get_pdb().lookup_procedure("python-fu-impasto-stylize"); cfg = proc.create_config()
  cfg.set_property("image", img); cfg.set_core_object_array("drawables", [layer]); cfg.set_property("engine", "mt")
  cfg.set_property("style-name", "starry"); proc.run(cfg)
All logic lives in ``impasto_gimp`` (plain Python, tested without GIMP); GIMP calls in ``impasto_gimp.gimp_api``.
"""
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from impasto_gimp import locations  # noqa: E402

locations.add_vendor_path()

import gi  # noqa: E402

gi.require_version("Gimp", "3.0")
gi.require_version("GimpUi", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import GLib, GObject, Gimp  # noqa: E402

from impasto_gimp import actions, gimp_api  # noqa: E402
from impasto_gimp.params import (DIALOG_GROUPS, KEYPOINT_ARGS, KEYPOINTS_PROC, MENU_PATH,  # noqa: E402
                                 PROPOSE_ARGS, PROPOSE_PROC, RERUN_ARGS, RERUN_PROC, SENSITIVITY, STYLIZE_PROC,
                                 Params, stylize_args)

log = logging.getLogger("impasto.gimp")
RW = GObject.ParamFlags.READWRITE


def add_arguments(proc, args) -> None:
    for a in args:
        if a.kind == "choice":
            choice = Gimp.Choice.new()
            for i, (nick, label) in enumerate(a.choices.items()):
                choice.add(nick, i, label, "")
            proc.add_choice_argument(a.name, a.nick, a.blurb, choice, a.default, RW)
        elif a.kind == "string":
            proc.add_string_argument(a.name, a.nick, a.blurb, a.default, RW)
        elif a.kind == "file":
            proc.add_file_argument(a.name, a.nick, a.blurb, Gimp.FileChooserAction.OPEN, True, None, RW)
        elif a.kind == "layer":
            proc.add_drawable_argument(a.name, a.nick, a.blurb, True, RW)
        elif a.kind == "double":
            proc.add_double_argument(a.name, a.nick, a.blurb, a.minimum, a.maximum, a.default, RW)
        elif a.kind == "int":
            proc.add_int_argument(a.name, a.nick, a.blurb, int(a.minimum), int(a.maximum), a.default, RW)
        elif a.kind == "boolean":
            proc.add_boolean_argument(a.name, a.nick, a.blurb, a.default, RW)
        else:
            raise ValueError(f"unknown argument kind {a.kind!r}")


def error_values(procedure, message: str):
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                       GLib.Error.new_literal(Gimp.PlugIn.error_quark(), message, 0))


def show_dialog(procedure, config, title: str, names, groups=(), status: str = "") -> bool:
    """The procedure dialog (GIMP builds the widgets from the arguments); False when the artist cancels."""
    from gi.repository import GimpUi
    GimpUi.init(procedure.get_name())
    dlg = GimpUi.ProcedureDialog.new(procedure, config, title)
    top = []
    if status:
        dlg.get_label("status-label", status, False, False)
        top.append("status-label")
    if groups:
        for box_id, frame_title, members in groups:
            dlg.fill_box(box_id, list(members))
            if frame_title:
                dlg.get_label(box_id + "-title", frame_title, False, False)
                dlg.fill_frame(box_id + "-frame", box_id + "-title", False, box_id)
                top.append(box_id + "-frame")
            else:
                top.append(box_id)
        for name, (depends, values, inside) in SENSITIVITY.items():
            vals = Gimp.ValueArray.new_from_values([GObject.Value(GObject.TYPE_STRING, v) for v in values])
            dlg.set_sensitive_if_in(name, None, depends, vals, inside)
        dlg.fill(top)
    else:
        dlg.fill(top + [a.name for a in names])
    try:
        return bool(dlg.run())
    finally:
        dlg.destroy()


def _config_getter(config):
    def get(name):
        v = config.get_property(name)
        if name == "style-file":
            return v.get_path() if v is not None else ""
        return v
    return get


def _run(procedure, action):
    """``action()``'s Outcome, or the error return values GIMP shows (an artist's problem, or a bug named)."""
    try:
        return action()
    except actions.PluginError as e:
        return error_values(procedure, str(e))
    except Exception as e:  # noqa: BLE001 - a bug: say what it was rather than crash the plug-in silently
        log.exception("Impasto failed")
        return error_values(procedure, f"Impasto failed unexpectedly: {type(e).__name__}: {e}")


def run_stylize(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(
            procedure, config, "Impasto: Stylize", (), DIALOG_GROUPS,
            actions.daemon_summary(config.get_property("server"))):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    outcome = _run(procedure, lambda: actions.stylize(gimp_api, image, list(drawables),
                                                      Params.from_config(_config_getter(config))))
    if not isinstance(outcome, actions.Outcome):
        return outcome
    if outcome.note and run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(outcome.note)
    Gimp.displays_flush()
    return Gimp.ValueArray.new_from_values([GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS),
                                            GObject.Value(Gimp.Layer, outcome.layer)])


def run_keypoints(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(procedure, config, "Impasto: Add keypoint paths",
                                                                KEYPOINT_ARGS):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    try:
        actions.add_keypoint_paths(gimp_api, image, list(drawables), config.get_property("style-layer"),
                                   config.get_property("count"))
    except actions.PluginError as e:
        return error_values(procedure, str(e))
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


def run_propose(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(
            procedure, config, "Impasto: Propose keypoints", PROPOSE_ARGS,
            status=actions.daemon_summary(config.get_property("server"))):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    p = Params(engine="dst", style_source="layer", style_layer=config.get_property("style-layer"),
               working_size=config.get_property("working-size"), server=config.get_property("server") or "local")
    outcome = _run(procedure, lambda: actions.propose_keypoints(gimp_api, image, list(drawables), p))
    if not isinstance(outcome, actions.Outcome):
        return outcome
    if run_mode == Gimp.RunMode.INTERACTIVE:
        Gimp.message(outcome.note)
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, None)


def run_rerun(procedure, run_mode, image, drawables, config, data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not show_dialog(
            procedure, config, "Impasto: Re-run from the recipe", RERUN_ARGS,
            status="The selected result layer's recipe gives every setting and the seed; a painting style needs "
                   "the same painting again below (a trained MT style needs nothing).\n"
                   + actions.daemon_summary(config.get_property("server"))):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, None)
    get = _config_getter(config)
    style = Params(style_source=get("style-source"), style_file=get("style-file") or "",
                   style_layer=get("style-layer"), server=get("server") or "local")
    outcome = _run(procedure, lambda: actions.rerun(gimp_api, image, list(drawables), style))
    if not isinstance(outcome, actions.Outcome):
        return outcome
    if run_mode == Gimp.RunMode.INTERACTIVE and outcome.note:
        Gimp.message(outcome.note)
    Gimp.displays_flush()
    return Gimp.ValueArray.new_from_values([GObject.Value(Gimp.PDBStatusType, Gimp.PDBStatusType.SUCCESS),
                                            GObject.Value(Gimp.Layer, outcome.layer)])


class Impasto(Gimp.PlugIn):
    def do_set_i18n(self, name):
        return False

    def do_query_procedures(self):
        return [STYLIZE_PROC, KEYPOINTS_PROC, PROPOSE_PROC, RERUN_PROC]

    def do_create_procedure(self, name):
        spec = PROCEDURES.get(name)
        if spec is None:
            return None
        run, label, title, blurb, drawables, args, returns_layer = spec
        p = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        p.set_menu_label(label)
        p.set_documentation(title, blurb, name)
        mask = Gimp.ProcedureSensitivityMask.DRAWABLE
        if drawables == "any":
            mask |= Gimp.ProcedureSensitivityMask.NO_DRAWABLES
        p.set_sensitivity_mask(mask)
        add_arguments(p, args() if callable(args) else args)
        if returns_layer:
            p.add_layer_return_value("layer", "Layer", "The new layer", False, RW)
        p.set_image_types("RGB*, GRAY*")
        p.add_menu_path(MENU_PATH)
        p.set_attribution("Impasto", "Impasto", "2026")
        return p


# name -> (run, menu label, title, blurb, "one" drawable or "any" (also none), arguments, returns the new layer)
PROCEDURES = {
    STYLIZE_PROC: (run_stylize, "_Stylize…", "Neural style transfer (Impasto)",
                   "Paints the active layer (or the selection) in the style of a painting, as a new layer above it. "
                   "Needs the Impasto daemon (`impasto serve`, started on demand).",
                   "one", lambda: stylize_args(actions.installed_styles()), True),
    KEYPOINTS_PROC: (run_keypoints, "Add _keypoint paths", "Add Impasto keypoint paths",
                     "Creates the paths 'Impasto keypoints: content' and 'Impasto keypoints: style'; move their "
                     "anchors onto matching features (paired by order) for the DST engine.",
                     "any", KEYPOINT_ARGS, False),
    PROPOSE_PROC: (run_propose, "_Propose keypoints…", "Propose Impasto keypoints",
                   "Finds DST's automatic keypoints between the active layer and the style layer (seconds, through "
                   "the daemon) and writes them as the two keypoint paths, to correct by hand before stylizing from "
                   "the paths.", "one", PROPOSE_ARGS, False),
    RERUN_PROC: (run_rerun, "_Re-run from recipe…", "Make an Impasto result again",
                 "Stylizes the layer under the selected result layer again with the result's recipe (every setting "
                 "and the seed), as a new layer.", "one", RERUN_ARGS, True),
}

if __name__ == "__main__":
    Gimp.main(Impasto.__gtype__, sys.argv)
