"""Style discovery (shipped + user dir) and the mt engine through the registry."""
import pytest
import torch

from impasto.engines import stylize
from impasto.engines.mt.model_file import ModelFileError, StyleMetadata, save_model
from impasto.engines.mt.network import MTConfig, MultimodalTransferNet
from impasto.engines.mt.styles import find_style, list_styles
from impasto_protocol.options import StylizeOptions


@pytest.fixture
def style_dirs(tmp_path, monkeypatch):
    shipped, data = tmp_path / "shipped", tmp_path / "data"
    shipped.mkdir()
    (data / "styles").mkdir(parents=True)
    monkeypatch.setenv("IMPASTO_STYLES_DIR", str(shipped))
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(data))
    return shipped, data / "styles"


def _save(directory, name, title):
    torch.manual_seed(0)
    return save_model(directory / f"{name}.safetensors", MultimodalTransferNet(MTConfig.tiny()),
                      StyleMetadata(name=name, title=title, artist="A", year="1900"))


def _populate(style_dirs, scream_title: str, user_style: tuple[str, str]) -> None:
    """Two shipped styles, one user style and an unreadable user file."""
    shipped, user = style_dirs
    _save(shipped, "wave", "shipped wave")
    _save(shipped, "scream", scream_title)
    _save(user, *user_style)
    (user / "broken.safetensors").write_bytes(b"not a model")


def test_lists_shipped_and_user_styles_user_shadows(style_dirs):
    _populate(style_dirs, "shipped scream", ("wave", "my wave"))
    styles = {s.name: s for s in list_styles()}
    assert set(styles) == {"wave", "scream", "broken"}
    assert styles["wave"].source == "user" and styles["wave"].metadata.title == "my wave"
    assert styles["scream"].source == "shipped"
    assert not styles["broken"].ok and "not a readable safetensors" in styles["broken"].error
    assert find_style("wave").source == "user"
    assert find_style("nope") is None


def test_mt_engine_via_registry_and_errors(style_dirs):
    shipped, user = style_dirs
    _save(shipped, "tinystyle", "t")
    content = torch.rand(1, 4, 50, 70)
    opts = StylizeOptions(engine="mt", style_name="tinystyle", size=64, strength=0.5, preserve_color=True)
    out = stylize(content, None, opts)
    assert out.shape == (1, 4, 46, 64) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(Exception, match="no MT style called 'missing'.*tinystyle"):
        stylize(content, None, StylizeOptions(engine="mt", style_name="missing", size=64))
    (user / "bad.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelFileError, match="bad.safetensors"):
        stylize(content, None, StylizeOptions(engine="mt", style_name="bad", size=64))


def test_styles_command_lists(style_dirs, capsys):
    from impasto.cli import main
    _save(style_dirs[0], "wave", "The Great Wave")
    assert main(["styles"]) == 0
    assert "wave" in capsys.readouterr().out


def test_stylize_takes_a_model_file_path_as_style(style_dirs, tmp_path, capsys):
    """`--style some/dir/name.safetensors` runs that model with MT (it is not a painting), and a corrupt file there
    is reported as a broken model file, not as an unreadable image."""
    from impasto.cli import main
    from impasto.imageio import save_image
    model = _save(tmp_path, "loose", "a model outside the styles folders")
    save_image(torch.rand(1, 3, 40, 60), tmp_path / "photo.png")
    out = tmp_path / "out.png"
    assert main(["stylize", str(tmp_path / "photo.png"), "--style", str(model), "--size", "64", "-o", str(out),
                 "--no-progress"]) == 0
    assert out.is_file() and ", mt, " in capsys.readouterr().err
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 64)
    assert main(["stylize", str(tmp_path / "photo.png"), "--style", str(tmp_path / "broken.safetensors"),
                 "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "not a readable safetensors file" in err and "image" not in err


def test_the_daemon_offers_readable_styles_on_the_wire(style_dirs):
    from impasto.daemon import styles as wire_styles
    _populate(style_dirs, "", ("mine", "my style"))
    listed = {s["name"]: s for s in wire_styles.list_styles()}
    assert set(listed) == {"wave", "scream", "mine"}                   # the unreadable file is left out
    assert listed["wave"] == {"name": "wave", "title": "shipped wave", "artist": "A", "year": "1900",
                              "thumbnail": None}
    assert listed["scream"]["title"] == "scream"                       # no title: the name
    assert wire_styles.style_names() == ["mine", "scream", "wave"]
    assert wire_styles.shipped_style_names() == ["scream", "wave"]


def test_the_daemon_advertises_only_modules_that_import(tmp_path, monkeypatch):
    from impasto.daemon import validation
    (tmp_path / "imp_ok_engine.py").write_text("X = 1\n")
    (tmp_path / "imp_broken_engine.py").write_text("import no_such_module_for_impasto\n")    # the file exists
    monkeypatch.syspath_prepend(str(tmp_path))
    validation.module_available.cache_clear()
    monkeypatch.setitem(validation.ENGINE_MODULES, "ok", "imp_ok_engine")
    monkeypatch.setitem(validation.ENGINE_MODULES, "broken", "imp_broken_engine")
    try:
        engines = validation.available_engines()
        assert "ok" in engines and "broken" not in engines
        assert {"gatys", "strotss", "dst", "mt"} <= set(engines)
    finally:
        validation.module_available.cache_clear()
