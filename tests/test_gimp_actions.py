"""GIMP plug-in procedures without GIMP: the Stylize and Add-keypoint-paths flows over a fake gimp_api and a fake
daemon -- what is read, what is sent, what is inserted (and that nothing is on failure)."""
import pytest

from gimp_plugin_support import (Accepted, CancelledEvent, ErrorEvent, FakeApi, FakeClient, FakeImage, FakeLayer,
                                 FakePath, ProgressEvent, Rect, ResultEvent, invert, solid)

from impasto_gimp import actions, paths
from impasto_gimp.params import Params
from impasto_plugin.daemon import serve_command


@pytest.fixture
def scene():
    api = FakeApi()
    image = FakeImage(100, 80)
    source = image.add(FakeLayer("photo", Rect(10, 5, 60, 40), solid(Rect(10, 5, 60, 40), (200, 100, 50, 255))))
    return api, image, source


def run(api, image, layer, p, respond=invert):
    client = FakeClient(respond)
    return actions.stylize(api, image, [layer], p, connect_fn=lambda: client), client


def test_whole_layer_in_new_layer_above_in_one_undo_group(scene):
    api, image, source = scene
    before = bytes(source.pixels)
    out, client = run(api, image, source, Params(engine="mt", style_name="starry"))
    content, options, style = client.sent[0]
    assert (content.width, content.height, content.dtype, style) == (60, 40, "u8", None)
    assert (options.engine, options.style_name, options.max_side) == ("mt", "starry", 60)
    assert client.closed
    assert image.layers == [out.layer, source] and out.layer.name == "starry · MT"
    assert out.layer.rect == Rect(10, 5, 60, 40) and bytes(source.pixels) == before
    assert bytes(out.layer.pixels[:4]) == bytes([55, 155, 205, 255])
    assert image.undo_log == ["start", ("insert", "starry · MT"), "end"]
    assert api.progress[0] == ("start", "Impasto: starry · MT") and (0.5, "step 1/2") in api.progress
    assert api.progress[-1] == ("end",)


def test_selection_bounds_and_mask_as_alpha(scene):
    api, image, source = scene
    # selection 0..40 x 0..30 in the image, overlapping the layer at 10..40 x 5..30; left half of it feathered
    mask = bytes(([128] * 20 + [255] * 20) * 30)
    image.selection = (Rect(0, 0, 40, 30), mask)
    out, client = run(api, image, source, Params(engine="mt", style_name="s"))
    assert (client.sent[0][0].width, client.sent[0][0].height) == (30, 25)
    assert out.layer.rect == Rect(10, 5, 30, 25)
    alpha = out.layer.pixels[3::4]
    assert alpha[0] == 128 and alpha[9] == 128 and alpha[10] == 255 and alpha[29] == 255


def test_selection_outside_the_layer_is_refused(scene):
    api, image, source = scene
    image.selection = (Rect(80, 60, 10, 10), b"\xff" * 100)
    with pytest.raises(actions.PluginError, match="does not overlap"):
        run(api, image, source, Params(engine="mt", style_name="s"))
    assert image.layers == [source] and image.undo_log == []


def test_smaller_output_is_scaled_back_then_masked(scene):
    api, image, source = scene
    image.selection = (Rect(10, 5, 40, 40), bytes([0] * 40 + [255] * 40 * 39))
    out, client = run(api, image, source, Params(engine="mt", style_name="s", size_mode="custom", output_size=20))
    assert client.sent[0][1].max_side == 20
    assert out.layer.rect == Rect(10, 5, 40, 40)
    assert set(out.layer.pixels[3:40 * 4:4]) == {0} and set(out.layer.pixels[40 * 4 + 3::4]) == {255}


