"""Runs INSIDE GIMP 3.0 (pytest in the python-fu-eval process; see run_gimp_tests.sh): the installed Impasto
plug-in called through the PDB, non-interactively, against a real daemon outside the chroot.

The work folder is /job: input.png (96x64 photo with a red square at 8..23), style.png, gimpcfg/ (GIMP's profile
with the plug-in installed by `impasto install-plugin gimp`), run/daemon.json (the daemon's connection file).
The daemon has the tiny MT style "gimptest" (a real, trained model: it changes every pixel).
"""
import hashlib
import json
import os
import sys
import time

import gi
import pytest

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, Gio  # noqa: E402

PLUGIN_DIR = "/job/gimpcfg/plug-ins/impasto"
sys.path[:0] = [PLUGIN_DIR, os.path.join(PLUGIN_DIR, "vendor")]

from impasto_gimp import actions, gimp_api, paths  # noqa: E402

STYLIZE = "python-fu-impasto-stylize"
KEYPOINTS = "python-fu-impasto-keypoint-paths"
STYLE = os.environ.get("GIMP_TEST_STYLE", "gimptest")


def load(path="/job/input.png"):
    return Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(path))


def rgba(drawable, x, y, w, h, fmt="R'G'B'A u8"):
    ok, ox, oy = drawable.get_offsets()
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(x - ox, y - oy, w, h), 1.0, fmt,
                                           Gegl.AbyssPolicy.NONE))


def digest(drawable):
    return hashlib.sha256(rgba(drawable, *drawable_box(drawable))).hexdigest()


def drawable_box(d):
    ok, ox, oy = d.get_offsets()
    return ox, oy, d.get_width(), d.get_height()


def run(image, drawable, **props):
    proc = Gimp.get_pdb().lookup_procedure(STYLIZE)
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [drawable])
    for k, v in props.items():
        cfg.set_property(k.replace("_", "-"), v)
    res = proc.run(cfg)
    return res.index(0), (res.index(1) if res.length() > 1 else None)


@pytest.fixture
def image():
    img = load()
    yield img
    img.delete()


def test_procedures_registered_with_menu_and_arguments():
    pdb = Gimp.get_pdb()
    proc = pdb.lookup_procedure(STYLIZE)
    assert proc is not None and pdb.lookup_procedure(KEYPOINTS) is not None
    names = [a.name for a in proc.get_arguments()]
    for n in ("engine", "style-name", "style-source", "style-file", "style-layer", "strength", "preserve-colors",
              "keypoints", "size-mode", "output-size", "steps-mode", "steps"):
        assert n in names
    assert "<Image>/Filters/Artistic/Impasto" in proc.get_menu_paths()
    assert proc.get_menu_label() == "_Stylize…"


def test_vendored_pyzmq_is_for_gimps_python():
    import zmq
    assert sys.version_info[:2] == (3, 13)
    assert zmq.__file__.startswith(os.path.join(PLUGIN_DIR, "vendor"))
    import impasto_plugin.jobs                                  # the plugin core, vendored by install-plugin
    assert impasto_plugin.jobs.__file__.startswith(os.path.join(PLUGIN_DIR, "vendor", "impasto_plugin"))
    from impasto_protocol.client import Client
    with Client.connect(timeout=10) as c:
        assert STYLE in c.hello()["styles"]


def test_stylize_selection_makes_a_new_masked_layer(image):
    source = image.get_layers()[0]
    before = digest(source)
    image.select_ellipse(Gimp.ChannelOps.REPLACE, 20, 10, 60, 40)       # bounds 20..80 x 10..50
    status, layer = run(image, source, engine="mt", style_name=STYLE)
    assert status == Gimp.PDBStatusType.SUCCESS
    layers = image.get_layers()
    assert len(layers) == 2 and layers[0] == layer and layers[1] == source     # just above the source
    assert layer.get_name() == f"{STYLE} · MT"
    assert drawable_box(layer) == (20, 10, 60, 40)
    assert digest(source) == before                                           # the source is untouched
    inside_new = rgba(layer, 45, 25, 10, 10)
    inside_old = rgba(source, 45, 25, 10, 10)
    assert inside_new != inside_old
    assert all(a == 255 for a in inside_new[3::4])                            # opaque inside the ellipse
    for x, y in ((20, 10), (79, 10), (20, 49), (79, 49)):                    # the box's corners are outside it
        assert rgba(layer, x, y, 1, 1)[3] == 0
    edge = rgba(layer, 20, 30, 1, 1)[3]                                       # left tip: partly selected
    assert edge < 255


