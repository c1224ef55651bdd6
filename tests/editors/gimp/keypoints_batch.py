# python-fu-eval in the GIMP GUI, for screenshot_keypoints.sh: the photo (opened on the command line) and the
# painting side by side in one image, Propose keypoints (the two paths), then DST from the paths with the warp
# overlay group turned on.  Writes /job/proposed-ready and /job/overlay-ready when each scene is on screen.
import os
import time

import gi

gi.require_version("Gimp", "3.0")
from gi.repository import Gimp, Gio  # noqa: E402

for _ in range(200):                       # the command-line image opens after the batch starts
    if Gimp.get_images():
        break
    time.sleep(0.1)
image = Gimp.get_images()[0]
photo = image.get_layers()[0]
w, h = image.get_width(), image.get_height()
gap = 40
image.resize(2 * w + gap, h, 0, 0)
painting = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path("/job/painting.png"))
painting.set_name("Painting")
image.insert_layer(painting, None, 0)
painting.set_offsets(w + gap, 0)
Gimp.displays_flush()

pdb = Gimp.get_pdb()
proc = pdb.lookup_procedure("python-fu-impasto-propose-keypoints")
cfg = proc.create_config()
cfg.set_property("image", image)
cfg.set_core_object_array("drawables", [photo])
cfg.set_property("style-layer", painting)
cfg.set_property("working-size", int(os.environ.get("SHOT_SIZE", "192")))
res = proc.run(cfg)
image.set_selected_layers([photo])
Gimp.displays_flush()
with open("/job/proposed-ready", "w") as f:
    f.write("%s %s\n" % (res.index(0), [p.get_name() for p in image.get_paths()]))
time.sleep(6)

proc = pdb.lookup_procedure("python-fu-impasto-stylize")
cfg = proc.create_config()
cfg.set_property("image", image)
cfg.set_core_object_array("drawables", [photo])
cfg.set_property("engine", "dst")
cfg.set_property("keypoints", "paths")
cfg.set_property("style-source", "layer")
cfg.set_property("style-layer", painting)
cfg.set_property("working-size", int(os.environ.get("SHOT_SIZE", "192")))
cfg.set_property("steps-mode", "custom")
cfg.set_property("steps", int(os.environ.get("SHOT_STEPS", "30")))
res = proc.run(cfg)
status = res.index(0)
names = []
for layer in image.get_layers():
    names.append(layer.get_name())
    if layer.get_name().endswith("warp overlay"):
        hidden = not layer.get_visible()
        layer.set_visible(True)
        image.set_selected_layers([layer])
        names.append("(was hidden: %s)" % hidden)
for p in image.get_paths():
    p.set_visible(False)
Gimp.displays_flush()
with open("/job/overlay-ready", "w") as f:
    f.write("%s %s\n" % (status, names))
time.sleep(60)
