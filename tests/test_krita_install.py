"""`impasto install-plugin krita`: layout, wheel choice for the editor's Python, kritarc editing (offline)."""
import json
import zipfile

import pytest

from impasto.cli import main
from impasto.plugin_install import common, krita
from impasto.plugin_install.common import PythonTarget, WheelName


def fake_wheel(folder, filename):
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / filename, "w") as z:
        z.writestr("zmq/__init__.py", "__version__ = 'fake'\ndef zmq_version():\n    return '0'\n")
        z.writestr("pyzmq-27.0.0.dist-info/METADATA", "Name: pyzmq\n")
    return folder / filename


def test_wheel_tags_match_the_editor_python():
    t311 = PythonTarget((3, 11), ["manylinux_2_36_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64"])
    ok = WheelName.parse("pyzmq-27.3.0-cp311-cp311-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl")
    assert ok.fits(t311)
    assert not WheelName.parse("pyzmq-27.3.0-cp312-cp312-manylinux_2_28_x86_64.whl").fits(t311)
    assert not WheelName.parse("pyzmq-27.3.0-cp311-cp311-win_amd64.whl").fits(t311)
    assert WheelName.parse("pyzmq-28.0.0-cp310-abi3-manylinux_2_28_x86_64.whl").fits(t311)
    assert not WheelName.parse("pyzmq-28.0.0-cp312-abi3-manylinux_2_28_x86_64.whl").fits(t311)
    with pytest.raises(ValueError):
        WheelName.parse("pyzmq.tar.gz")


def test_platform_tags_and_versions():
    tags = common.host_platform_tags("Linux", "x86_64", (2, 36))
    assert tags[0] == "manylinux_2_36_x86_64" and "manylinux_2_28_x86_64" in tags and tags[-1] == "manylinux2014_x86_64"
    assert common.host_platform_tags("Windows", "AMD64") == ["win_amd64"]
    assert common.host_platform_tags("Darwin", "arm64")[0] == "macosx_15_0_arm64"
    assert common.parse_python_version("3.11") == (3, 11) == common.parse_python_version("cp311")
    with pytest.raises(common.InstallError):
        common.parse_python_version("eleven")
    cmd = common.pip_download_command(PythonTarget((3, 10), ["win_amd64"]), common.Path("/w"))
    assert cmd[cmd.index("--python-version") + 1] == "3.10" and "--only-binary=:all:" in cmd and "win_amd64" in cmd


def test_kritarc_enable_keeps_everything_else(tmp_path):
    rc = tmp_path / "kritarc"
    rc.write_text("[General]\nfoo=1\n\n[python]\nenable_other=true\nenable_impasto_krita=false\n\n[Theme]\nx=y\n")
    krita.enable_in_kritarc(rc)
    text = rc.read_text()
    assert "enable_impasto_krita=true" in text and "enable_impasto_krita=false" not in text
    assert "enable_other=true" in text and "[Theme]\nx=y" in text and text.count("[python]") == 1
    fresh = tmp_path / "new" / "kritarc"
    krita.enable_in_kritarc(fresh)
    assert fresh.read_text() == "[python]\nenable_impasto_krita=true\n"


def test_install_into_a_pykrita_folder_offline(tmp_path, capsys):
    wheels = tmp_path / "wheels"
    fake_wheel(wheels, "pyzmq-27.0.0-cp312-cp312-manylinux_2_28_x86_64.whl")       # wrong Python: skipped
    fake_wheel(wheels, "pyzmq-27.0.0-cp311-cp311-manylinux_2_28_x86_64.whl")
    pykrita = tmp_path / "share" / "krita" / "pykrita"
    rc = tmp_path / "config" / "kritarc"
    rc_code = main(["install-plugin", "krita", "--pykrita-dir", str(pykrita), "--python-version", "3.11",
                    "--platform", "manylinux_2_28_x86_64", "--wheel-dir", str(wheels), "--kritarc", str(rc)])
    assert rc_code == 0
    out = capsys.readouterr().out
    assert "cp311-cp311" in out
    pkg = pykrita / "impasto_krita"
    assert (pykrita / "impasto.desktop").is_file() and (pkg / "krita_api.py").is_file()
    assert (pkg / "vendor" / "impasto_protocol" / "client.py").is_file()
    assert (pkg / "vendor" / "impasto_plugin" / "jobs.py").is_file()            # the plugin core beside it
    assert "fake" in (pkg / "vendor" / "zmq" / "__init__.py").read_text()
    assert not list(pkg.rglob("__pycache__"))
    assert (pykrita.parent / "actions" / "impasto.action").is_file()
    info = json.loads((pkg / "install.json").read_text())
    assert info["python_target"] == "3.11" and info["serve_command"][-1] == "serve"
    assert "enable_impasto_krita=true" in rc.read_text()
    # no wheel for the asked Python: a clear message with the pip command to run
    assert main(["install-plugin", "krita", "--pykrita-dir", str(pykrita), "--python-version", "3.10",
                 "--platform", "manylinux_2_28_x86_64", "--wheel-dir", str(wheels), "--no-enable"]) == 2
    err = capsys.readouterr().err
    assert "no pyzmq wheel for Python 3.10" in err and "pip download" in err
