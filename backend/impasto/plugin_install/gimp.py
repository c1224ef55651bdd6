"""``impasto install-plugin gimp``: copy the GIMP 3 plug-in into GIMP's ``plug-ins`` folder with its vendored deps.

Layout written (``DIR`` = GIMP's user plug-ins folder, e.g. ~/.config/GIMP/3.0/plug-ins):
  DIR/impasto/impasto.py               the executable GIMP runs (folder and file must share the name)
  DIR/impasto/impasto_gimp/...         the plug-in's modules
  DIR/impasto/vendor/                  impasto_protocol + impasto_plugin + pyzmq for GIMP's Python
  DIR/impasto/install.json             how to start the daemon (this venv's Python)
GIMP runs Python plug-ins with the interpreter named in its ``pygimp.interp`` (Linux packages: the system
``python3``; Debian 13's GIMP 3.0: Python 3.13), so pyzmq must be the wheel for that Python.
"""
from __future__ import annotations

import argparse
import glob
import os
import platform
import shutil
import stat
import subprocess
from pathlib import Path

from . import common
from .common import InstallError, PythonTarget

NAME = "gimp"
HELP = "install the GIMP 3 plug-in (Filters > Artistic > Impasto) into GIMP's plug-ins folder"
PLUGIN = "impasto"

_INTERP_GLOBS = ["/usr/lib/gimp/3.0/interpreters/*.interp", "/usr/lib/*/gimp/3.0/interpreters/*.interp",
                 "/usr/lib64/gimp/3.0/interpreters/*.interp", "/usr/local/lib/gimp/3.0/interpreters/*.interp",
                 "/app/lib/gimp/3.0/interpreters/*.interp"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--plugins-dir", type=Path, help="GIMP's plug-ins folder (default: the user's, e.g. "
                   "~/.config/GIMP/3.0/plug-ins; GIMP lists its folders in Edit > Preferences > Folders > Plug-ins)")
    p.add_argument("--python-version", help="GIMP's Python as X.Y (default: asked from the interpreter GIMP's "
                   "pygimp.interp names)")
    p.add_argument("--platform", action="append", dest="platforms", metavar="TAG",
                   help="pip platform tag for the pyzmq wheel (repeatable; default: this machine's)")
    p.add_argument("--wheel-dir", type=Path, help="take the pyzmq wheel from this folder instead of downloading it")
    p.add_argument("--no-zmq", action="store_true", help="skip vendoring pyzmq (when GIMP's Python has it already)")


def default_plugins_dir() -> Path:
    system = platform.system()
    if system == "Windows":
        base = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
    elif system == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "GIMP" / "3.0" / "plug-ins"


def interpreter_from_interp(text: str) -> str | None:
    """The Python a ``pygimp.interp`` file names (``python=/usr/bin/python3`` or ``/usr/bin/python3=...``)."""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = (s.strip() for s in line.split("=", 1))
        if key in ("python", "python3") and value.startswith("/"):
            return value
        if key.startswith("/") and "python" in Path(key).name:
            return key
    return None


def _python_version(exe: str) -> tuple[int, int] | None:
    r = subprocess.run([exe, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                       capture_output=True, text=True)
    return common.parse_python_version(r.stdout.strip()) if r.returncode == 0 else None


def detect_python_version() -> tuple[tuple[int, int], str]:
    """The Python GIMP runs plug-ins with: the one a ``*.interp`` file registers (Windows/macOS/Flatpak builds), else
    -- Linux packages such as Debian's, which ship no such file -- the ``python3`` on PATH, found through the
    plug-in's ``#!/usr/bin/env python3`` line, when a GIMP 3 is installed here."""
    for pattern in _INTERP_GLOBS:
        for interp in sorted(glob.glob(pattern)):
            exe = interpreter_from_interp(Path(interp).read_text(errors="replace"))
            if exe and os.access(exe, os.X_OK) and (v := _python_version(exe)):
                return v, f"{exe}, named by {interp}"
    gimp = shutil.which("gimp-3.0") or shutil.which("gimp-console-3.0")
    python3 = shutil.which("python3")
    if gimp and python3 and (v := _python_version(python3)):
        return v, f"{python3}, the python3 beside {gimp}"
    raise InstallError("cannot find GIMP 3's Python here (no *.interp file naming one, no gimp-3.0 on PATH); "
                       "give it with --python-version X.Y "
                       "(in GIMP: Filters > Development > Python-Fu > Console shows it)")


def install(args: argparse.Namespace) -> int:
    src = common.repo_root() / "plugins" / "gimp" / PLUGIN
    if not (src / f"{PLUGIN}.py").is_file():
        raise InstallError(f"the GIMP plug-in sources are missing from {src}")
    plugins = (args.plugins_dir or default_plugins_dir()).expanduser().resolve()
    plugins.mkdir(parents=True, exist_ok=True)

    if args.python_version:
        version, how = common.parse_python_version(args.python_version), "given"
    else:
        version, how = detect_python_version()
    target = PythonTarget(version, args.platforms or common.host_platform_tags(), source=how)

    dest = plugins / PLUGIN
    common.copy_tree(src, dest)
    exe = dest / f"{PLUGIN}.py"
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    vendor = dest / "vendor"
    vendor.mkdir(exist_ok=True)
    common.vendor_protocol(vendor)
    common.vendor_plugin_core(vendor)
    wheel = None if args.no_zmq else common.vendor_pyzmq(vendor, target, args.wheel_dir)
    common.write_install_info(dest / "install.json", editor="gimp", python_target=target.version_str,
                              pyzmq_wheel=wheel.name if wheel else None)
    print(f"installed the GIMP plug-in into {dest} for {target.describe()}")
    if wheel:
        print(f"vendored {wheel.name}")
        checked = common.check_vendor_import(vendor, target)
        print(f"checked import: {checked}" if checked else
              f"(no python{target.version_str} here to check the import with; GIMP will tell if zmq fails)")
    print("restart GIMP: Filters > Artistic > Impasto > Stylize…")
    return 0
