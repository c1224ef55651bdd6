"""`impasto status`: is a daemon running, where, and what is it doing."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from impasto_protocol.connection import ConnectionFileError, default_connection_file, read_connection_file

NAME = "status"
HELP = "show whether the daemon is running, its address, devices and jobs (exit 1 when it is not)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--connection-file", type=Path, help="the daemon's connection file (default: user runtime dir)")
    p.add_argument("--json", action="store_true", help="print the daemon's status reply as JSON")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for an answer (default 3)")
    p.add_argument("--daemon", metavar="NAME", help="a remote server paired with `impasto remote add`")


def run(args: argparse.Namespace) -> int:
    from impasto_protocol.client import Client, DaemonNotRunning
    if args.daemon:
        from impasto_protocol.remote import RemoteError, load_remote
        try:
            info = load_remote(args.daemon).connection_info()
        except RemoteError as e:
            print(f"unknown server: {e}")
            return 1
    else:
        path = args.connection_file or default_connection_file()
        try:
            info = read_connection_file(path)
        except ConnectionFileError as e:
            print(f"not running ({e})")
            return 1
        if not info.pid_alive():
            print(f"not running: stale connection file {path} (pid {info.pid} is gone; "
                  f"`impasto serve` replaces it, `impasto serve --stop` removes it)")
            return 1
    client = Client(info, heartbeat=False)
    try:
        st = client.status(timeout=args.timeout)
        hello = client.hello(timeout=args.timeout)
    except DaemonNotRunning as e:
        print(f"not answering: {info.endpoint} ({info.remote or f'pid {info.pid} is alive'}): {e}")
        return 1
    finally:
        client.close(cancel_jobs=False)
    if args.json:
        print(json.dumps({"status": st, "hello": hello}, indent=1))
        return 0
    print(f"running: pid {st['pid']} on {info.endpoint}, up {st['uptime']:.0f} s, impasto {st['impasto_version']}, "
          f"protocol {st['protocol_version']}")
    print(f"devices: {', '.join(st['devices'])}; engines: {', '.join(hello['engines']) or 'none'}")
    print(f"styles: {', '.join(hello['styles']) or 'none'}")
    workers = st.get("workers") or []
    if len(workers) > 1:
        print("workers: " + ", ".join(
            f"{w['name']} {w['state']}" + (f" (job {w['job'][:8]})" if w.get("job") else "") +
            (f" (a tile for {w['lent_to']})" if w.get("lent_to") else "") for w in workers))
    for j in st["running"]:
        on = f" on {j['worker']}" if j.get("worker") and len(workers) > 1 else ""
        print(f"  running  {j['job_id'][:8]} {j['engine']:<8} step {j['steps']} since "
              f"{time.time() - (j['started_at'] or time.time()):.0f} s{on}")
    for j in st["queued"]:
        print(f"  queued   {j['job_id'][:8]} {j['engine']}")
    if not st["running"] and not st["queued"]:
        print("idle")
    return 0
