"""``impasto styles``: list the MT style models (shipped and user-trained) with their paintings."""
from __future__ import annotations

import argparse
import json

NAME = "styles"
HELP = "list the fast (MT) styles: shipped ones and those you trained"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    from ..engines.mt.styles import list_styles, shipped_styles_dir, user_styles_dir

    styles = list_styles()
    if args.json:
        print(json.dumps([{"name": s.name, "source": s.source, "path": str(s.path), "ok": s.ok,
                           "title": s.metadata.title if s.ok else "", "artist": s.metadata.artist if s.ok else "",
                           "year": s.metadata.year if s.ok else "", "error": s.error} for s in styles], indent=2))
        return 0
    if not styles:
        print(f"no styles found (shipped: {shipped_styles_dir()}, yours: {user_styles_dir()})")
        return 0
    width = max(len(s.name) for s in styles)
    for s in styles:
        print(f"{s.name:<{width}}  {s.source:<7}  {s.describe()}")
    print(f"\nyour styles folder: {user_styles_dir()}")
    return 0
