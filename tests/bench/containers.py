"""`make bench-containers`: `kubetfx run --engine containers` on the embedded data beside the
in-process `kubetfx run` (issue 27's goal: at most 2x), and where the container run's time
goes: before the first task (CLI, compile, object store, data upload), per task the
launcher's staging download, the container (create to exit: the stage's imports and its
executor), the upload, and what the backend adds around them (docker create/cp/rm).

Method: each run in a fresh home and process; one discarded warm-up of each side, then
--reps measured pairs, the order alternating within each pair so a load change favours
neither side; medians. Beside wall time, the CPU seconds of the measured process and its
children: for the container run these are the CLI's and the backend's, not the stages'
(a container's processes are the Docker daemon's children, not ours), so its wall time is
the figure to compare. The 1-minute load average is recorded with every run.
Writes build/bench/containers.json and prints a Markdown table."""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TIMEOUT = 1800
LAUNCHER = re.compile(r"=== launcher: (\d+) files downloaded in ([\d.]+) s, container ([\d.]+) s, "
                      r"(\d+) files uploaded in ([\d.]+) s")
STAGE = re.compile(r"^  (\S+)\s+(complete|cached|imported)\s+([\d.]+)s", re.M)


def _run(args: list, home: Path) -> dict:
    """One `kubetfx run` in a fresh home: wall, CPU (process and children), load, the
    seconds until the first task started (container engine), per-stage seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    first_task = None
    out = []
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    with subprocess.Popen([sys.executable, "-m", "kubetfx.pipelines.cli", "run", "--home", str(home), *args],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as process:
        try:
            for line in process.stdout:
                out.append(line)
                if first_task is None and re.match(r"^  \S+ \.\.\.$", line.rstrip("\n")):
                    first_task = time.monotonic() - started
            code = process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = "".join(out)
    if code != 0:
        raise RuntimeError(f"kubetfx run {' '.join(args)} exited {code}:\n{text[-3000:]}")
    result = {"wall_s": round(wall, 2), "load": round(os.getloadavg()[0], 1),
              "cpu_s": round(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, 2),
              "stages": {name: float(seconds) for name, _, seconds in STAGE.findall(text)}}
    if first_task is not None:
        result["before_first_task_s"] = round(first_task, 2)
    return result


def _launcher_times(home: Path) -> dict:
    """{task: {download, container, upload}} from the backend's task logs."""
    times = {}
    for log in home.glob("logs/*/*/*.log"):
        found = LAUNCHER.findall(log.read_text(errors="replace"))
        if found:
            _, down, container, _, up = found[-1]
            times[log.stem] = {"download": float(down), "container": float(container), "upload": float(up)}
    return times


def _remove_serving_volume(home: Path) -> None:
    from kubetfx.pipelines.kubeflow.local_backend import backend

    subprocess.run(["docker", "volume", "rm", "-f", backend.volume_name("kubetfx-serving", home)],
                   capture_output=True, timeout=120)


def measure(side: str, image_repo: str) -> dict:
    home = Path(tempfile.mkdtemp(prefix=f"bench-{side}-"))
    try:
        if side == "in-process":
            return _run([], home)
        result = _run(["--engine", "containers", "--image-repo", image_repo], home)
        result["launcher"] = _launcher_times(home)
        return result
    finally:
        if side == "containers":
            _remove_serving_volume(home)
        shutil.rmtree(home, ignore_errors=True)


def _median(runs: list, *keys) -> float:
    values = []
    for run in runs:
        value = run
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            values.append(value)
    return round(statistics.median(values), 2) if values else float("nan")


def table(runs: dict) -> str:
    local, containers = runs["in-process"], runs["containers"]
    ratio = _median(containers, "wall_s") / _median(local, "wall_s")
    loads = [r["load"] for side in runs.values() for r in side]
    lines = [f"| side | wall s (median of {len(local)}) | CPU s of the process and its children | load |",
             "| --- | ---: | ---: | --- |",
             f"| in process | {_median(local, 'wall_s')} | {_median(local, 'cpu_s')} | "
             f"{min(r['load'] for r in local)}-{max(r['load'] for r in local)} |",
             f"| containers | {_median(containers, 'wall_s')} | {_median(containers, 'cpu_s')} "
             f"(not the stages': Docker's children) | "
             f"{min(r['load'] for r in containers)}-{max(r['load'] for r in containers)} |",
             "", f"containers / in process: **{ratio:.1f}x** (goal: at most 2x); "
             f"container run before its first task: {_median(containers, 'before_first_task_s')} s; "
             f"load {min(loads)}-{max(loads)}", "",
             "| task | task s | container s (start to exit) | download s | upload s |",
             "| --- | ---: | ---: | ---: | ---: |"]
    tasks = sorted({t for r in containers for t in r["launcher"]},
                   key=lambda t: -_median(containers, "stages", t))
    for task in tasks:
        lines.append(f"| {task} | {_median(containers, 'stages', task)} | "
                     f"{_median(containers, 'launcher', task, 'container')} | "
                     f"{_median(containers, 'launcher', task, 'download')} | "
                     f"{_median(containers, 'launcher', task, 'upload')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--image-repo", default="kubetfx", help="images REPO/pipeline (make image IMAGE_REPO=REPO)")
    parser.add_argument("--out", default="build/bench/containers.json")
    args = parser.parse_args()
    sides = ("in-process", "containers")
    for side in sides:  # warm-up, discarded: page cache, image layers, bytecode
        print(f"warm-up {side} ...", flush=True)
        measure(side, args.image_repo)
    runs = {side: [] for side in sides}
    for rep in range(args.reps):
        for side in (sides if rep % 2 == 0 else sides[::-1]):
            result = measure(side, args.image_repo)
            print(f"rep {rep + 1} {side}: {result['wall_s']} s wall, {result['cpu_s']} CPU s, load {result['load']}",
                  flush=True)
            runs[side].append(result)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(runs, indent=2))  # after each run: a long bench may be stopped
    print(table(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
