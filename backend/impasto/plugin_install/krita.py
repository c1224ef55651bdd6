"""``impasto install-plugin krita``: copy the Krita plugin into Krita's ``pykrita`` folder with its vendored deps.

Layout written (``RES`` = Krita's resource folder, ``pykrita`` inside it):
  RES/pykrita/impasto.desktop
  RES/pykrita/impasto_krita/...            the plugin package
  RES/pykrita/impasto_krita/vendor/        impasto_protocol + impasto_plugin + pyzmq for Krita's Python
  RES/pykrita/impasto_krita/install.json   how to start the daemon (this venv's Python)
  RES/actions/impasto.action               menu texts/shortcuts of the actions
and, unless ``--no-enable``, ``enable_impasto_krita=true`` in the ``[python]`` section of kritarc.
"""
from __future__ import annotations

import argparse
import glob
import os
import platform
import re
import shutil
import sys
from pathlib import Path

from . import common
from .common import InstallError, PythonTarget

NAME = "krita"
HELP = "install the Krita plugin (docker + actions) into Krita's pykrita folder"
PLUGIN = "impasto"          # file names: impasto.desktop, impasto.action
PACKAGE = "impasto_krita"

# Where Krita's Python plugin library lives when installed from distribution packages.
_PYKRITA_SO_GLOBS = ["/usr/lib/*/kritaplugins/kritapykrita.so", "/usr/lib/kritaplugins/kritapykrita.so",
                     "/usr/lib64/kritaplugins/kritapykrita.so", "/usr/local/lib*/kritaplugins/kritapykrita.so",
                     "/app/lib/kritaplugins/kritapykrita.so"]
# Krita's own builds for Windows and macOS bundle Python 3.10 (5.1 and 5.2 series).
_BUNDLED_PYTHON = {"Windows": (3, 10), "Darwin": (3, 10)}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pykrita-dir", type=Path, help="Krita's pykrita folder (default: the user resource folder, "
                   "e.g. ~/.local/share/krita/pykrita)")
    p.add_argument("--python-version", help="Krita's Python as X.Y (default: detected from Krita's libpython, "
                   "or 3.10 for the Windows/macOS builds)")
    p.add_argument("--platform", action="append", dest="platforms", metavar="TAG",
                   help="pip platform tag for the pyzmq wheel (repeatable; default: this machine's)")
    p.add_argument("--wheel-dir", type=Path, help="take the pyzmq wheel from this folder instead of downloading it")
    p.add_argument("--kritarc", type=Path, help="kritarc to enable the plugin in (default: the user's)")
    p.add_argument("--no-enable", action="store_true", help="do not touch kritarc (enable it in Settings > "
                   "Configure Krita > Python Plugin Manager)")
    p.add_argument("--no-zmq", action="store_true", help="skip vendoring pyzmq (when Krita's Python has it already)")


def default_resource_dir() -> Path:
    system = platform.system()
    if system == "Windows":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "krita"
    if system == "Darwin":
        return Path.home() / "Library" / "Application Support" / "krita"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "krita"


def default_kritarc() -> Path:
    system = platform.system()
    if system == "Windows":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "kritarc"
    if system == "Darwin":
        return Path.home() / "Library" / "Preferences" / "kritarc"
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "kritarc"


def detect_python_version() -> tuple[tuple[int, int], str]:
    """Krita's Python version: from the libpython its pykrita plugin links (Linux), else Krita's bundled default."""
    for pattern in _PYKRITA_SO_GLOBS:
        for so in sorted(glob.glob(pattern)):
            m = re.search(rb"libpython(3)\.(\d+)", Path(so).read_bytes())
            if m:
                return (int(m.group(1)), int(m.group(2))), f"linked by {so}"
    bundled = _BUNDLED_PYTHON.get(platform.system())
    if bundled:
        return bundled, f"Krita's bundled Python on {platform.system()}"
    raise InstallError("cannot find Krita's Python (no kritapykrita.so found); give it with --python-version X.Y "
                       "(Krita shows it in Settings > Configure Krita > Python Plugin Manager)")


def enable_in_kritarc(kritarc: Path, plugin: str = PACKAGE) -> None:
    """Set ``enable_<module>=true`` (Krita keys it by the desktop file's X-KDE-Library) in kritarc's ``[python]`` section; a text edit, the rest is left as it is."""
    key = f"enable_{plugin}"
    lines = kritarc.read_text().splitlines() if kritarc.exists() else []
    out: list[str] = []
    in_python = found_section = done = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if in_python and not done:
                out.append(f"{key}=true")
                done = True
            in_python = stripped == "[python]"
            found_section = found_section or in_python
        elif in_python and stripped.split("=", 1)[0].strip() == key:
            if not done:
                out.append(f"{key}=true")
                done = True
            continue
        out.append(line)
    if in_python and not done:
        out.append(f"{key}=true")
        done = True
    if not found_section:
        if out and out[-1].strip():
            out.append("")
        out += ["[python]", f"{key}=true"]
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    kritarc.write_text("\n".join(out) + "\n")


def install(args: argparse.Namespace) -> int:
    src = common.repo_root() / "plugins" / "krita"
    if not (src / f"{PLUGIN}.desktop").is_file() or not (src / PACKAGE).is_dir():
        raise InstallError(f"the Krita plugin sources are missing from {src}")
    pykrita = (args.pykrita_dir or default_resource_dir() / "pykrita").expanduser().resolve()
    pykrita.mkdir(parents=True, exist_ok=True)

    if args.python_version:
        version, how = common.parse_python_version(args.python_version), "given"
    else:
        version, how = detect_python_version()
    target = PythonTarget(version, args.platforms or common.host_platform_tags(), source=how)

    dest = pykrita / PACKAGE
    common.copy_tree(src / PACKAGE, dest)
    shutil.copy2(src / f"{PLUGIN}.desktop", pykrita / f"{PLUGIN}.desktop")
    actions = src / f"{PLUGIN}.action"
    if actions.is_file():
        (pykrita.parent / "actions").mkdir(exist_ok=True)
        shutil.copy2(actions, pykrita.parent / "actions" / f"{PLUGIN}.action")
    vendor = dest / "vendor"
    vendor.mkdir(exist_ok=True)
    common.vendor_protocol(vendor)
    common.vendor_plugin_core(vendor)
    wheel = None if args.no_zmq else common.vendor_pyzmq(vendor, target, args.wheel_dir)
    common.write_install_info(dest / "install.json", editor="krita", python_target=target.version_str,
                              pyzmq_wheel=wheel.name if wheel else None)
    print(f"installed the Krita plugin into {pykrita} for {target.describe()}")
    if wheel:
        print(f"vendored {wheel.name}")
        checked = common.check_vendor_import(vendor, target)
        print(f"checked import: {checked}" if checked else
              f"(no python{target.version_str} here to check the import with; Krita will tell if zmq fails)")
    if not args.no_enable:
        kritarc = (args.kritarc or default_kritarc()).expanduser()
        enable_in_kritarc(kritarc)
        print(f"enabled in {kritarc} (restart Krita; the docker is under Settings > Dockers > Impasto)")
    return 0
