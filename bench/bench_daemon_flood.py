"""A peer without the key floods the daemon for 10 s over TCP; print the daemon's memory and a legitimate client's
ping latency meanwhile (issue 17: latency <= 50 ms, memory growth <= 64 MiB).

    .venv/bin/python bench/bench_daemon_flood.py [--seconds 10] [--flooders 4] [--raw 8]

The flooders run as uid 65534 (``setpriv``) when this runs as root -- another local user -- else as this user
without the key.  Each flooder process loops, for the whole time, over: ZeroMQ DEALER sockets with no credentials
and with a wrong PLAIN password sending unsigned 2 x 32 MiB messages, fresh connections every round (connection
churn), and ``--raw`` plain TCP connections that speak a valid ZMTP 3 PLAIN greeting and then declare one frame
as large as ZMQ_MAXMSGSIZE allows and send its bytes (what a peer can make libzmq hold before the handshake fails).
A legitimate client pings every 20 ms; the daemon's RSS is read from /proc every 100 ms.  Prints figures, the
verdict against the issue's bounds, and the load average (the machine is shared: latency depends on it).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
import tempfile
import threading
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))     # the repository root, for tests.support
from tests.support.daemon import FLOODER, DaemonProcess



def flooder_command(endpoint: str, seconds: float, raw: int, frame: int) -> tuple[list[str], str]:
    cmd = [sys.executable, "-c", FLOODER, endpoint, str(seconds), str(raw), str(frame)]
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("setpriv"):
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd], "uid 65534 (another user)"
    return cmd, "this user, without the key"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--flooders", type=int, default=4, help="flooding processes")
    ap.add_argument("--raw", type=int, default=8, help="raw ZMTP connections per flooder per round")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, DaemonProcess(tmp, "--tcp") as d, d.client(heartbeat=False) as c:
        frame = c.hello()["limits"]["max_message_bytes"]
        for _ in range(20):                      # warm: the first requests allocate the daemon's steady buffers
            c._request("ping", {}, timeout=5)
        rss0 = d.rss_mib()
        cmd, who = flooder_command(d.info.endpoint, args.seconds, args.raw, frame)
        procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd="/")
                 for _ in range(args.flooders)]
        rss: list[float] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                rss.append(d.rss_mib())
                time.sleep(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        lat: list[float] = []
        lost = 0
        t_end = time.monotonic() + args.seconds
        while time.monotonic() < t_end:
            t0 = time.perf_counter()
            try:
                c._request("ping", {}, timeout=2.0)
                lat.append((time.perf_counter() - t0) * 1000)
            except Exception:  # noqa: BLE001 - a lost ping is a figure, not a crash of the benchmark
                lost += 1
            time.sleep(0.02)
        outs = [p.communicate(timeout=60)[0].strip() for p in procs]
        stop.set()
        sampler.join()
        time.sleep(1.0)
        rss_after = d.rss_mib()
        alive = d.alive()
        st = c.status()
    lat.sort()
    p50 = statistics.median(lat) if lat else float("nan")
    p99 = lat[int(0.99 * (len(lat) - 1))] if lat else float("nan")
    peak = max(rss) if rss else rss0
    print(f"flood: {args.flooders} processes as {who}, {args.seconds:.0f} s, ZMQ_MAXMSGSIZE {frame} bytes")
    for o in outs:
        print("  ", o.splitlines()[-1] if o else "(no output)")
    print(f"legit pings: {len(lat)} answered, {lost} lost; latency ms p50 {p50:.2f}  p99 {p99:.2f}  "
          f"max {max(lat) if lat else float('nan'):.2f}")
    print(f"daemon RSS MiB: before {rss0:.1f}  peak {peak:.1f}  after {rss_after:.1f}  growth(peak) {peak - rss0:.1f}")
    print(f"daemon alive: {alive}; dropped {st['dropped']}; refused {st['refused']}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  (cpus {os.cpu_count()})")
    ok = alive and not lost and lat and lat[-1] <= 50 and peak - rss0 <= 64
    print("verdict:", "within the issue's bounds (max latency <= 50 ms, growth <= 64 MiB)" if ok else "OUT OF BOUNDS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
