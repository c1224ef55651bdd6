"""Files that open right in the CLI (EXIF orientation, ICC profiles, 16 bit), batches, and results' recipes.

Every input is generated here; expected pixels come from an independent path (Pillow's ``exif_transpose`` and
``ImageCms``; imagecodecs' own decoder) rather than from ``impasto.imageio``.
"""
from __future__ import annotations

import io
import json

import imagecodecs
import numpy as np
import pytest
import torch
from PIL import Image, ImageCms, ImageOps

from impasto.cli import main
from impasto.imageio import profile_name, read_image, save_image

pytestmark = pytest.mark.timeout(300)

FAST = ["--size", "full", "--steps", "1", "--optimizer", "adam", "--no-progress"]
ADOBE_LIKE = dict(whitepoint=[0.3127, 0.3290, 1.0], primaries=[0.64, 0.33, 1.0, 0.21, 0.71, 1.0, 0.15, 0.06, 1.0],
                  gamma=2.2)          # Adobe RGB (1998) primaries with a pure 2.2 gamma: a wide-gamut, non-sRGB space


@pytest.fixture()
def style(tmp_path):
    g = torch.Generator().manual_seed(1)
    s = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(32, 32), mode="nearest")
    save_image(s, tmp_path / "style.png")
    return tmp_path / "style.png"


def _stored_pixels(w: int = 40, h: int = 24) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[..., 2] = 90
    a[:8, :8] = (250, 10, 10)          # a red block in the stored top-left corner
    return a


