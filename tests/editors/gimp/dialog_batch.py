# python-fu-eval in the GIMP GUI: open the Impasto "Stylize…" dialog on the image given on the command line
# (interactive run mode, exactly as the menu item does) so that screenshot.sh can photograph it.
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
proc.run(cfg)