def test_stylize_without_selection_covers_the_layer(image):
    source = image.get_layers()[0]
    status, layer = run(image, source, engine="mt", style_name=STYLE, strength=0.5)
    assert status == Gimp.PDBStatusType.SUCCESS
    assert drawable_box(layer) == (0, 0, 96, 64)
    assert min(rgba(layer, 0, 0, 96, 64)[3::4]) == 255


def test_output_size_is_scaled_back_to_the_selection(image):
    source = image.get_layers()[0]
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 4, 80, 56)
    status, layer = run(image, source, engine="mt", style_name=STYLE, size_mode="custom", output_size=40)
    assert status == Gimp.PDBStatusType.SUCCESS
    assert drawable_box(layer) == (8, 4, 80, 56)


def test_sixteen_bit_image_round_trips(image):
    image.convert_precision(Gimp.Precision.U16_NON_LINEAR)
    source = image.get_layers()[0]
    before = digest(source)
    status, layer = run(image, source, engine="mt", style_name=STYLE)
    assert status == Gimp.PDBStatusType.SUCCESS
    assert digest(source) == before
    assert rgba(layer, 40, 30, 8, 8, "R'G'B'A u16") != rgba(source, 40, 30, 8, 8, "R'G'B'A u16")


FAILED = Gimp.PDBStatusType.EXECUTION_ERROR


@pytest.mark.parametrize("props,expect,words", [
    ({"engine": "mt", "style_name": "no-such-style"}, FAILED, "trained style"),     # not a choice: GIMP makes it
                                                                                      # "none", the plug-in refuses
    ({"engine": "mt", "style_name": ""}, FAILED, "trained style"),                   # the plug-in refuses
    ({"engine": "gatys", "style_file": Gio.File.new_for_path("/job/tests/pytest.ini")}, FAILED,
     "cannot open the style image"),                                                  # not an image
    ({"engine": "gatys", "style_file": Gio.File.new_for_path("/job/missing.png")},     # GIMP refuses the argument
     Gimp.PDBStatusType.CALLING_ERROR, ""),
    ({"engine": "mt", "style_name": STYLE, "server": "attic"}, FAILED, "no server named 'attic' is paired"),
])
def test_a_failure_inserts_nothing(image, props, expect, words):
    source = image.get_layers()[0]
    before = digest(source)
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 10, 10, 50, 40)
    status, message = run(image, source, **props)
    assert status == expect
    assert words in str(message)
    assert len(image.get_layers()) == 1 and digest(source) == before


def test_keypoint_paths_created_and_read_as_pixels(image):
    source = image.get_layers()[0]
    style = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path("/job/style.png"))
    image.insert_layer(style, None, 0)
    style.set_offsets(30, 10)
    image.select_rectangle(Gimp.ChannelOps.REPLACE, 8, 8, 40, 48)
    proc = Gimp.get_pdb().lookup_procedure(KEYPOINTS)
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [source])
    cfg.set_property("style-layer", style)
    cfg.set_property("count", 3)
    assert proc.run(cfg).index(0) == Gimp.PDBStatusType.SUCCESS
    names = [p.get_name() for p in image.get_paths()]
    assert paths.CONTENT_PATH in names and paths.STYLE_PATH in names
    c = paths.path_anchors(gimp_api.path_strokes(gimp_api.find_path(image, paths.CONTENT_PATH)))
    s = paths.path_anchors(gimp_api.path_strokes(gimp_api.find_path(image, paths.STYLE_PATH)))
    assert c == [(18.0, 20.0), (38.0, 20.0), (18.0, 44.0)]           # spread over the selection 8..48 x 8..56
    assert s == [(46.0, 22.0), (78.0, 22.0), (46.0, 46.0)]           # over the style layer at (30, 10), 64x48

    # an artist's own path (curves, two strokes) replaces the content path: anchors in order, relative to the crop
    image.remove_path(gimp_api.find_path(image, paths.CONTENT_PATH))
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="96" height="64">'
           f'<path id="{paths.CONTENT_PATH}" d="M 10 12 C 20 12 30 20 40 22 M 15 40 L 30 50"/></svg>')
    ok, imported = image.import_paths_from_string(svg, len(svg), True, False)
    assert ok
    p = actions.Params(engine="dst", style_source="layer", style_layer=style, keypoints="paths")
    pairing = actions.keypoint_pairs(gimp_api, image, p, gimp_api.selection(image, source)[0],
                                     gimp_api.drawable_rect(style))
    assert [kp.content for kp in pairing.pairs] == [(2.0, 4.0), (32.0, 14.0), (7.0, 32.0)]
    assert [kp.style for kp in pairing.pairs] == [(16.0, 12.0), (48.0, 12.0), (16.0, 36.0)]
    assert pairing.content_extra == 1 and pairing.style_extra == 0


