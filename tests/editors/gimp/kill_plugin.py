"""Host side of the cancel test (the project's venv): wait until the daemon runs the GIMP plug-in's job, SIGKILL the
plug-in process (found by the run-specific IMPASTO_TEST_RUN in its environment), and check that the daemon cancels
the job as its client is gone.  usage: python kill_plugin.py RUN_ID CONNECTION_FILE"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from impasto_protocol.client import Client


def plugin_pids(run_id: str) -> list[int]:
    mark = f"IMPASTO_TEST_RUN={run_id}".encode()
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            if b"impasto.py" in (d / "cmdline").read_bytes() and mark in (d / "environ").read_bytes().split(b"\0"):
                pids.append(int(d.name))
        except OSError:
            continue
    return pids


def main(run_id: str, conn: str) -> int:
    with Client.connect(conn, timeout=10) as c:
        deadline = time.monotonic() + 120
        job = None
        while time.monotonic() < deadline and job is None:
            running = [j for j in c.status()["running"] if j.get("engine") == "gatys"]
            job = running[0] if running else None
            time.sleep(0.2)
        if job is None:
            print("FAIL the plug-in's job never ran")
            return 1
        pids = plugin_pids(run_id)
        if len(pids) != 1:
            print(f"FAIL expected one plug-in process, found {pids}")
            return 1
        time.sleep(1.0)
        os.kill(pids[0], signal.SIGKILL)
        killed = time.monotonic()
        while time.monotonic() - killed < 20:
            done = [j for j in c.status()["recent"] if j.get("job_id") == job.get("job_id")]
            if done:
                d = done[0]
                ok = d.get("state") == "cancelled" and d.get("reason") == "client_gone"
                print(f"{'OK' if ok else 'FAIL'} plug-in killed; the daemon ended its job as {d.get('state')} "
                      f"({d.get('reason')}) after {time.monotonic() - killed:.1f} s")
                return 0 if ok else 1
            time.sleep(0.1)
        print("FAIL the daemon did not end the job within 20 s of the plug-in's death")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
