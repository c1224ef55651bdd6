"""`impasto install-plugin gimp`: layout, executable bit, vendored client + pyzmq for GIMP's Python (offline)."""
import json
import os
import subprocess
import sys

import pytest

from impasto.cli import main
from impasto.plugin_install import gimp
from impasto.plugin_install.common import InstallError
from test_krita_install import fake_wheel


def test_install_layout(tmp_path, capsys):
    wheels = tmp_path / "wheels"
    fake_wheel(wheels, "pyzmq-27.3.0-cp312-abi3-manylinux_2_26_x86_64.manylinux_2_28_x86_64.whl")
    fake_wheel(wheels, "pyzmq-27.3.0-cp311-cp311-manylinux_2_28_x86_64.whl")       # wrong Python: not taken
    dest = tmp_path / "plug-ins"
    rc = main(["install-plugin", "gimp", "--plugins-dir", str(dest), "--python-version", "3.13",
               "--platform", "manylinux_2_28_x86_64", "--wheel-dir", str(wheels)])
    assert rc == 0
    plug = dest / "impasto"
    exe = plug / "impasto.py"
    assert exe.is_file() and os.access(exe, os.X_OK) and exe.read_text().startswith("#!/usr/bin/env python3")
    for f in ("actions.py", "gimp_api.py", "params.py", "paths.py", "pixels.py", "locations.py"):
        assert (plug / "impasto_gimp" / f).is_file()
    assert (plug / "vendor" / "impasto_protocol" / "client.py").is_file()
    for f in ("deps.py", "geometry.py", "keypoints.py", "jobs.py", "daemon.py", "errors.py"):
        assert (plug / "vendor" / "impasto_plugin" / f).is_file()
    assert (plug / "vendor" / "zmq" / "__init__.py").is_file()
    info = json.loads((plug / "install.json").read_text())
    assert info["editor"] == "gimp" and info["python_target"] == "3.13"
    assert info["pyzmq_wheel"].startswith("pyzmq-27.3.0-cp312-abi3")
    assert info["serve_command"][:3] == [sys.executable, "-m", "impasto.cli"]
    assert not list(plug.rglob("__pycache__"))
    assert "installed the GIMP plug-in" in capsys.readouterr().out
    # reinstalling replaces the copy (no stale files)
    (plug / "impasto_gimp" / "stale.py").write_text("x")
    main(["install-plugin", "gimp", "--plugins-dir", str(dest), "--python-version", "3.13", "--no-zmq"])
    assert not (plug / "impasto_gimp" / "stale.py").exists()


def test_no_wheel_for_gimps_python_says_how_to_get_one(tmp_path):
    wheels = tmp_path / "wheels"
    fake_wheel(wheels, "pyzmq-27.3.0-cp311-cp311-manylinux_2_28_x86_64.whl")
    with pytest.raises(InstallError, match="pip download"):
        gimp.install(gimp_args(tmp_path, wheels))


def gimp_args(tmp_path, wheels):
    import argparse
    p = argparse.ArgumentParser()
    gimp.add_arguments(p)
    return p.parse_args(["--plugins-dir", str(tmp_path / "p"), "--python-version", "3.13", "--platform",
                         "manylinux_2_28_x86_64", "--wheel-dir", str(wheels)])


def test_interpreter_files():
    assert gimp.interpreter_from_interp("# comment\npython=/usr/bin/python3\n") == "/usr/bin/python3"
    assert gimp.interpreter_from_interp("/opt/gimp/bin/python3.12=/opt/gimp/bin/python3.12\n") == \
        "/opt/gimp/bin/python3.12"
    assert gimp.interpreter_from_interp("#:Scheme-ext:E::scm::/path/to/scm:\n") is None


def test_detect_python_from_the_python3_beside_gimp(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "gimp-3.0").write_text("#!/bin/sh\n")
    (bindir / "gimp-3.0").chmod(0o755)
    (bindir / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.setattr(gimp, "_INTERP_GLOBS", [])
    version, how = gimp.detect_python_version()
    assert version == sys.version_info[:2] and "gimp-3.0" in how
    (bindir / "gimp-3.0").unlink()
    with pytest.raises(InstallError, match="--python-version"):
        gimp.detect_python_version()


def test_default_plugins_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    if sys.platform.startswith("linux"):
        assert gimp.default_plugins_dir() == tmp_path / "GIMP" / "3.0" / "plug-ins"


def test_plugin_script_compiles_for_the_editor_python():
    src = gimp.common.repo_root() / "plugins" / "gimp" / "impasto"
    r = subprocess.run([sys.executable, "-m", "py_compile", str(src / "impasto.py"),
                        *map(str, (src / "impasto_gimp").glob("*.py"))], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
