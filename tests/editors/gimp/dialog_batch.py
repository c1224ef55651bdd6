# python-fu-eval in the GIMP GUI: open the Impasto "Stylize…" dialog on the image given on the command line
# (interactive run mode, exactly as the menu item does) so that screenshot.sh can photograph it.
import os
import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp  # noqa: E402

for _ in range(200):                       # the command-line image opens after the batch starts
    if Gimp.get_images():
        break
    time.sleep(0.1)
image = Gimp.get_images()[0]
proc = Gimp.get_pdb().lookup_procedure("python-fu-impasto-stylize")
cfg = proc.create_config()
cfg.set_property("run-mode", Gimp.RunMode.INTERACTIVE)
cfg.set_property("image", image)
cfg.set_core_object_array("drawables", image.get_selected_drawables())
cfg.set_property("engine", "mt")           # so the style choice list is the active field (fresh profile: no last values)
cfg.set_property("style-name", os.environ.get("SHOT_MT_STYLE", "starry_night"))
proc.run(cfg)

# Then (screenshot.sh closes the dialog) a real stylization of an elliptic selection, for docs/gimp-result.png.

if os.path.exists("/job/style-painting.jpg"):
    from gi.repository import Gio  # noqa: E402
    source = image.get_layers()[0]
    w, h = image.get_width(), image.get_height()
    image.select_ellipse(Gimp.ChannelOps.REPLACE, w * 0.2, h * 0.1, w * 0.6, h * 0.8)
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [source])
    cfg.set_property("engine", "gatys")
    cfg.set_property("style-file", Gio.File.new_for_path("/job/style-painting.jpg"))
    cfg.set_property("working-size", int(os.environ.get("SHOT_SIZE", "192")))
    cfg.set_property("size-mode", "custom")
    cfg.set_property("output-size", int(os.environ.get("SHOT_OUT", "320")))
    cfg.set_property("steps-mode", "custom")
    cfg.set_property("steps", int(os.environ.get("SHOT_STEPS", "40")))
    res = proc.run(cfg)
    Gimp.displays_flush()
    with open("/job/result-ready", "w") as f:
        f.write("%s\n" % res.index(0))
