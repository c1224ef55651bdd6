# python-fu-eval entry: run pytest INSIDE GIMP 3 (this code runs in the python-fu-eval plug-in process, GIMP's
# Python 3.13).  Arguments come from the environment variable GPYTEST_ARGS.  A failing run raises, so
# gimp-console-3.0 exits 64; "GPYTEST-EXIT <rc>" is printed either way for the calling script to check.
import os
import shlex
import sys

import pytest

sys.argv = ["pytest"]
sys.dont_write_bytecode = True
_rc = int(pytest.main(["-p", "no:cacheprovider"] + shlex.split(os.environ.get("GPYTEST_ARGS", "/job/tests"))))
print("GPYTEST-EXIT %d" % _rc, flush=True)
sys.stdout.flush()
if _rc != 0:
    raise SystemError("pytest exit code %d" % _rc)
