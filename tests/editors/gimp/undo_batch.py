# python-fu-eval in the GIMP GUI (see undo_test.sh): stylize the open image non-interactively, announce it in
# /job/undo-state, then wait for the artist -- here xdotool pressing Ctrl+Z in GIMP's window -- to undo it once, and
# write the verdict to /job/undo-result.txt: the new layer must go in one undo step and the source stay unchanged.
import hashlib
import os
import time

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402


def verdict(text):
    with open("/job/undo-result.txt.partial", "w") as f:
        f.write(text + "\n")
    os.rename("/job/undo-result.txt.partial", "/job/undo-result.txt")


def digest(d):
    return hashlib.sha256(bytes(d.get_buffer().get(Gegl.Rectangle.new(0, 0, d.get_width(), d.get_height()), 1.0,
                                                   "R'G'B'A u8", Gegl.AbyssPolicy.NONE))).hexdigest()


try:
    for _ in range(200):
        if Gimp.get_images():
            break
        time.sleep(0.1)
    image = Gimp.get_images()[0]
    source = image.get_layers()[0]
    before = digest(source)
    image.select_ellipse(Gimp.ChannelOps.REPLACE, 10, 8, 70, 48)
    proc = Gimp.get_pdb().lookup_procedure("python-fu-impasto-stylize")
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [source])
    cfg.set_property("engine", "mt")
    cfg.set_property("style-name", os.environ.get("GIMP_TEST_STYLE", "gimptest"))
    res = proc.run(cfg)
    names = [l.get_name() for l in image.get_layers()]
    if res.index(0) != Gimp.PDBStatusType.SUCCESS or len(names) != 2:
        verdict(f"FAIL stylize: {res.index(0)} {res.index(1) if res.length() > 1 else ''} layers {names}")
    else:
        Gimp.displays_flush()
        with open("/job/undo-state", "w") as f:
            f.write("inserted %s\n" % names)
        for _ in range(300):
            if len(image.get_layers()) != 2:
                break
            time.sleep(0.1)
        after = [l.get_name() for l in image.get_layers()]
        if after != [source.get_name()]:
            verdict(f"FAIL after Ctrl+Z the layers are {after} (before the job: {[source.get_name()]})")
        elif digest(image.get_layers()[0]) != before:
            verdict("FAIL the source layer changed")
        else:
            verdict(f"OK inserted {names[0]!r}; one undo step removed it; the source is unchanged")
except Exception as e:  # noqa: BLE001
    verdict(f"FAIL {type(e).__name__}: {e}")
