"""The ``impasto`` command line.  Each sub-command lives in its own module under ``impasto.commands``.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``; modules are
discovered, so adding a command is adding a file.  User errors print one line and exit 2; never a traceback
(``--debug`` shows it).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

from impasto_protocol.options import OptionsError

from . import __version__, commands
from .errors import ImpastoError

log = logging.getLogger("impasto")

USER_ERRORS = (ImpastoError, OptionsError)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="impasto", description="Neural style transfer for artists (MT, DST, Gatys, STROTSS).")
    parser.add_argument("--version", action="version", version=f"impasto {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        mod = importlib.import_module(f"{commands.__name__}.{info.name}")
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else (logging.INFO if args.verbose else logging.WARNING),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except USER_ERRORS as e:
        if args.debug:
            raise
        print(f"impasto: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("impasto: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("impasto: error: out of memory; try a smaller --size or --tile-size", file=sys.stderr)
        return 3
    except Exception as e:  # an unexpected failure: still one line, unless --debug
        if args.debug:
            raise
        print(f"impasto: internal error: {e.__class__.__name__}: {e} (run with --debug for details)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