def test_style_from_a_layer_or_a_file(scene, tmp_path):
    api, image, source = scene
    style = image.add(FakeLayer("Monet", Rect(0, 0, 20, 16), solid(Rect(0, 0, 20, 16), (1, 2, 3, 255))))
    out, client = run(api, image, source, Params(engine="gatys", style_source="layer", style_layer=style))
    s = client.sent[0][2]
    assert (s.width, s.height, bytes(s.data[:4])) == (20, 16, bytes([1, 2, 3, 255]))
    assert out.name == "Monet · Gatys"
    f = tmp_path / "scream.png"
    f.write_bytes(b"png")
    api.files[str(f)] = (4, 2, bytes([9, 9, 9, 255]) * 8)
    out, client = run(api, image, source, Params(engine="gatys", style_file=str(f)))
    assert (client.sent[0][2].width, out.name) == (4, "scream · Gatys")
    with pytest.raises(actions.PluginError, match="does not exist"):
        run(api, image, source, Params(engine="gatys", style_file=str(tmp_path / "gone.png")))


@pytest.mark.parametrize("events,words", [
    ([Accepted("j", 0), ErrorEvent("unknown_style", "no MT style named 'x'")], "no MT style named 'x'"),
    ([Accepted("j", 0), ProgressEvent(0.3), CancelledEvent("client_gone")], "cancelled"),
    ([Accepted("j", 0)], "without a result"),
])
def test_daemon_failures_insert_nothing(scene, events, words):
    api, image, source = scene
    with pytest.raises(actions.PluginError, match=words):
        run(api, image, source, Params(engine="mt", style_name="x"), respond=lambda *a: events)
    assert image.layers == [source] and image.undo_log == []
    assert api.progress[0][0] == "start" and api.progress[-1] == ("end",)      # the bar does not keep running


def test_a_failure_while_inserting_removes_the_layer(scene):
    api, image, source = scene
    api.fail_write = True
    with pytest.raises(RuntimeError, match="disk full"):
        run(api, image, source, Params(engine="mt", style_name="s"))
    assert image.layers == [source]
    assert image.undo_log == ["start", ("insert", "s · MT"), ("remove", "s · MT"), "end"]
    assert api.progress[-1] == ("end",)


def test_only_one_painted_layer_is_accepted(scene):
    api, image, source = scene
    group = image.add(FakeLayer("group", Rect(0, 0, 10, 10), kind="group"))
    for layers, words in (([source, source], "exactly one"), ([group], "layer group")):
        with pytest.raises(actions.PluginError, match=words):
            actions.stylize(api, image, layers, Params(engine="mt", style_name="s"), connect_fn=None)


def test_keypoint_paths_feed_dst(scene):
    api, image, source = scene
    style = image.add(FakeLayer("Monet", Rect(50, 40, 40, 30)))
    p = Params(engine="dst", style_source="layer", style_layer=style, keypoints="paths")
    with pytest.raises(actions.PluginError, match="Add keypoint paths"):
        run(api, image, source, p)
    c, s = actions.add_keypoint_paths(api, image, [source], style, 2)
    assert [x.name for x in image.paths] == [paths.STYLE_PATH, paths.CONTENT_PATH]
    assert paths.path_anchors(c.strokes) == [(25.0, 15.0), (55.0, 15.0)]      # over the layer at (10, 5) 60x40
    assert paths.path_anchors(s.strokes) == [(60.0, 47.5), (80.0, 47.5)]      # over the style layer
    assert image.undo_log == ["start", "end"]
    out, client = run(api, image, source, p)
    opts = client.sent[0][1]
    assert opts.keypoint_mode == "markers"
    assert [(k.content, k.style) for k in opts.keypoints] == [((15.0, 10.0), (10.0, 7.5)), ((45.0, 10.0), (30.0, 7.5))]
    assert out.note == "2 keypoint pair(s) from the paths"
    # an artist-drawn path replaces the generated one: its anchors, in order, are used
    image.paths[1] = FakePath(paths.CONTENT_PATH, [[0, 0, 12, 7, 0, 0]])
    out, client = run(api, image, source, p)
    assert [k.content for k in client.sent[0][1].keypoints] == [(2.0, 2.0)]
    assert "1 style anchor(s) without a content twin" in out.note


