"""`kubetfx run` on one table with and without the read-ahead threads
(components/prefetch.py), alternated: per-stage wall and CPU seconds of the run process and
its children (psutil, sampled every 0.25 s, split at the run's own progress lines), total
CPU, the load average. "before" runs the same tree with prefetch.ahead a plain iterator.
One JSON line per run. On a shared machine the CPU seconds carry the comparison.

    .venv/bin/python tests/bench/read_ahead.py --data build/bench/data/1m/labelled/data.csv --reps 2
"""
from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

import alternated  # beside this script (sys.path[0])

HERE = Path(__file__).resolve().parent
PROGRESS = re.compile(r"\[\s*([\d.]+)s\] (\S+)\s+(started|complete)")


def _tree_cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in process.children(recursive=True):
        try:
            times = child.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def run_once(side: str, data: str, label: str, timeout: float) -> dict:
    home = tempfile.mkdtemp(prefix=f"read-ahead-{side}-")
    load = os.getloadavg()[0]
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, __file__, "--side", side, "--home", home, "--data", data,
                                "--label", label], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched, samples, lines = psutil.Process(process.pid), [], []
    reader = threading.Thread(target=lambda: lines.extend((time.monotonic() - started, line) for line in process.stdout),
                              daemon=True)
    reader.start()
    try:
        while process.poll() is None:
            if time.monotonic() - started > timeout:
                process.kill()
                raise SystemExit(f"{side} run passed --timeout {timeout:.0f} s")
            try:
                samples.append((time.monotonic() - started, _tree_cpu(watched)))
            except psutil.Error:
                pass
            time.sleep(0.25)
        reader.join(10)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    if process.returncode != 0:
        raise SystemExit(f"{side} run failed:\n{''.join(line for _, line in lines[-30:])}")

    def cpu_at(moment: float) -> float:
        return max([cpu for at, cpu in samples if at <= moment] or [0.0])

    stages, begun = {}, {}
    for at, line in lines:
        match = PROGRESS.match(line)
        if match and match.group(3) == "started":
            begun[match.group(2)] = at
        elif match and match.group(2) in begun:
            name, since = match.group(2), begun[match.group(2)]
            stages[name] = {"seconds": round(at - since, 1), "cpu_seconds": round(cpu_at(at) - cpu_at(since), 1)}
    return {"side": side, "seconds": round(time.monotonic() - started, 1),
            "cpu_seconds": round(samples[-1][1] if samples else 0.0, 1), "load_before": round(load, 1),
            "load_after": round(os.getloadavg()[0], 1), "stages": stages}


SIDES = ("before", "after")


def main() -> None:
    parser = alternated.parser(__doc__, SIDES, reps=2)
    parser.add_argument("--data", required=True)
    parser.add_argument("--label", default="species")
    parser.add_argument("--home")
    args = parser.parse_args()
    if args.side:
        if args.side == "before":
            from kubetfx.components import prefetch
            prefetch.ahead = lambda items, **_: iter(items)
        sys.argv = [str(HERE / "run_kubetfx.py"), "--home", args.home, "--data", args.data,
                    "--label", args.label, "--name", "bench"]
        runpy.run_path(str(HERE / "run_kubetfx.py"), run_name="__main__")
        return
    for side in alternated.order(SIDES, args.reps):
        print(json.dumps(run_once(side, args.data, args.label, args.timeout)), flush=True)


if __name__ == "__main__":
    main()
