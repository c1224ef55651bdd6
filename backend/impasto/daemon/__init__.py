"""The Impasto daemon: a ZeroMQ ROUTER serving the engines to the editor plugins and the CLI.

``server`` (main loop, verification, liveness), ``validation`` (requests checked before allocation), ``jobs``
(priority queue), ``worker`` (one thread per device; it sees only the queue, its ``outbox`` and its settings),
``convert`` (wire images <-> tensors), ``config`` (settings, and the ``extra_engines`` hook tests register their
weight-free engines through), ``styles`` (MT style catalogue on the wire), ``cli_bridge`` (``impasto stylize
--daemon``).  The wire format lives in the ``impasto_protocol`` package (shared/).
"""
