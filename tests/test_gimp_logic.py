"""GIMP plug-in logic without GIMP: arguments -> options, pixels, keypoint paths."""
import pytest

from gimp_plugin_support import Rect

from impasto_gimp import paths, pixels
from impasto_gimp.params import (DIALOG_GROUPS, KEYPOINT_ARGS, SENSITIVITY, STYLIZE_ARGS, ParamError, Params)
from impasto_protocol.images import ImageBuffer
from impasto_protocol.options import KeypointPair


def test_every_params_field_is_a_procedure_argument_and_back():
    names = {a.name for a in STYLIZE_ARGS}
    assert names == {f.replace("_", "-") for f in Params.__dataclass_fields__}
    grouped = [n for _, _, members in DIALOG_GROUPS for n in members]
    assert sorted(grouped) == sorted(names)                         # the dialog shows each argument once
    for name, (depends, values, _) in SENSITIVITY.items():
        dep = next(a for a in STYLIZE_ARGS if a.name == depends)
        assert name in names and dep.kind == "choice" and set(values) <= set(dep.choices)
    for a in STYLIZE_ARGS + KEYPOINT_ARGS:
        if a.kind == "choice":
            assert a.default in a.choices
        if a.kind in ("int", "double"):
            assert a.minimum <= a.default <= a.maximum


def test_params_from_config_and_to_options():
    values = {"engine": "mt", "style-name": " starry ", "style-source": "file", "style-file": None,
              "style-layer": None, "strength": 0.5, "preserve-colors": True, "keypoints": "auto",
              "size-mode": "canvas", "output-size": 300, "working-size": 256, "steps-mode": "default", "steps": 9,
              "seed": 0, "server": " studio "}
    p = Params.from_config(values.__getitem__).check()
    assert p.style_name == "starry" and p.style_file == "" and p.server == "studio"
    assert Params.from_config({**values, "server": None}.__getitem__).server == "local"      # an empty field
    o = p.to_options(1000)
    assert (o.engine, o.style_name, o.size, o.max_side, o.strength, o.preserve_color, o.steps) == \
        ("mt", "starry", 256, 1000, 0.5, True, None)
    assert p.layer_name() == "starry · MT"
    small = Params(engine="gatys", style_file="/x/The Scream.jpg", size_mode="custom", output_size=300,
                   working_size=512, steps_mode="custom", steps=7)
    o = small.check().to_options(1000)
    assert (o.max_side, o.size, o.steps, o.style_name) == (300, 300, 7, None)
    assert small.layer_name() == "The Scream · Gatys"
    assert Params(engine="gatys", style_source="layer", style_layer=object()).layer_name("Monet") == "Monet · Gatys"
    assert Params(size_mode="custom", output_size=5000).output_side(800) == 800   # never larger than the crop
    assert Params(size_mode="canvas", output_size=300).output_side(800) == 800    # the number is for "custom"
    assert Params(steps_mode="default", steps=7).to_options(64).steps is None


def test_the_dialog_says_canvas_and_default_in_words_and_lists_installed_styles():
    from impasto_gimp.params import NO_STYLES, SIZE_MODES, STEPS_MODES, stylize_args
    by_name = {a.name: a for a in STYLIZE_ARGS}
    assert by_name["size-mode"].kind == "choice" and by_name["size-mode"].default == "canvas"
    assert SIZE_MODES["canvas"].startswith("Canvas") and STEPS_MODES["default"] == "Engine default"
    assert by_name["output-size"].minimum >= 16 and by_name["steps"].minimum >= 1     # no magic 0 left
    assert by_name["style-name"].kind == "choice" and by_name["style-name"].default == NO_STYLES
    args = {a.name: a for a in stylize_args({"starry_night": "The Starry Night", "udnie": "udnie"})}
    assert args["style-name"].choices == {NO_STYLES: "(choose a trained style)",
                                          "starry_night": "The Starry Night (starry_night)", "udnie": "udnie"}
    assert args["style-name"].default == NO_STYLES            # what GIMP turns an unknown name into: refused
    values = {f.replace("_", "-"): getattr(Params(), f) for f in Params.__dataclass_fields__}
    values.update({"engine": "mt", "style-name": NO_STYLES, "style-file": None})
    with pytest.raises(ParamError, match="choose one in 'MT style'"):
        Params.from_config(values.__getitem__).check()


def test_installed_styles_come_from_the_daemon_and_are_remembered(tmp_path, monkeypatch):
    from tests.support.daemon import DaemonProcess
    from impasto.engines.mt.styles import style_names
    from impasto_gimp import actions
    cache = tmp_path / "styles.json"
    run_dir = tmp_path / "run"
    monkeypatch.setenv("IMPASTO_RUNTIME_DIR", str(run_dir))
    assert actions.installed_styles(cache=str(cache)) == {}                       # no daemon, nothing remembered
    with DaemonProcess(run_dir, test_engines=False):
        live = actions.installed_styles(cache=str(cache))
    assert sorted(live) == sorted(style_names()) and all(live.values())
    assert actions.installed_styles(cache=str(cache)) == live                     # daemon gone: the list it gave


@pytest.mark.parametrize("p,words", [
    (Params(engine="mt"), "needs a trained style"),
    (Params(engine="gatys"), "style image file"),
    (Params(engine="gatys", style_source="layer"), "style layer"),
    (Params(engine="nope"), "unknown engine"),
    (Params(keypoints="sometimes"), "unknown keypoints"),
])
def test_params_check_says_what_to_fix(p, words):
    with pytest.raises(ParamError, match=words):
        p.check()


