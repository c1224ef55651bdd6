"""Outside the editor (the project's venv): two remote Impasto servers on a second host, for the real-editor suites.

usage: python tests/editors/remote_servers.py WORKDIR CONFIG_DIR

The second host is a network namespace joined to this one by a veth pair (``tests/support/remote.py``) when one can
be made here (root, iproute2), else 127.0.0.2.  On it run two CURVE daemons with the weight-free test engines
(``RemoteDaemon``, ``impasto serve --listen``), each with its own runtime folder under ``WORKDIR/remote/``:

- ``studio`` stays up;
- ``flaky`` is SIGKILLed one second after it starts running a job -- a server that vanishes mid-job.

This machine is paired with both the invitation way; the artist's profiles go to ``CONFIG_DIR/remotes/`` (what the
editors read through ``IMPASTO_CONFIG_DIR``).  ``WORKDIR/remotes.json`` then says where they are (paths relative to
WORKDIR, so a chroot that mounts WORKDIR elsewhere can use it) and "READY" is printed.  SIGTERM (or SIGINT) stops the
daemons and removes the namespace.  ``IMPASTO_TEST_NO_NETNS=1`` takes 127.0.0.2 even where a namespace could be made
(to try the fallback).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from impasto_protocol.remote import save_remote  # noqa: E402
from tests.support import remote as net  # noqa: E402
from tests.support.remote import NetNamespace, RemoteDaemon, free_port  # noqa: E402

KILL_AFTER = 1.0          # seconds into flaky's first running job


def kill_when_busy(d: RemoteDaemon, record: Path) -> None:
    """Watch ``d`` through its own (admin) connection; SIGKILL it ``KILL_AFTER`` s after a job starts running and
    write what happened to ``record`` (wall-clock time, so the editor's test can tell how long it took to notice)."""
    client = d.client()
    while d.alive():
        try:
            running = client.status(timeout=5.0)["running"]
        except Exception as e:  # noqa: BLE001 - it was stopped from outside
            print(f"remote_servers: flaky: watcher stopped ({e})", flush=True)
            return
        if running:
            job = running[0]
            time.sleep(KILL_AFTER)
            os.kill(d.proc.pid, signal.SIGKILL)
            record.write_text(json.dumps({"killed_at": time.time(), "job_id": job.get("job_id"),
                                          "engine": job.get("engine"), "pid": d.proc.pid}))
            print(f"remote_servers: flaky killed (pid {d.proc.pid}) {KILL_AFTER:.0f} s into job "
                  f"{str(job.get('job_id'))[:8]} ({job.get('engine')})", flush=True)
            return
        time.sleep(0.1)


def main(work: Path, config: Path) -> int:
    os.environ["IMPASTO_CONFIG_DIR"] = str(config)           # where save_remote writes the artist's profiles
    reason = "IMPASTO_TEST_NO_NETNS is set" if os.environ.get("IMPASTO_TEST_NO_NETNS") else net.unavailable()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    ns = NetNamespace() if not reason else None
    daemons: list[RemoteDaemon] = []
    try:
        if ns is not None:
            ns.__enter__()
            address, ports = ns.server_ip, (5555, 5556)
            where = f"network namespace {ns.name} (veth {ns.host_ip} -> {ns.server_ip})"
        else:
            address = "127.0.0.2"
            ports = (free_port(address), free_port(address))
            where = f"127.0.0.2 (no network namespace: {reason})"
        servers = {}
        for name, port in zip(("studio", "flaky"), ports):
            d = RemoteDaemon(work / "remote" / name, address, port, netns=ns)
            d.start()
            daemons.append(d)
            profile = d.invite(f"editor-{name}")
            profile.name = name
            save_remote(profile)
            servers[name] = {"endpoint": d.endpoint, "address": address, "port": port, "client": f"editor-{name}",
                             "pid": d.proc.pid,
                             "log": str(d.log_file.relative_to(work)),
                             "connection_file": str(d.connection_file.relative_to(work))}
        flaky = daemons[1]
        threading.Thread(target=kill_when_busy, args=(flaky, work / "remote" / "flaky-killed.json"),
                         daemon=True).start()
        (work / "remotes.json").write_text(json.dumps({"where": where, "servers": servers}, indent=1))
        print(f"remote_servers: READY studio {servers['studio']['endpoint']}, flaky {servers['flaky']['endpoint']} "
              f"on {where}", flush=True)
        while not stop.wait(0.5):
            pass
        return 0
    finally:
        for d in daemons:
            d.stop()
        if ns is not None:
            ns.__exit__()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()))
