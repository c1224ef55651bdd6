"""What every editor-plugin installer shares: locating sources, copying trees, vendoring ``impasto_protocol``, the
editor-independent plugin core ``impasto_plugin`` (plugins/core/) and a pyzmq build that matches the *editor's*
Python (not ours), and checking the result.

Editors embed their own interpreter (Krita on Debian: the system ``libpython3.11``; Windows/macOS builds bundle
one), so pyzmq's compiled extension must be the wheel for that interpreter's version, ABI and platform.  We ask pip
for exactly that wheel (``pip download --only-binary=:all: --python-version X.Y --abi cpXY --platform TAG``) and
unpack it into the plugin's vendor folder, or take it from ``--wheel-dir`` when offline.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ImpastoError

log = logging.getLogger(__name__)

IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", ".pytest_cache", ".*")


class InstallError(ImpastoError):
    """The plugin could not be installed; the message says what to do."""


def repo_root() -> Path:
    """The source checkout that holds ``plugins/`` and ``shared/`` (the package is installed editable from it)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "plugins").is_dir() and (parent / "shared" / "impasto_protocol").is_dir():
            return parent
    raise InstallError("cannot find the Impasto source tree (plugins/ and shared/) next to the installed package; "
                       "install impasto from a source checkout (pip install -e .)")


def protocol_source() -> Path:
    import impasto_protocol
    return Path(impasto_protocol.__file__).resolve().parent


# --------------------------------------------------------------------------------------------- target Python
@dataclass
class PythonTarget:
    """The interpreter a plugin will run in: version, platform tags pip should accept for it, and where we learnt it."""

    version: tuple[int, int]
    platforms: list[str]
    source: str = "given"
    implementation: str = "cp"

    @property
    def version_str(self) -> str:
        return f"{self.version[0]}.{self.version[1]}"

    @property
    def abi(self) -> str:
        return f"cp{self.version[0]}{self.version[1]}"

    def describe(self) -> str:
        return f"Python {self.version_str} ({self.abi}, {self.platforms[0] if self.platforms else '?'}; {self.source})"


def parse_python_version(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(?:cp|python)?\s*(\d)\.?(\d{1,2})\s*", text)
    if not m:
        raise InstallError(f"cannot read a Python version from {text!r}; give it like 3.11")
    return int(m.group(1)), int(m.group(2))


def host_platform_tags(system: str | None = None, machine: str | None = None,
                       glibc: tuple[int, int] | None = None) -> list[str]:
    """pip platform tags for this machine, most specific first (manylinux_2_N down to 2_17, macOS, Windows)."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    if system == "Linux":
        arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
        if glibc is None:
            libc = os.confstr("CS_GNU_LIBC_VERSION") if hasattr(os, "confstr") else None
            m = re.search(r"(\d+)\.(\d+)", libc or "")
            if not m:
                raise InstallError("only glibc Linux is supported for vendoring pyzmq; use --wheel-dir with a "
                                   "pyzmq wheel built for your editor's Python")
            glibc = (int(m.group(1)), int(m.group(2)))
        tags = [f"manylinux_{glibc[0]}_{minor}_{arch}" for minor in range(glibc[1], 16, -1)]
        tags.append(f"manylinux2014_{arch}")
        return tags
    if system == "Darwin":
        arch = "arm64" if machine in ("arm64", "aarch64") else "x86_64"
        tags = [f"macosx_{v}_0_{arch}" for v in range(15, 10, -1)]
        tags += [f"macosx_{v}_0_universal2" for v in range(15, 10, -1)]
        tags += [f"macosx_10_{v}_{arch}" for v in range(15, 8, -1)] + [f"macosx_10_{v}_universal2" for v in range(15, 8, -1)]
        return tags
    if system == "Windows":
        return ["win_arm64"] if machine in ("arm64", "aarch64") else ["win_amd64"]
    raise InstallError(f"unsupported system {system!r}: use --wheel-dir with a pyzmq wheel for your editor's Python")


# --------------------------------------------------------------------------------------------- wheels
@dataclass
class WheelName:
    filename: str
    name: str
    version: str
    python_tags: list[str]
    abi_tags: list[str]
    platform_tags: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, filename: str) -> "WheelName":
        parts = filename[:-4].split("-") if filename.endswith(".whl") else []
        if len(parts) not in (5, 6):
            raise ValueError(f"not a wheel file name: {filename}")
        name, version = parts[0], parts[1]
        py, abi, plat = parts[-3:]
        return cls(filename, name.lower().replace("_", "-"), version, py.split("."), abi.split("."), plat.split("."))

    def fits(self, target: PythonTarget) -> bool:
        if not set(self.platform_tags) & set(target.platforms):
            return False
        if target.abi in self.abi_tags and target.abi in self.python_tags:
            return True
        if "abi3" in self.abi_tags:                    # stable ABI: any cp3N with N <= target minor
            for t in self.python_tags:
                m = re.fullmatch(r"cp3(\d+)", t)
                if m and int(m.group(1)) <= target.version[1]:
                    return True
        return False


def find_wheel(wheel_dir: Path, target: PythonTarget, name: str = "pyzmq") -> Path:
    candidates = []
    for p in sorted(wheel_dir.glob("*.whl")):
        try:
            w = WheelName.parse(p.name)
        except ValueError:
            continue
        if w.name == name and w.fits(target):
            candidates.append(p)
    if not candidates:
        raise InstallError(f"no {name} wheel for {target.describe()} in {wheel_dir}; download one with\n  "
                           + " ".join(pip_download_command(target, wheel_dir, name)))
    return candidates[-1]


def pip_download_command(target: PythonTarget, dest: Path, name: str = "pyzmq") -> list[str]:
    cmd = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "--no-deps",
           "--python-version", target.version_str, "--implementation", target.implementation,
           "--abi", target.abi, "--abi", "abi3"]
    for plat in target.platforms:
        cmd += ["--platform", plat]
    return cmd + ["-d", str(dest), name]


def download_wheel(target: PythonTarget, dest: Path, name: str = "pyzmq") -> Path:
    cmd = pip_download_command(target, dest, name)
    log.info("running %s", " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        tail = (r.stderr or r.stdout).strip().splitlines()[-3:]
        raise InstallError(f"pip could not download {name} for {target.describe()}: {' / '.join(tail)}\n"
                           f"offline? download the wheel elsewhere and pass --wheel-dir")
    return find_wheel(dest, target, name)


def unpack_wheel(wheel: Path, dest: Path) -> list[str]:
    """Unzip a wheel into ``dest`` (a folder that goes on sys.path); returns the top-level names written."""
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as z:
        tops = sorted({n.split("/", 1)[0] for n in z.namelist()})
        for t in tops:
            shutil.rmtree(dest / t, ignore_errors=True)
        z.extractall(dest)
        for info in z.infolist():                        # keep the executable bit of bundled .so files
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(dest / info.filename, mode)
    return tops


def vendor_pyzmq(vendor_dir: Path, target: PythonTarget, wheel_dir: Path | None = None) -> Path:
    """Put a pyzmq build for ``target`` into ``vendor_dir``; returns the wheel used."""
    for old in list(vendor_dir.glob("pyzmq*")) + [vendor_dir / "zmq"]:
        shutil.rmtree(old, ignore_errors=True)
    if wheel_dir is not None:
        wheel = find_wheel(Path(wheel_dir), target)
        unpack_wheel(wheel, vendor_dir)
        return wheel
    with tempfile.TemporaryDirectory(prefix="impasto-wheel-") as tmp:
        wheel = download_wheel(target, Path(tmp))
        unpack_wheel(wheel, vendor_dir)
        return Path(wheel.name)


def copy_tree(src: Path, dst: Path) -> None:
    """Replace ``dst`` by a copy of ``src`` (caches and dot-files left out)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=IGNORE)