def test_keypoints_need_the_style_as_a_layer(scene, tmp_path):
    api, image, source = scene
    f = tmp_path / "s.png"
    f.write_bytes(b"x")
    api.files[str(f)] = (2, 2, bytes(16))
    with pytest.raises(actions.PluginError, match="Style from: layer"):
        run(api, image, source, Params(engine="dst", style_file=str(f), keypoints="paths"))


def test_serve_command_from_install_info(tmp_path, monkeypatch):
    info = tmp_path / "install.json"
    monkeypatch.delenv("IMPASTO_SERVE_COMMAND", raising=False)
    assert actions.serve_command is serve_command and actions.locations.INSTALL_INFO.endswith("install.json")
    assert serve_command(str(info)) is None
    info.write_text('{"serve_command": ["/venv/bin/python", "-m", "impasto.cli", "serve"]}')
    assert serve_command(str(info)) == ["/venv/bin/python", "-m", "impasto.cli", "serve"]
    monkeypatch.setenv("IMPASTO_SERVE_COMMAND", "impasto serve")
    assert serve_command(str(info)) is None                     # the client reads the variable itself


def test_no_daemon_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("IMPASTO_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("IMPASTO_SERVE_COMMAND", str(tmp_path / "no-such-impasto"))
    with pytest.raises(actions.PluginError, match="cannot reach the Impasto daemon"):
        actions.connect()
    assert "not running" in actions.daemon_summary(timeout=0.5)


def _proposal(pairs):
    def respond(content, options, style):
        return [Accepted("j", 0), ProgressEvent(0.5, "keypoints: neural best buddies"),
                ResultEvent(None, {"keypoints": pairs})]
    return respond


def test_propose_keypoints_writes_both_paths_at_the_proposed_pixels_in_order(scene):
    api, image, source = scene
    style = image.add(FakeLayer("Monet", Rect(70, 50, 20, 16), solid(Rect(70, 50, 20, 16), (1, 2, 3, 255))))
    image.paths = [FakePath(paths.CONTENT_PATH, [paths.stroke_points([(1.0, 1.0)])])]      # an old path: replaced
    proposed = [{"content": [3.5, 4.25], "style": [2.0, 1.5]}, {"content": [50.0, 30.0], "style": [15.5, 12.0]}]
    client = FakeClient(_proposal(proposed))
    out = actions.propose_keypoints(api, image, [source], Params(style_source="layer", style_layer=style,
                                                                 working_size=256), connect_fn=lambda: client)
    content, options, sent_style = client.sent[0]
    assert client.keypoints_only and options.engine == "dst" and options.keypoint_mode == "auto"
    assert options.size == 60 and (content.width, sent_style.width) == (60, 20)
    c = paths.path_anchors(api.path_strokes(api.find_path(image, paths.CONTENT_PATH)))
    s = paths.path_anchors(api.path_strokes(api.find_path(image, paths.STYLE_PATH)))
    assert c == [(13.5, 9.25), (60.0, 35.0)] and s == [(72.0, 51.5), (85.5, 62.0)]      # image pixels, in order
    assert len(image.paths) == 2 and "2 keypoints proposed" in out.note
    # read back for a DST run from the paths: exactly the proposed pairs
    pairing = actions.keypoint_pairs(api, image, Params(engine="dst", keypoints="paths", style_source="layer",
                                                        style_layer=style), Rect(10, 5, 60, 40), Rect(70, 50, 20, 16))
    assert [(kp.content, kp.style) for kp in pairing.pairs] == [((3.5, 4.25), (2.0, 1.5)), ((50.0, 30.0), (15.5, 12.0))]


def test_a_failed_proposal_leaves_the_paths_alone(scene):
    api, image, source = scene
    style = image.add(FakeLayer("Monet", Rect(70, 50, 20, 16), solid(Rect(70, 50, 20, 16), (1, 2, 3, 255))))
    old = [FakePath(paths.CONTENT_PATH, [paths.stroke_points([(1.0, 1.0)])])]
    image.paths = list(old)
    client = FakeClient(lambda *a: [Accepted("j", 0), ErrorEvent("engine_error", "NBB failed")])
    with pytest.raises(actions.PluginError, match="NBB failed"):
        actions.propose_keypoints(api, image, [source], Params(style_source="layer", style_layer=style),
                                  connect_fn=lambda: client)
    assert image.paths == old and image.undo_log == []


def test_result_carries_its_recipe_and_rerun_makes_it_again(scene):
    from impasto_protocol.recipe import Recipe, StyleSource
    api, image, source = scene
    p = Params(engine="mt", style_name="starry", strength=0.5, steps_mode="custom", steps=9, seed=4)

    def respond(content, options, style):
        events = invert(content, options, style)
        recipe = Recipe(options=options.to_dict(), style=StyleSource("model", "cd" * 32, "starry"),
                        impasto="0.1.0", torch="2.14.1", device="cpu", precision="fp32")
        events[-1] = ResultEvent(events[-1].image, {"recipe": recipe.to_dict()})
        return events

    client = FakeClient(respond)
    first = actions.stylize(api, image, [source], p, connect_fn=lambda: client)
    recipe = Recipe.from_json(api.read_recipe(first.layer))
    assert image.undo_log == ["start", ("insert", "starry · MT"), ("parasite", "starry · MT"), "end"]   # one undo
    assert recipe.seed == 4 and recipe.options["steps"] == 9 and recipe.options["strength"] == 0.5
    again = actions.rerun(api, image, [first.layer], Params(), connect_fn=lambda: client)
    o1, o2 = client.sent[0][1], client.sent[1][1]
    assert o2.to_dict() == o1.to_dict()                                  # the same job, seed included
    assert bytes(again.layer.pixels) == bytes(first.layer.pixels)
    assert image.layers == [first.layer, again.layer, source]           # made from the layer under the result
    assert "made again from the recipe (mt starry seed 4)" in again.note
    with pytest.raises(actions.PluginError, match="no Impasto recipe"):
        actions.rerun(api, image, [source], Params(), connect_fn=lambda: client)


def test_dst_result_brings_its_warp_overlay_as_a_hidden_group_over_the_result(scene):
    from impasto_protocol.images import ImageBuffer
    api, image, source = scene
    style = image.add(FakeLayer("Monet", Rect(0, 0, 20, 16), solid(Rect(0, 0, 20, 16), (1, 2, 3, 255))))
    dot = bytearray(60 * 40 * 4)
    dot[(7 * 60 + 9) * 4:(7 * 60 + 9) * 4 + 4] = bytes([255, 0, 0, 255])

    def respond(content, options, style_img):
        events = invert(content, options, style_img)
        overlays = {"keypoints": ImageBuffer(60, 40, 4, "u8", bytes(dot)),
                    "grid": ImageBuffer(60, 40, 4, "u8", bytes([0, 255, 0, 100]) * (60 * 40))}
        events[-1] = ResultEvent(events[-1].image, {}, overlays)
        return events

    client = FakeClient(respond)
    out = actions.stylize(api, image, [source], Params(engine="dst", style_source="layer", style_layer=style),
                          connect_fn=lambda: client)
    assert client.overlay is True
    group = out.overlay
    assert image.layers[:3] == [group, out.layer, source] and group.kind == "group" and not group.visible
    assert group.name == "Monet · DST · warp overlay"
    assert [c.name for c in group.children] == ["keypoints → targets", "warp grid"]
    kp = group.children[0]
    assert kp.rect == out.layer.rect == Rect(10, 5, 60, 40)                       # aligned with the result
    assert bytes(kp.pixels[(7 * 60 + 9) * 4:(7 * 60 + 9) * 4 + 4]) == bytes([255, 0, 0, 255])
    assert image.undo_log == ["start", ("insert", "Monet · DST"), ("insert", "Monet · DST · warp overlay"), "end"]
    client2 = FakeClient(invert)
    actions.stylize(api, image, [source], Params(engine="mt", style_name="s"), connect_fn=lambda: client2)
    assert client2.overlay is False


# -- the Server argument: the local daemon or a paired remote server (impasto_plugin.servers) ------------------------
def test_the_server_argument_chooses_the_connection_of_every_procedure(scene, monkeypatch):
    api, image, source = scene
    asked = []

    def connect(server="local"):
        asked.append(server)
        return FakeClient(invert)
    monkeypatch.setattr(actions, "connect", connect)
    import json
    from impasto_protocol.options import StylizeOptions
    from impasto_protocol.recipe import Recipe
    first = actions.stylize(api, image, [source], Params(engine="mt", style_name="s", server="studio"))
    assert first.layer is not None and asked == ["studio"]
    recipe = Recipe(options=StylizeOptions(engine="mt", style_name="s").to_dict(), style=None, impasto="0.1.0",
                    torch="2.14.1", device="cpu", precision="fp32")
    api.store_recipe(first.layer, json.dumps(recipe.to_dict()))
    actions.rerun(api, image, [first.layer], Params(server="attic"))
    assert asked[-1] == "attic"                                         # Re-run runs where its dialog says
    actions.stylize(api, image, [source], Params(engine="mt", style_name="s"))
    assert asked[-1] == "local"
    style = image.add(FakeLayer("Monet", Rect(70, 50, 20, 16), solid(Rect(70, 50, 20, 16), (1, 2, 3, 255))))
    monkeypatch.setattr(actions, "connect", lambda server="local": asked.append(server) or FakeClient(_proposal(
        [{"content": [3.0, 4.0], "style": [2.0, 1.0]}])))
    actions.propose_keypoints(api, image, [source], Params(style_source="layer", style_layer=style, server="studio"))
    assert asked[-1] == "studio"


def test_an_unknown_server_is_refused_by_name_and_nothing_starts(scene, tmp_path, monkeypatch):
    api, image, source = scene
    monkeypatch.setenv("IMPASTO_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("IMPASTO_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("IMPASTO_SERVE_COMMAND", str(tmp_path / "no-such-impasto"))
    import impasto_protocol.client as client_mod
    monkeypatch.setattr(client_mod, "spawn_daemon", lambda *a, **k: pytest.fail("nothing may be started"))
    with pytest.raises(actions.PluginError, match="no server named 'attic' is paired.*impasto remote add attic"):
        actions.stylize(api, image, [source], Params(engine="mt", style_name="s", server="attic"))
    assert image.layers == [source] and image.undo_log == [] and api.progress == []
    assert "no server named 'attic' is paired" in actions.daemon_summary("attic")


def test_a_silent_server_is_named_in_the_error_and_in_the_dialog(tmp_path, monkeypatch):
    from impasto_protocol.remote import new_keypair, new_profile, save_remote
    from tests.support.remote import free_port
    monkeypatch.setenv("IMPASTO_CONFIG_DIR", str(tmp_path / "config"))
    save_remote(new_profile("studio", f"tcp://127.0.0.2:{free_port('127.0.0.2')}", new_keypair()[0]))
    monkeypatch.setattr(actions, "CONNECT_TIMEOUT", 0.5)
    with pytest.raises(actions.PluginError, match="The server 'studio' at tcp://127.0.0.2:.* did not answer"):
        actions.connect("studio")
    summary = actions.daemon_summary("studio", timeout=0.5)
    assert "did not answer" in summary and "allow-list" in summary
    assert summary.endswith("Server: local (this computer) or a paired server: studio")
