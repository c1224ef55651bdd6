"""``impasto serve`` with the weight-free test engines registered: ``python tests/support/serve.py [options]``.

Takes exactly the options of ``impasto serve`` and passes ``engines.TEST_ENGINES`` as the daemon's
``DaemonConfig.extra_engines`` -- the product itself has no flag for them.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from impasto.commands import serve  # noqa: E402
from impasto.cli import USER_ERRORS  # noqa: E402
from tests.support.engines import TEST_ENGINES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tests/support/serve.py", description=__doc__)
    serve.add_arguments(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return serve.run(args, extra_engines=TEST_ENGINES)
    except USER_ERRORS as e:           # what `impasto serve` prints and returns for them
        print(f"impasto: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
