"""What a SIGKILLed run leaves of its object-store server (pipelines/kubeflow/object_store_server.py):
each repetition starts the server as a run does, SIGKILLs the starting process, and reports
the server's and its watchdog's RSS and how long until both have ended. A figure, not a test
(run_lifetime_test checks that they end).

    .venv/bin/python tests/bench/killed_run_store.py [--reps 3]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

import psutil

STARTER = ("from kubetfx.pipelines.kubeflow import object_store_server as s\nimport time\n"
           "with s.running():\n    print('up', flush=True)\n    time.sleep(600)\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the server to end")
    args = parser.parse_args()
    for _ in range(args.reps):
        starter = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
        assert starter.stdout.readline().strip() == "up", "the server did not start"
        started = psutil.Process(starter.pid).children(recursive=True)
        rss = {p.name(): p.memory_info().rss // 2**20 for p in started}
        killed = time.monotonic()
        os.kill(starter.pid, signal.SIGKILL)
        starter.wait(timeout=30)
        _, alive = psutil.wait_procs(started, timeout=args.wait)
        ended = f"ended {time.monotonic() - killed:.2f} s after SIGKILL" if not alive else \
            f"{len(alive)} still running after {args.wait:.0f} s"
        print(f"RSS MiB {rss}; {ended}; load {os.getloadavg()[0]:.1f}", flush=True)
        for process in alive:  # the bench leaves nothing behind either way
            process.kill()


if __name__ == "__main__":
    main()
