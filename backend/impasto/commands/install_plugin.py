"""``impasto install-plugin EDITOR``: install an editor plugin.  Each editor's installer is a module in
``impasto.plugin_install`` (``krita``, ``gimp``, ...), discovered here, so this file only dispatches."""
from __future__ import annotations

import argparse
import importlib
import pkgutil

from .. import plugin_install

NAME = "install-plugin"
HELP = "install the Krita or GIMP plugin (copies it, vendors the client and a matching pyzmq)"


def targets() -> dict[str, object]:
    found = {}
    for info in sorted(pkgutil.iter_modules(plugin_install.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name == "common":
            continue
        mod = importlib.import_module(f"{plugin_install.__name__}.{info.name}")
        if hasattr(mod, "install") and hasattr(mod, "NAME"):
            found[mod.NAME] = mod
    return found


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="editor", metavar="EDITOR", required=True)
    for name, mod in targets().items():
        sp = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(sp)
        sp.set_defaults(_install=mod.install)


def run(args: argparse.Namespace) -> int:
    return int(args._install(args) or 0)