def test_keypoint_modes():
    pair = [KeypointPair((1, 2), (3, 4))]
    dst = Params(engine="dst", style_source="layer", style_layer=object(), keypoints="paths")
    assert dst.uses_paths and dst.to_options(64, pair).keypoint_mode == "markers"
    assert dst.to_options(64, pair).keypoints == pair
    with pytest.raises(ParamError, match="Add keypoint paths"):
        dst.to_options(64, [])
    both = Params(engine="dst", style_source="layer", style_layer=object(), keypoints="both")
    assert both.to_options(64, []).keypoint_mode == "auto"           # no paths: automatic only
    assert Params(engine="gatys", style_file="s.png", keypoints="paths").to_options(64).keypoint_mode == "none"
    with pytest.raises(ParamError, match="too small"):
        dst.to_options(15, pair)


def test_anchors_from_bezier_triples_and_polylines():
    assert paths.anchors([0, 0, 1, 1, 0, 0, 5, 5, 6, 6, 7, 7]) == [(1.0, 1.0), (6.0, 6.0)]   # C A C  C A C
    assert paths.anchors([1, 2, 3, 4]) == [(1.0, 2.0), (3.0, 4.0)]                            # not triples
    with pytest.raises(paths.PathError):
        paths.anchors([1, 2, 3])
    pts = [(10.0, 20.0), (30.5, 40.0)]
    assert paths.path_anchors([paths.stroke_points(pts), paths.stroke_points([(1.0, 1.0)])]) == pts + [(1.0, 1.0)]


def test_pairing_by_order_relative_to_each_image():
    got = paths.pair([(10, 20), (30, 40), (50, 60)], [(105, 5), (110, 10)], (10, 10), (100, 0))
    assert [(kp.content, kp.style) for kp in got.pairs] == [((0, 10), (5, 5)), ((20, 30), (10, 10))]
    assert got.content_extra == 1 and got.style_extra == 0
    assert "1 content anchor(s) without a style twin" in got.note()


def test_default_positions_spread_inside_the_rect():
    pos = paths.default_positions(Rect(8, 8, 40, 48), 12)
    assert pos[:3] == [(18.0, 20.0), (38.0, 20.0), (18.0, 44.0)]
    assert len(set(pos)) == 12
    assert all(8 <= x <= 48 and 8 <= y <= 56 for x, y in pos)


def test_wire_format_by_precision():
    assert pixels.wire_format("GIMP_PRECISION_U8_NON_LINEAR") == ("R'G'B'A u8", "u8", 1)
    assert pixels.wire_format("GIMP_PRECISION_U8_LINEAR")[1] == "u8"
    for p in ("GIMP_PRECISION_U16_NON_LINEAR", "GIMP_PRECISION_U32_LINEAR", "GIMP_PRECISION_HALF_PERCEPTUAL",
              "GIMP_PRECISION_FLOAT_LINEAR", "GIMP_PRECISION_DOUBLE_NON_LINEAR"):
        assert pixels.wire_format(p) == ("R'G'B'A u16", "u16", 2)
    with pytest.raises(pixels.PixelError):
        pixels.wire_format("GIMP_PRECISION_WEIRD")


def test_mask_becomes_alpha_8_and_16_bit():
    rgba = bytes([10, 20, 30, 255, 10, 20, 30, 128, 1, 2, 3, 255])
    out = pixels.apply_mask(rgba, bytes([0, 255, 128]), 1)
    assert list(out[3::4]) == [0, 128, 128] and out[:3] == rgba[:3]
    wide = pixels.convert_depth(rgba, 1, 2)
    out16 = pixels.apply_mask(wide, bytes([0, 255, 128]), 2)
    assert pixels.convert_depth(out16, 2, 1)[3::4] == bytes([0, 128, 128])
    assert pixels.apply_mask(rgba, b"\xff\xff\xff", 1) == bytearray(rgba)
    with pytest.raises(pixels.PixelError):
        pixels.apply_mask(rgba, b"\xff", 1)


def test_results_of_any_layout_become_rgba():
    rgb = ImageBuffer(2, 1, 3, "u8", bytes([1, 2, 3, 4, 5, 6]))
    assert pixels.buffer_to_rgba(rgb) == bytearray([1, 2, 3, 255, 4, 5, 6, 255])
    bgr = ImageBuffer(1, 1, 4, "u8", bytes([3, 2, 1, 9]), bgr=True)
    assert pixels.buffer_to_rgba(bgr) == bytearray([1, 2, 3, 9])
    padded = ImageBuffer(1, 2, 4, "u8", bytes([1, 2, 3, 4, 0, 0, 5, 6, 7, 8, 0, 0]), stride=6)
    assert pixels.buffer_to_rgba(padded) == bytearray([1, 2, 3, 4, 5, 6, 7, 8])
    assert pixels.convert_depth(pixels.convert_depth(bytes(range(256)), 1, 2), 2, 1) == bytes(range(256))
    with pytest.raises(pixels.PixelError):
        pixels.buffer_to_rgba(ImageBuffer(1, 1, 4, "f32", bytes(16)))


def test_dialog_mnemonics_are_unique_and_free_of_the_buttons():
    # GIMP's procedure dialog has _Load Saved Settings, _Save Settings, _Help, _Reset, _Cancel, _OK
    taken = set("lshrco")
    for args in (STYLIZE_ARGS, KEYPOINT_ARGS):
        keys = [a.nick[a.nick.index("_") + 1].lower() for a in args]
        assert len(keys) == len(set(keys)), keys
        assert not set(keys) & taken, [a.nick for a in args if a.nick[a.nick.index("_") + 1].lower() in taken]