def test_rotated_exif_jpeg_is_read_upright(tmp_path, style):
    path = tmp_path / "phone.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6                   # "rotate 90° clockwise to display"
    Image.fromarray(_stored_pixels()).save(path, exif=exif, quality=95)
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    pic = read_image(path)
    got = (pic.tensor[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert pic.orientation == 6 and got.shape == (40, 24, 3) == expected.shape
    assert np.array_equal(got, expected)
    assert got[2, -3, 0] > 200 and got[-3, 2, 0] < 60           # the red block is now top-right
    out = tmp_path / "out.png"
    assert main(["stylize", str(path), "--style", str(style), "-o", str(out), "--strength", "0", *FAST]) == 0
    assert Image.open(out).size == (24, 40)


def test_jpeg_with_a_wide_gamut_profile_is_converted_to_srgb(tmp_path, style):
    icc = imagecodecs.cms_profile("rgb", **ADOBE_LIKE)
    stored = np.zeros((16, 24, 3), np.uint8)
    stored[:, :8] = (40, 160, 150)
    stored[:, 8:16] = (128, 128, 128)
    stored[:, 16:] = (200, 60, 40)
    path = tmp_path / "wide.jpg"
    Image.fromarray(stored).save(path, icc_profile=icc, quality=100, subsampling=0)
    decoded = Image.open(path)
    expected = np.asarray(ImageCms.profileToProfile(decoded, ImageCms.ImageCmsProfile(io.BytesIO(icc)),
                                                    ImageCms.createProfile("sRGB"), outputMode="RGB")).astype(int)
    pic = read_image(path)
    got = (pic.tensor[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(int)
    assert pic.converted_from == "RGB built-in"
    assert np.abs(got - expected).max() <= 1
    assert np.abs(got - np.asarray(decoded).astype(int)).max() > 20     # the conversion did something visible
    out = tmp_path / "out.jpg"
    assert main(["stylize", str(path), "--style", str(style), "-o", str(out), "--strength", "0", *FAST]) == 0
    assert "srgb" in profile_name(Image.open(out).info["icc_profile"]).lower()


def _gradient16(w: int = 1024, h: int = 16) -> np.ndarray:
    ramp = np.linspace(0, 65535, w).round().astype(np.uint16)
    return np.stack([np.tile(ramp, (h, 1)), np.tile(ramp[::-1], (h, 1)), np.full((h, w), 30000, np.uint16)], -1)


def test_16bit_png_in_and_out(tmp_path, style):
    src = _gradient16()
    path = tmp_path / "gradient16.png"
    path.write_bytes(imagecodecs.png_encode(src))
    assert Image.open(path).mode == "RGB"           # what Pillow alone makes of it: 8 bit
    pic = read_image(path)
    assert pic.bits == 16 and len(torch.unique(pic.tensor[0, 0])) > 256
    out = tmp_path / "out.png"
    assert main(["stylize", str(path), "--style", str(style), "-o", str(out), "--strength", "0", *FAST]) == 0
    back = imagecodecs.png_decode(out.read_bytes())
    assert back.dtype == np.uint16 and back.shape == src.shape
    assert len(np.unique(back[..., 0])) > 256
    assert np.abs(back.astype(int) - src.astype(int)).max() <= 1
    assert "srgb" in profile_name(Image.open(out).info["icc_profile"]).lower()


def test_16bit_tiff_in_and_out(tmp_path, style):
    import tifffile
    src = _gradient16(512, 32)
    path = tmp_path / "gradient16.tif"
    tifffile.imwrite(path, src, photometric="rgb")
    out = tmp_path / "out.tif"
    assert main(["stylize", str(path), "--style", str(style), "-o", str(out), "--strength", "0", *FAST]) == 0
    back = tifffile.imread(out)
    assert back.dtype == np.uint16 and len(np.unique(back[..., 0])) > 256
    assert np.abs(back.astype(int) - src.astype(int)).max() <= 1


def test_unreadable_files_name_the_file_and_the_problem(tmp_path):
    good = tmp_path / "good.jpg"
    Image.fromarray(_stored_pixels()).save(good)
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:200])
    for path in (cut,):
        with pytest.raises(Exception) as e:
            read_image(path)
        assert str(path) in str(e.value) and "not a readable image" in str(e.value)


def _mt_style() -> str:
    from impasto.engines.mt.styles import style_names
    names = style_names()
    if not names:
        pytest.skip("no shipped MT style")
    return names[0]


def test_batch_keeps_going_past_a_broken_file_and_loads_the_model_once(tmp_path, monkeypatch, capsys):
    from impasto.engines.mt import engine as mt_engine

    loads = []
    real = mt_engine.load_model
    monkeypatch.setattr(mt_engine, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    mt_engine._cache.clear()
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(2):
        Image.fromarray(_stored_pixels(48 + 8 * i, 32)).save(photos / f"p{i}.png")
    (photos / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    single = tmp_path / "single.jpg"
    Image.fromarray(_stored_pixels()).save(single)
    out = tmp_path / "out"
    rc = main(["stylize", str(single), str(photos), "--style", _mt_style(), "-o", f"{out}/", "--size", "64",
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1
    assert sorted(p.name for p in out.iterdir()) == ["p0.png", "p1.png", "single.png"]
    assert "stylized 3 of 4 pictures" in err and "1 failed:" in err
    failed = err.split("1 failed:")[1].strip().splitlines()
    assert len(failed) == 1 and "broken.png" in failed[0] and "not a readable image" in failed[0]
    assert len(loads) == 1


def test_result_carries_its_recipe_and_the_recipe_makes_the_same_pixels(tmp_path, style):
    content = tmp_path / "content.png"
    g = torch.Generator().manual_seed(0)
    save_image(torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(30, 40), mode="bilinear"),
               content)
    first = tmp_path / "first.png"
    assert main(["stylize", str(content), "--style", str(style), "-o", str(first), "--engine", "gatys",
                 "--size", "32", "--steps", "3", "--optimizer", "adam", "--seed", "7", "--no-progress"]) == 0
    recipe = json.loads(Image.open(first).info["impasto:recipe"])
    assert recipe["options"]["engine"] == "gatys" and recipe["options"]["seed"] == 7
    assert recipe["options"]["steps"] == 3 and recipe["style"]["kind"] == "painting"
    assert recipe["style"]["name"] == "style.png" and len(recipe["style"]["sha256"]) == 64
    assert recipe["torch"] == torch.__version__ and recipe["device"] == "cpu" and recipe["precision"]
    again = tmp_path / "again.png"
    assert main(["stylize", str(content), "--style", str(style), "-o", str(again), "--recipe", str(first),
                 "--no-progress"]) == 0
    a, b = np.asarray(Image.open(first)), np.asarray(Image.open(again))
    assert np.array_equal(a, b)
    other = tmp_path / "other.png"            # the same command with another seed gives other pixels
    assert main(["stylize", str(content), "--style", str(style), "-o", str(other), "--engine", "gatys",
                 "--size", "32", "--steps", "3", "--optimizer", "adam", "--seed", "8", "--no-progress",
                 "--init", "noise"]) == 0
    assert not np.array_equal(a, np.asarray(Image.open(other)))


def test_mt_recipe_names_the_model_and_its_file_hash(tmp_path):
    from impasto.engines.mt.styles import find_style
    from impasto.recipe import file_sha256

    name = _mt_style()
    content = tmp_path / "c.png"
    Image.fromarray(_stored_pixels()).save(content)
    out = tmp_path / "o.png"
    assert main(["stylize", str(content), "--style", name, "-o", str(out), "--size", "64", "--no-progress"]) == 0
    recipe = json.loads(Image.open(out).info["impasto:recipe"])
    assert recipe["style"] == {"kind": "model", "name": name, "sha256": file_sha256(find_style(name).path)}
    assert recipe["precision"] in ("fp32", "bf16")
