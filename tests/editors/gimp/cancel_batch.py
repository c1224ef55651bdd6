# python-fu-eval (headless): start a long Gatys stylization; kill_plugin.py kills the plug-in process meanwhile, as
# GIMP does when the artist presses Cancel on the progress bar.  The call must fail and insert nothing.
import os

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path("/job/input.png"))
source = image.get_layers()[0]
proc = Gimp.get_pdb().lookup_procedure("python-fu-impasto-stylize")
cfg = proc.create_config()
cfg.set_property("image", image)
cfg.set_core_object_array("drawables", [source])
cfg.set_property("engine", "gatys")
cfg.set_property("style-file", Gio.File.new_for_path("/job/style.png"))
cfg.set_property("working-size", 64)
cfg.set_property("steps-mode", "custom")
cfg.set_property("steps", 100000)
cfg.set_property("server", os.environ.get("IMPASTO_TEST_SERVER", "local"))     # "studio": the remote server
res = proc.run(cfg)
layers = [layer.get_name() for layer in image.get_layers()]
print("CANCEL status %s layers %s" % (res.index(0), layers), flush=True)
if res.index(0) == Gimp.PDBStatusType.SUCCESS or len(layers) != 1:
    raise SystemError("the killed plug-in inserted something or succeeded")
