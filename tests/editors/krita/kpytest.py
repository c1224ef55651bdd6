"""kritarunner entry point: run pytest inside Krita and make Krita's exit code pytest's.

usage: kritarunner -s kpytest -f main -- <pytest args>
kritarunner always exits 0, swallows exceptions and may crash during teardown once a window was opened, so this
ends the process itself with os._exit(pytest's code) after flushing, and prints a marker line the runner checks."""
import os
import sys


def main(args):
    try:
        import pytest
        sys.argv = ["pytest"]
        rc = int(pytest.main(list(args) + ["-p", "no:cacheprovider"]))
    except BaseException:
        import traceback
        traceback.print_exc()
        rc = 99
    print(f"KPYTEST-EXIT {rc}", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(rc)
