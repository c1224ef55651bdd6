"""`impasto serve`: run the daemon (or stop the running one with --stop)."""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from impasto_protocol.connection import (ConnectionFileError, UnsafePath, default_connection_file, pid_alive,
                                         read_connection_file, remove_connection_file)

from ..errors import ImpastoError

NAME = "serve"
HELP = "run the daemon the Krita/GIMP plugins and `impasto stylize --daemon` talk to (--stop stops it)"
log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stop", action="store_true", help="stop the running daemon (its jobs are cancelled)")
    p.add_argument("--tcp", action="store_true",
                   help="listen on TCP on the loopback address instead of the private ipc socket (the default on "
                        "POSIX: daemon.sock beside the connection file); for clients that cannot reach that folder")
    p.add_argument("--ip", default="127.0.0.1", help="with --tcp: 127.0.0.1 (default) or ::1")
    p.add_argument("--port", type=int, default=0, help="TCP port (implies --tcp; default: any free port)")
    p.add_argument("--ipc", metavar="PATH", help="listen on the Unix socket PATH (ipc://) instead of the default one")
    p.add_argument("--connection-file", type=Path, help="where to write the connection file "
                   "(default: the user runtime dir; IMPASTO_RUNTIME_DIR overrides)")
    p.add_argument("--max-pixels", type=int, default=None, help="largest image accepted, in pixels (default 268M)")
    p.add_argument("--max-message-mb", type=int, default=None,
                   help="largest frame accepted, in MiB (default: one 4 MiB chunk plus 64 KiB)")
    p.add_argument("--max-queued-mb", type=int, default=None,
                   help="image memory of all jobs not yet running, inline or streamed, in MiB (default 8192)")
    p.add_argument("--train-photos", action="append", type=Path, metavar="DIR",
                   help="another folder training may read photos from (repeatable; always allowed: "
                        "$IMPASTO_TRAIN_PHOTOS or <user data dir>/training-photos, the default)")
    p.add_argument("--heartbeat-timeout", type=float, default=1.5,
                   help="seconds of silence after which a pinging client's jobs are cancelled (default 1.5)")
    p.add_argument("--listen", metavar="HOST:PORT",
                   help="serve other machines on this address (0.0.0.0:PORT for all interfaces): CURVE-encrypted, "
                        "only clients on the allow-list (docs/remote.md); the server key is made on first use")
    p.add_argument("--allow", action="append", metavar="LINE|FILE", default=[],
                   help="with --listen: first put the client that `impasto remote add` printed this line for on "
                        "the allow-list (repeatable; same as `impasto server allow`)")
    p.add_argument("--server-dir", type=Path, metavar="DIR",
                   help="with --listen: the server key and allow-list folder (default: <config dir>/server)")
    p.add_argument("--device", action="append", dest="devices", metavar="DEVICE",
                   help="run a worker on DEVICE (repeatable; a device given twice runs two workers on it, e.g. "
                        "--device cpu --device cpu; default: every CUDA device, else the CPU)")


def stop(path: Path, timeout: float = 20.0) -> int:
    from impasto_protocol.client import Client, DaemonNotRunning
    try:
        info = read_connection_file(path)
    except ConnectionFileError as e:
        print(f"no daemon running ({e})")
        return 1
    if not info.pid_alive():
        remove_connection_file(path, pid=info.pid)
        print(f"removed a stale connection file (pid {info.pid} is not running)")
        return 0
    try:
        client = Client(info, heartbeat=False)
        try:
            client.shutdown(cancel_jobs=True, timeout=5.0)
        finally:
            client.close(cancel_jobs=False)
    except DaemonNotRunning as e:
        raise ImpastoError(f"the daemon (pid {info.pid}) does not answer: {e}; kill it with `kill {info.pid}`") from None
    deadline = time.monotonic() + timeout
    while pid_alive(info.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid_alive(info.pid):
        raise ImpastoError(f"the daemon (pid {info.pid}) is still running after {timeout:.0f} s")
    print(f"stopped the daemon (pid {info.pid})")
    return 0


def run(args: argparse.Namespace, extra_engines: dict | None = None) -> int:
    """``extra_engines``: ``DaemonConfig.extra_engines`` for a program that embeds the command (tests/support/serve.py
    registers its weight-free test engines this way); ``impasto serve`` passes none."""
    path = args.connection_file or default_connection_file()
    if args.stop:
        return stop(path)
    try:
        old = read_connection_file(path)       # UnsafePath (another user's folder or file) propagates: refuse
        if old.pid_alive():
            raise ImpastoError(f"a daemon is already running (pid {old.pid}, {old.endpoint}); "
                               f"`impasto serve --stop` stops it")
        log.warning("removing a stale connection file (pid %d is not running)", old.pid)
        remove_connection_file(path, pid=old.pid)
    except UnsafePath as e:
        raise ImpastoError(f"refusing to start: {e}") from None
    except ConnectionFileError:
        pass
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("impasto").setLevel(logging.INFO)
    from ..daemon.config import DaemonConfig
    from ..daemon.server import Daemon
    kw = {}
    if args.max_pixels is not None:
        kw["max_pixels"] = args.max_pixels
    if args.max_message_mb is not None:
        kw["max_message_bytes"] = args.max_message_mb << 20
    if args.max_queued_mb is not None:
        kw["max_queued_bytes"] = args.max_queued_mb << 20
    if args.train_photos:
        from ..daemon.config import default_train_photo_dirs
        kw["train_photo_dirs"] = default_train_photo_dirs() + [p.resolve() for p in args.train_photos]
    if args.listen:
        kw.update(listen=args.listen, server_dir=args.server_dir)
    elif args.allow or args.server_dir:
        raise ImpastoError("--allow and --server-dir go with --listen")
    try:
        config = DaemonConfig(tcp=args.tcp or sys.platform == "win32", ip=args.ip, port=args.port, ipc_path=args.ipc,
                              connection_file=path, heartbeat_timeout=args.heartbeat_timeout,
                              extra_engines=dict(extra_engines or {}), devices=args.devices, **kw)
    except ValueError as e:
        raise ImpastoError(str(e)) from None
    for line in args.allow:
        from .server import allow_client
        allow_client(line, args.server_dir)
    daemon = Daemon(config)
    try:
        info = daemon.bind()
    except UnsafePath as e:
        daemon.close()
        raise ImpastoError(f"refusing to start: {e}") from None
    if config.curve:
        print(f"impasto daemon pid {info.pid} serving other machines on tcp://{config.listen} with CURVE "
              f"(server key {info.server_key}; {len(daemon.server_keys.clients()) if daemon.server_keys else 0} "
              f"allowed clients; connection file {path})", flush=True)
    else:
        print(f"impasto daemon pid {info.pid} listening on {info.endpoint} (connection file {path})", flush=True)
    return daemon.serve_forever()
