"""Test support that is not part of the product (``impasto`` ships none of it).

- ``engines.py``: weight-free engines (identity, sleep, invert, fail, oom) for the daemon's transport, queue,
  cancel and liveness tests and benchmarks.
- ``serve.py``: ``python tests/support/serve.py [impasto serve options]`` -- ``impasto serve`` with those engines
  registered through the daemon's one hook for it, ``DaemonConfig.extra_engines``.
- ``daemon.py``: ``DaemonProcess``, a real daemon subprocess with an isolated runtime dir, and ``FLOODER``.
- ``fuzz.py``: the protocol fuzzer.

Tests import it as ``tests.support`` (pytest puts the repository root on ``sys.path``: ``pythonpath`` in
pyproject.toml); bench scripts add the repository root themselves.
"""
