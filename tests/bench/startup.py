"""`make bench-startup`: the fixed costs a user or a cluster pays before any data is read
(issue 27): the CLI's start, the in-process run's imports, a stage container from `docker run`
to its executor class loaded (what precedes the executor's first line), and `kubetfx monitor`
on 10k new rows.

Method: each figure in a fresh process; one discarded warm-up, then --reps measured runs
(median). With several --images the images alternate within each repetition, so a load
change favours none. Beside wall time, the CPU seconds of the measured process (for a
container, of its Python, read inside it): on a shared machine wall time follows the load,
CPU seconds much less; the 1-minute load average is recorded with every run.
`--cold` drops the page cache before each container run (root; `sync; echo 3 >
/proc/sys/vm/drop_caches`). Writes build/bench/startup.json and prints a Markdown table."""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from kubetfx.pipelines.config import EMBEDDED_DATA

IMAGE = "kubetfx/pipeline:0.1.0"
TIMEOUT = 900
# What the entrypoint imports before it hands the stage to its executor (entrypoint.main).
STAGE_START = """
import resource, sys
import kubetfx.components.container.entrypoint
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor
from tfx.utils import import_utils
from tfx.components.example_gen import base_example_gen_executor
from kubetfx.components import autograph, upstream_seams
import_utils.import_class_by_path("kubetfx.components.statistics_gen.executor.Executor")
r = resource.getrusage(resource.RUSAGE_SELF)
print("cpu", r.ru_utime + r.ru_stime, "modules", len(sys.modules))
"""
RUN_IMPORTS = ("import kubetfx.pipelines.pipeline, kubetfx.pipelines.run.parallel_runner, "
               "kubetfx.pipelines.run.recovery")


def _child(command: list) -> dict:
    """Wall and CPU seconds (CPU of the process and its children) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "code": done.returncode,
            "load": round(os.getloadavg()[0], 1), "tail": done.stderr[-300:] if done.returncode not in (0, 11) else ""}


def _container(image: str, cold: bool) -> dict:
    if cold:
        subprocess.run(["sync"], check=True, timeout=TIMEOUT)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    started = time.monotonic()
    done = subprocess.run(["docker", "run", "--rm", "--pull=never", "--network", "none", "--entrypoint", "python",
                           image, "-c", STAGE_START], capture_output=True, text=True, timeout=TIMEOUT)
    wall = time.monotonic() - started
    words = (done.stdout.split() or ["", ""])
    return {"image": image, "wall_s": round(wall, 2), "code": done.returncode, "cold": cold,
            "cpu_s": round(float(words[1]), 2) if done.returncode == 0 else None,
            "modules": int(words[3]) if done.returncode == 0 else None, "load": round(os.getloadavg()[0], 1)}


def _monitor_home(out: Path) -> tuple:
    """A home with a served model (one `kubetfx run`, not measured) and 10k new rows."""
    home, data = out / "home", out / "new-10k.csv"
    if not (home / "serving").is_dir() or not any((home / "serving").rglob("saved_model.pb")):
        subprocess.run([sys.executable, "-m", "kubetfx.pipelines.cli", "run", "--home", str(home)],
                       check=True, capture_output=True, timeout=TIMEOUT)
    if not data.exists():
        rows = pd.read_csv(EMBEDDED_DATA / "penguins.csv")
        rows.sample(10_000, replace=True, random_state=1).to_csv(data, index=False)
    return home, data


def _median(runs: list, key: str):
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 2) if values else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--images", default=IMAGE, help="comma-separated stage images, alternated")
    parser.add_argument("--cold", action="store_true", help="drop the page cache before each container run (root)")
    parser.add_argument("--out", type=Path, default=Path("build/bench"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    home, data = _monitor_home(args.out / "startup")
    cli = [sys.executable, "-m", "kubetfx.pipelines.cli"]
    cases = {
        "kubetfx --help": cli + ["--help"],
        "run's imports (pipeline, runner)": [sys.executable, "-c", RUN_IMPORTS],
        "monitor, 10k new rows": cli + ["monitor", "--home", str(home), "--data", str(data)],
    }
    docker = shutil.which("docker") and subprocess.call(["docker", "info"], stdout=subprocess.DEVNULL,
                                                          stderr=subprocess.DEVNULL, timeout=60) == 0
    images = [i for i in args.images.split(",") if i] if docker else []
    runs = {name: [] for name in cases}
    runs.update({f"stage container to executor ({image})": [] for image in images})
    for rep in range(args.reps + 1):  # rep 0: the warm-up, in no median
        for name, command in cases.items():
            runs[name].append(_child(command))
        for image in (images if rep % 2 == 0 else images[::-1]):
            runs[f"stage container to executor ({image})"].append(_container(image, args.cold))
    results = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpus": os.cpu_count(),
               "reps": args.reps, "cold": args.cold, "runs": runs,
               "medians": {name: {"wall_s": _median(r[1:], "wall_s"), "cpu_s": _median(r[1:], "cpu_s"),
                                  "load": _median(r[1:], "load")} for name, r in runs.items()}}
    (args.out / "startup.json").write_text(json.dumps(results, indent=2))
    print(f"{results['date']}, {results['cpus']} CPUs, median of {args.reps} after a warm-up"
          f"{', page cache dropped before each container run' if args.cold else ''}")
    print("| what | wall s | CPU s | load (1 min) |\n| --- | --- | --- | --- |")
    for name, m in results["medians"].items():
        print(f"| {name} | {m['wall_s']} | {m['cpu_s']} | {m['load']} |")
    bad = [name for name, r in runs.items() if any(x.get("code") not in (0, 11) for x in r)]
    if bad:
        print(f"failed: {', '.join(bad)} (build/bench/startup.json has their output)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
