"""The Impasto daemon: a ZeroMQ ROUTER serving the engines to the editor plugins and the CLI.

``server`` (main loop, verification, liveness), ``validation`` (requests checked before allocation), ``jobs``
(priority queue), ``worker`` (one thread per device), ``convert`` (wire images <-> tensors), ``test_engines``
(weight-free engines for tests and benchmarks), ``styles`` (MT style catalogue on the wire), ``cli_bridge``
(``impasto stylize --daemon``).  The wire format lives in the ``impasto_protocol`` package (shared/).
"""