def test_stylize_with_a_style_layer_if_the_daemon_has_gatys(image):
    from impasto_protocol.client import Client
    with Client.connect(timeout=10) as c:
        if "gatys" not in c.hello()["engines"]:
            pytest.skip("this daemon has no Gatys engine")
    source = image.get_layers()[0]
    style = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path("/job/style.png"))
    image.insert_layer(style, None, 0)
    style.set_visible(False)
    status, layer = run(image, source, engine="gatys", style_source="layer", style_layer=style, working_size=32,
                        steps_mode="custom", steps=2)
    assert status == Gimp.PDBStatusType.SUCCESS, layer
    assert layer.get_name() == f"{style.get_name()} · Gatys"
    assert rgba(layer, 40, 30, 8, 8) != rgba(source, 40, 30, 8, 8)


PROPOSE = "python-fu-impasto-propose-keypoints"
RERUN = "python-fu-impasto-rerun"


def _daemon_has(engine):
    from impasto_protocol.client import Client
    with Client.connect(timeout=10) as c:
        return engine in c.hello()["engines"]


def test_propose_keypoints_then_a_moved_anchor_changes_the_dst_job(image):
    """Propose keypoints writes one anchor per pair NBB + cleaning returned (within 0.5 px of its pixels); a moved
    anchor changes the DST job's keypoints (read back from the result's recipe); the warp overlay group is there,
    hidden, its layers over the result."""
    import json
    from impasto_gimp import pixels as gpixels
    from impasto_protocol.client import Client
    if not _daemon_has("dst"):
        pytest.skip("this daemon has no DST engine")
    source = image.get_layers()[0]
    style = Gimp.file_load_layer(Gimp.RunMode.NONINTERACTIVE, image, Gio.File.new_for_path("/job/input.png"))
    image.insert_layer(style, None, 0)                 # a copy of the picture: NBB pairs plenty
    style.set_visible(False)
    p = actions.Params(engine="dst", style_source="layer", style_layer=style, keypoints="auto", working_size=64)
    fmt = gpixels.wire_format(gimp_api.precision_name(image))
    crop, _, content = actions.read_content(gimp_api, image, source, fmt)
    sbuf, srect, _ = actions.read_style(gimp_api, p, fmt)
    with Client.connect(timeout=10) as c:
        probe = c.stylize(content, p.to_options(crop.long_side), style=sbuf, keypoints_only=True).wait(timeout=300)
    expected = probe.info["keypoints"]
    assert len(expected) >= 3, expected

    proc = Gimp.get_pdb().lookup_procedure(PROPOSE)
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [source])
    cfg.set_property("style-layer", style)
    cfg.set_property("working-size", 64)
    assert proc.run(cfg).index(0) == Gimp.PDBStatusType.SUCCESS
    c_pts = paths.path_anchors(gimp_api.path_strokes(gimp_api.find_path(image, paths.CONTENT_PATH)))
    s_pts = paths.path_anchors(gimp_api.path_strokes(gimp_api.find_path(image, paths.STYLE_PATH)))
    assert len(c_pts) == len(s_pts) == len(expected)
    for (cx, cy), (sx, sy), want in zip(c_pts, s_pts, expected):
        assert abs(cx - crop.x - want["content"][0]) <= 0.5 and abs(cy - crop.y - want["content"][1]) <= 0.5
        assert abs(sx - srect.x - want["style"][0]) <= 0.5 and abs(sy - srect.y - want["style"][1]) <= 0.5

    moved = [(c_pts[0][0] + 6, c_pts[0][1] + 4)] + c_pts[1:]           # the artist drags anchor 1
    gimp_api.replace_path(image, paths.CONTENT_PATH, moved)
    status, layer = run(image, source, engine="dst", keypoints="paths", style_source="layer", style_layer=style,
                        working_size=32, steps_mode="custom", steps=1)
    assert status == Gimp.PDBStatusType.SUCCESS, layer
    recipe = json.loads(gimp_api.read_recipe(layer))
    used = recipe["options"]["keypoints"]
    assert recipe["options"]["keypoint_mode"] == "markers" and len(used) == len(expected)
    assert abs(used[0]["content"][0] - (moved[0][0] - crop.x)) <= 0.01
    assert abs(used[0]["content"][1] - (moved[0][1] - crop.y)) <= 0.01
    names = [lay.get_name() for lay in image.get_layers()]                      # top first
    top = image.get_layers()[names.index(f"{layer.get_name()} · warp overlay")]
    assert names.index(top.get_name()) == names.index(layer.get_name()) - 1      # just above the result
    assert top.is_group() and not top.get_visible()
    kids = top.get_children()
    assert [k.get_name() for k in kids] == ["keypoints → targets", "warp grid"]
    assert all(drawable_box(k) == drawable_box(layer) for k in kids)