def vendor_protocol(vendor_dir: Path) -> Path:
    dst = vendor_dir / "impasto_protocol"
    copy_tree(protocol_source(), dst)
    return dst


def plugin_core_source() -> Path:
    return repo_root() / "plugins" / "core" / "impasto_plugin"


def vendor_plugin_core(vendor_dir: Path) -> Path:
    """Copy ``impasto_plugin`` (what both plugins share, plugins/core/) beside the protocol package."""
    dst = vendor_dir / "impasto_plugin"
    copy_tree(plugin_core_source(), dst)
    return dst


def write_install_info(path: Path, **extra: object) -> None:
    """Record how to start the daemon from inside the editor (the editor knows nothing of our venv)."""
    from .. import __version__
    info = {"impasto_version": __version__, "python": sys.executable,
            "serve_command": [sys.executable, "-m", "impasto.cli", "serve"], **extra}
    path.write_text(json.dumps(info, indent=2) + "\n")


def check_vendor_import(vendor_dir: Path, target: PythonTarget, python: str | None = None) -> str | None:
    """If an interpreter of the target's version runs here (and the target is this platform), import the vendored
    zmq + protocol + plugin core with it.

    Returns a one-line report, or None when there is nothing to check with (another platform, no such Python)."""
    try:
        if not set(target.platforms) & set(host_platform_tags()):
            return None
    except InstallError:
        return None
    exe = python or shutil.which(f"python{target.version_str}")
    if not exe:
        return None
    probe = subprocess.run([exe, "-I", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip() != target.version_str:
        return None                                  # e.g. a pyenv shim without that version installed
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import zmq, impasto_protocol, impasto_plugin.jobs; "
            "print('zmq', zmq.__version__, 'libzmq', zmq.zmq_version(), 'from', zmq.__file__)")
    r = subprocess.run([exe, "-I", "-B", "-c", code, str(vendor_dir)], capture_output=True, text=True)
    if r.returncode != 0:
        raise InstallError(f"the vendored pyzmq does not import with {exe}: {r.stderr.strip().splitlines()[-1:]}")
    return r.stdout.strip()