def test_rerun_from_a_result_layers_recipe_reproduces_it(image):
    source = image.get_layers()[0]
    status, first = run(image, source, engine="mt", style_name=STYLE, strength=0.8, seed=5)
    assert status == Gimp.PDBStatusType.SUCCESS, first
    assert gimp_api.read_recipe(first) is not None
    proc = Gimp.get_pdb().lookup_procedure(RERUN)
    cfg = proc.create_config()
    cfg.set_property("image", image)
    cfg.set_core_object_array("drawables", [first])
    res = proc.run(cfg)
    assert res.index(0) == Gimp.PDBStatusType.SUCCESS, res.index(1) if res.length() > 1 else ""
    again = res.index(1)
    assert again.get_name().startswith(first.get_name()) and again.get_id() != first.get_id()   # GIMP adds " #1"
    assert drawable_box(again) == drawable_box(first) and digest(again) == digest(first)


# -- a remote server (issue 18): run_gimp_tests.sh starts "studio" and "flaky" on a second host ------------------------
def remote_servers():
    """/job/remotes.json (tests/editors/remote_servers.py): where the servers are; paths relative to /job."""
    path = os.environ.get("IMPASTO_TEST_REMOTES")
    if not path:
        pytest.skip("no remote servers: run_gimp_tests.sh starts them (tests/editors/remote_servers.py)")
    with open(path) as f:
        return json.load(f)


def report(line):
    path = os.environ.get("IMPASTO_TEST_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def test_stylize_through_a_remote_server_over_curve(image):
    """From inside the chroot, the paired server "studio" on the second host's non-loopback address: the plug-in's
    job (Server: studio) goes there over CURVE and its result lands as a new masked layer, as locally."""
    from impasto_plugin import servers
    info = remote_servers()
    studio = info["servers"]["studio"]
    assert [c.name for c in servers.choices()] == ["", "flaky", "studio"]
    with servers.connect("studio", timeout=10) as c:            # the vendored client, in GIMP's Python
        assert c.info.curve and c.info.ip == studio["address"] and not c.info.ip.startswith("127.0.0.1")
        hello = c.hello()
        assert hello["remote_client"] == studio["client"] and STYLE in hello["styles"]
    log = os.path.join("/job", studio["log"])
    mark = f"event=remote_job client={studio['client']}"
    before = open(log).read().count(mark)
    source = image.get_layers()[0]
    src_before = digest(source)
    image.select_ellipse(Gimp.ChannelOps.REPLACE, 20, 10, 60, 40)
    t0 = time.time()
    status, layer = run(image, source, engine="mt", style_name=STYLE, server="studio")
    took = time.time() - t0
    assert status == Gimp.PDBStatusType.SUCCESS, layer
    assert image.get_layers() == [layer, source] and layer.get_name() == f"{STYLE} · MT"
    assert drawable_box(layer) == (20, 10, 60, 40) and digest(source) == src_before
    assert rgba(layer, 45, 25, 10, 10) != rgba(source, 45, 25, 10, 10)
    assert rgba(layer, 20, 10, 1, 1)[3] == 0 and rgba(layer, 50, 30, 1, 1)[3] == 255
    assert open(log).read().count(mark) == before + 1               # the job ran there, for this client
    report(f"remote job: GIMP (chroot) -> {studio['endpoint']} ({info['where']}) over CURVE as "
           f"{studio['client']!r}: MT {STYLE!r} on a 60x40 elliptic selection in {took:.1f} s, layer "
           f"{layer.get_name()!r} inserted at {drawable_box(layer)}")


def test_a_remote_server_vanishing_mid_job_is_reported_and_nothing_is_inserted(image):
    """"flaky" is killed (SIGKILL) a second into the plug-in's Gatys job: the call fails within the heartbeat
    deadline, naming the server, and the image is as it was."""
    info = remote_servers()
    source = image.get_layers()[0]
    before = digest(source)
    status, message = run(image, source, engine="gatys", style_file=Gio.File.new_for_path("/job/style.png"),
                          working_size=64, steps_mode="custom", steps=100000, server="flaky")
    done = time.time()
    assert status == FAILED
    assert "the server 'flaky' stopped answering" in str(message) and "nothing was changed" in str(message), message
    assert len(image.get_layers()) == 1 and digest(source) == before
    with open("/job/remote/flaky-killed.json") as f:
        killed = json.load(f)["killed_at"]
    assert done - killed < 10, done - killed
    report(f"vanished server: flaky ({info['servers']['flaky']['endpoint']}) killed a second into a Gatys job; "
           f"GIMP's call failed {done - killed:.1f} s later with {str(message)!r}; layers: "
           f"{[lay.get_name() for lay in image.get_layers()]}")
