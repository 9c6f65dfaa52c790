"""`make bench`: kubetfx against TFX's own penguin example, side by side in one invocation.

Method (the README's Performance section says the same):
- one discarded warm-up run of each side on the embedded data first (page cache, bytecode,
  TF's first import), kept in results.json as `warmup` but in no median;
- per size, N repetitions (--reps, default 3) with the order alternated: stock first in
  repetition 1, kubetfx first in repetition 2, ..., so a load change or a warm cache favours
  neither side; medians over the repetitions, every raw run kept in results.json;
- each run in a fresh process and a fresh pipeline root: end-to-end wall time (process
  start to exit, imports included, as a user waits), per-stage wall time from the run's
  ML Metadata, and peak RSS of the run process plus all its children (the InfraValidator's
  model server is one), sampled every 0.2 s, beside the run process's own exact maximum;
- sizes `10m` and `wide-30/100/300/1000` run kubetfx alone (stock TFX would take over an
  hour at 10M rows); the wide tables report Transform seconds per column, Trainer seconds
  and Trainer microseconds per (row x column), and peak RSS;
- any size whose median peak RSS (run process + children) passes MEMORY_BOUND_MB is
  flagged in the table and makes the bench exit 1.
Also import and compile time, and image sizes and a container cold start when Docker and the
images are there. Writes build/bench/results.json and prints the tables."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

from kubetfx.pipelines.kubeflow import compiler as kubeflow_compiler
from kubetfx.pipelines.record import mlmd, summary

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import datasets  # noqa: E402  (beside this script, not a package)

REPO = HERE.parents[1]
OUT = REPO / "build" / "bench"
STAGE_ALIASES = {"CsvExampleGen": "ExampleGen", "ImportSchemaGen": "SchemaGen"}
SIDES = ("stock", "kubetfx")
STAGE_ORDER = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform", "Trainer",
               "InfraValidator", "ServedBaseline", "Evaluator", "Pusher"]
KUBETFX_ONLY = {"10m", *datasets.WIDTHS}
ONLY_KUBETFX = False  # --kubetfx-only: every size without the stock side (set in main)
ALIASES = {"wide": list(datasets.WIDTHS)}
RSS_SAMPLE_SECONDS = 0.2
MEMORY_BOUND_MB = 2048  # what a run may take (issue 15), checked on every size
# Seconds one run takes on the reference machine (2 cores, quiet; README's figures, the
# Trainer reading all the data): the start-up estimate when no earlier results.json exists.
EXPECTED_SECONDS = {"default": {"stock": 97, "kubetfx": 35}, "100k": {"stock": 121, "kubetfx": 60},
                    "1m": {"stock": 510, "kubetfx": 250}, "10m": {"kubetfx": 1800},
                    "wide-30": {"kubetfx": 70}, "wide-100": {"kubetfx": 75}, "wide-300": {"kubetfx": 190},
                    "wide-1000": {"kubetfx": 600}}


def _json_line(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def stage_windows(metadata: Path, pipeline: str) -> dict:
    """{stage: (start, end)} in epoch seconds, from the latest run's executions in MLMD
    (failed and running ones too: a run that died still says how far it got)."""
    if not metadata.exists():
        return {}
    store = mlmd.open_store(str(metadata))
    run_id = summary.latest_run_id(store, pipeline)
    if run_id is None:
        return {}
    run_ctx = store.get_context_by_type_and_name("pipeline_run", run_id)
    node_type = store.get_context_type("node").id
    windows = {}
    for execution in store.get_executions_by_context(run_ctx.id):
        node = next((c.name.split(".", 1)[-1] for c in store.get_contexts_by_execution(execution.id)
                     if c.type_id == node_type), "?")
        windows[STAGE_ALIASES.get(node, node)] = (execution.create_time_since_epoch / 1000.0,
                                                 execution.last_update_time_since_epoch / 1000.0)
    return windows


def _tree_rss(process: psutil.Process) -> int:
    """Resident bytes of the process and all its descendants (0 for those gone meanwhile).
    Proportional (PSS: shared pages split between the processes sharing them) where Linux
    gives it: summing plain RSS counts a just-forked child's copy-on-write pages twice (the
    model server's fork from the ~1 GB run process showed as a one-sample +900 MB spike)."""
    total = 0
    try:
        family = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in family:
        try:
            total += getattr(p.memory_full_info(), "pss", None) or p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run_sampled(command: list, timeout: float, logs: Path) -> dict:
    """Runs `command`, sampling the RSS of its process tree; the process group is killed
    at `timeout`. Wall seconds from spawn to exit, the timeline, stdout/stderr tails."""
    started, wall_start = time.monotonic(), time.time()
    # Output to files, not pipes: a full pipe would stall a chatty run while we sample.
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "stdout.txt", "w") as out, open(logs / "stderr.txt", "w") as log:
        proc = subprocess.Popen(command, stdout=out, stderr=log, start_new_session=True)
        watched = psutil.Process(proc.pid)
        timeline, timed_out = [], False
        while proc.poll() is None:
            timeline.append((round(time.time(), 2), round(_tree_rss(watched) / 2**20)))
            if time.monotonic() - started > timeout:
                timed_out = True
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(RSS_SAMPLE_SECONDS)
        proc.wait(timeout=60)
    stdout = (logs / "stdout.txt").read_text()
    seconds = time.monotonic() - started
    return {"stdout": stdout, "seconds": round(seconds, 1), "start": wall_start, "timed_out": timed_out,
            "returncode": proc.returncode, "timeline": timeline,
            "stderr_tail": (logs / "stderr.txt").read_text()[-3000:]}


def measure(command: list, root: Path, metadata: Path, pipeline: str, timeout: float) -> dict:
    logs = root / "bench-logs"
    run = run_sampled(command, timeout, logs)
    reported = _json_line(run["stdout"])
    windows = stage_windows(metadata, pipeline)
    timeline = run.pop("timeline")
    result = {"seconds": run["seconds"], "exit_code": reported.get("exit_code", run["returncode"]),
              "timed_out": run["timed_out"],
              "peak_rss_mb": reported.get("peak_rss_mb"),  # the run process alone, exact (getrusage)
              "peak_tree_rss_mb": max((r for _, r in timeline), default=0),  # process + children, sampled
              "stages": {s: round(end - start, 2) for s, (start, end) in windows.items()},
              # A stage shorter than a sampling interval still gets the samples around it.
              "stage_peak_tree_rss_mb": {s: max((r for t, r in timeline
                                                 if start - RSS_SAMPLE_SECONDS <= t <= end + RSS_SAMPLE_SECONDS), default=0)
                                         for s, (start, end) in windows.items()},
              "rss_timeline_mb": timeline[::max(1, len(timeline) // 600)]}  # at most ~600 points kept
    if result["exit_code"] != 0 or run["timed_out"]:
        result["error_tail"] = run["stdout"][-2000:] + run["stderr_tail"]
    (logs / "run.json").write_text(json.dumps(result))  # kept even if the bench stops later
    return result


def run_stock(data: Path, root: Path, timeout: float) -> dict:
    return measure([sys.executable, str(HERE / "run_stock.py"), str(data.parents[1]), str(root)],
                   root, root / "metadata.sqlite", "penguin-stock", timeout)


def run_kubetfx(data: Path | None, label: str, root: Path, timeout: float) -> dict:
    args = ["--home", str(root)] + (["--data", str(data), "--label", label, "--name", "bench"] if data else [])
    name = "bench" if data else "kubetfx-penguin"
    return measure([sys.executable, str(HERE / "run_kubetfx.py"), *args],
                   root, root / "metadata" / f"{name}.sqlite", name, timeout)


def timed(command: list) -> float:
    started = time.monotonic()
    subprocess.run(command, capture_output=True, check=True, timeout=600)
    return time.monotonic() - started


def docker_facts() -> dict:
    if not shutil.which("docker") or subprocess.call(["docker", "info"], stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL, timeout=60):
        return {}
    facts = {}
    for image in (kubeflow_compiler.PIPELINE_IMAGE, kubeflow_compiler.INFRA_VALIDATOR_IMAGE):
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image],
                             capture_output=True, text=True, timeout=60)
        if out.returncode == 0:
            facts[f"{image} size GB"] = round(int(out.stdout) / 1e9, 2)
    if facts:
        facts["container cold start s (import tfx)"] = round(timed(
            ["docker", "run", "--rm", "--pull=never", "--network", "none", "--entrypoint", "python",
             kubeflow_compiler.PIPELINE_IMAGE, "-c", "import tfx.v1"]), 1)
    return facts


def parse_sizes(text: str) -> list:
    sizes = [s for part in text.split(",") if part.strip() for s in ALIASES.get(part.strip(), [part.strip()])]
    unknown = [s for s in sizes if s not in datasets.SIZES and s not in datasets.WIDTHS]
    if unknown:
        raise SystemExit(f"unknown BENCH_SIZES {unknown}: choose from "
                         f"{', '.join([*datasets.SIZES, *datasets.WIDTHS, *ALIASES])}")
    return sizes


def sides_for(size: str) -> tuple:
    return ("kubetfx",) if size in KUBETFX_ONLY or ONLY_KUBETFX else SIDES


def expected_seconds(sizes: list, reps: int, warmup: bool) -> float:
    """From the last results.json's medians where it has the size, else EXPECTED_SECONDS."""
    previous = {}
    if (OUT / "results.json").exists():
        try:
            previous = json.loads((OUT / "results.json").read_text()).get("sizes", {})
        except ValueError:
            pass

    def one(size, side):
        return previous.get(size, {}).get(f"{side}_seconds") or EXPECTED_SECONDS[size][side]

    total = sum(one(size, side) * reps for size in sizes for side in sides_for(size))
    return total + (sum(one("default", side) for side in warmup_sides(sizes)) if warmup else 0) + 60  # import, compile


def warmup_sides(sizes: list) -> list:
    """The sides some size measures (10m or wide alone need no stock warm-up)."""
    return [side for side in SIDES if any(side in sides_for(size) for size in sizes)]


def dataset_for(size: str) -> tuple:
    """(CSV path, label) of a size."""
    if size in datasets.WIDTHS:
        return datasets.write_wide(datasets.WIDTHS[size], OUT / "data", rows=datasets.wide_rows(size)), "label"
    return datasets.write(size, OUT / "data" / size), "species"


def run_side(side: str, size: str, root: Path, timeout: float) -> dict:
    shutil.rmtree(root, ignore_errors=True)
    data, label = dataset_for(size)
    if side == "stock":
        return run_stock(data, root, timeout)
    # On the embedded default, kubetfx runs its own default (raw penguins, nine stages).
    return run_kubetfx(None if size == "default" else data, label, root, timeout)


def main(argv=None) -> int:
    global OUT, ONLY_KUBETFX
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="default,100k,1m",
                        help="comma-separated: default, 100k, 1m, 10m, wide-30, wide-100, wide-300, wide-1000, wide")
    parser.add_argument("--reps", type=int, default=3, help="measured repetitions per size (median)")
    parser.add_argument("--no-warmup", action="store_true", help="skip the discarded warm-up runs")
    parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds one run may take")
    parser.add_argument("--kubetfx-only", action="store_true",
                        help="no stock TFX runs (e.g. kubetfx at 1m beside 10m for the slope)")
    parser.add_argument("--out", type=Path, default=None, help="results, data and runs (default build/bench)")
    args = parser.parse_args(argv)
    OUT = (args.out or OUT).resolve()
    ONLY_KUBETFX = args.kubetfx_only
    sizes = parse_sizes(args.sizes)
    expected = expected_seconds(sizes, args.reps, not args.no_warmup)
    print(f"bench: sizes {','.join(sizes)}, {args.reps} repetition(s), warm-up {'off' if args.no_warmup else 'on'}; "
          f"expected about {expected / 60:.0f} min on a quiet 2-core machine", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    results = {"machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
               "reps": args.reps, "sizes": {}}
    results["import_seconds"] = round(timed([sys.executable, "-c", "import kubetfx.pipelines.pipeline"]), 1)
    results["compile_seconds"] = round(timed([sys.executable, "-m", "kubetfx.pipelines.cli", "compile",
                                              "--output", str(OUT / "compiled.yaml"), "--home", str(OUT / "compile-home")]), 1)
    if not args.no_warmup:
        results["warmup"] = {}
        for side in warmup_sides(sizes):
            print(f"[warm-up, discarded] {side} ...", flush=True)
            results["warmup"][side] = run_side(side, "default", OUT / "runs" / f"warmup-{side}", args.timeout)
    for size in sizes:
        started = time.monotonic()
        dataset_for(size)
        data_seconds = round(time.monotonic() - started, 1)
        runs = {side: [] for side in sides_for(size)}
        for rep in range(args.reps):
            order = sides_for(size) if rep % 2 == 0 else tuple(reversed(sides_for(size)))
            for side in order:  # alternated: neither side always runs first
                print(f"[{size}] rep {rep + 1}/{args.reps}: {side} ... (load {os.getloadavg()[0]:.1f})", flush=True)
                run = run_side(side, size, OUT / "runs" / f"{size}-{side}-{rep}", args.timeout)
                run.update(rep=rep, order=order.index(side), load_average=os.getloadavg())
                runs[side].append(run)
                if run["exit_code"] != 0 or run["timed_out"]:
                    print(f"  {side} failed (exit {run['exit_code']}, timed out {run['timed_out']}):\n"
                          f"{run.get('error_tail', '')[-1500:]}", flush=True)
        results["sizes"][size] = {**summarize_size(runs, size), "data_write_seconds": data_seconds}
        (OUT / "results.json").write_text(json.dumps(results, indent=1))  # a long run keeps what it has
    results["scaling"] = scaling(results["sizes"])
    results["wide"] = wide(results["sizes"])
    results["docker"] = docker_facts()
    results["machine"]["load_average_at_end"] = os.getloadavg()
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"\nwrote {OUT / 'results.json'}")
    return 1 if any(r["failed_runs"] or over_memory_bound(r) for r in results["sizes"].values()) else 0


def over_memory_bound(r: dict) -> bool:
    return (r.get("kubetfx_peak_tree_rss_mb") or 0) > MEMORY_BOUND_MB


def _median(values):
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 1) if values else None


def summarize_size(runs: dict, size: str) -> dict:
    ok = {side: [r for r in rs if r["exit_code"] == 0 and not r["timed_out"]] for side, rs in runs.items()}
    stages = sorted({s for side in ok for r in ok[side] for s in r["stages"]},
                    key=lambda s: (STAGE_ORDER.index(s) if s in STAGE_ORDER else len(STAGE_ORDER), s))
    out = {"rows": datasets.SIZES.get(size), "columns": datasets.WIDTHS.get(size),
           "wide_rows": datasets.wide_rows(size) if size in datasets.WIDTHS else None,
           "failed_runs": sum(len(runs[s]) - len(ok[s]) for s in runs), "runs": runs,
           "stages": {s: {side: _median(r["stages"].get(s, 0.0) for r in ok[side]) for side in ok}
                      for s in stages},
           "stage_peak_tree_rss_mb": {s: {side: _median(r["stage_peak_tree_rss_mb"].get(s) for r in ok[side])
                                          for side in ok} for s in stages}}
    for side in ok:
        out[f"{side}_seconds"] = _median(r["seconds"] for r in ok[side])
        out[f"{side}_peak_rss_mb"] = _median(r["peak_rss_mb"] for r in ok[side])
        out[f"{side}_peak_tree_rss_mb"] = _median(r["peak_tree_rss_mb"] for r in ok[side])
    if out.get("stock_seconds") and out.get("kubetfx_seconds"):
        out["ratio"] = round(out["kubetfx_seconds"] / out["stock_seconds"], 2)
    return out


def scaling(sizes: dict) -> dict:
    """Per scaled size, microseconds per row end to end and per stage (a stage that streams
    keeps its cost per row as rows grow), and the cost per extra 100k rows between
    consecutive sizes (linear growth shows as a steady slope)."""
    measured = sorted(((r["rows"], s, r) for s, r in sizes.items() if r.get("rows")), key=lambda m: m[0])
    out = {"us_per_row": {}, "slopes": {}}
    for rows, size, r in measured:
        for side in SIDES:
            if r.get(f"{side}_seconds"):
                out["us_per_row"].setdefault(side, {})[size] = {
                    "end to end": round(r[f"{side}_seconds"] / rows * 1e6, 1),
                    **{stage: round(t[side] / rows * 1e6, 1) for stage, t in r["stages"].items() if t.get(side)}}
    for (n0, s0, r0), (n1, s1, r1) in zip(measured, measured[1:]):
        per_100k = 100_000 / (n1 - n0)
        slope = {}
        for side in SIDES:
            if r0.get(f"{side}_seconds") and r1.get(f"{side}_seconds"):
                slope[f"{side} s per 100k rows"] = round((r1[f"{side}_seconds"] - r0[f"{side}_seconds"]) * per_100k, 1)
                slope[f"{side} peak tree RSS MB per 100k rows"] = round(
                    (r1[f"{side}_peak_tree_rss_mb"] - r0[f"{side}_peak_tree_rss_mb"]) * per_100k, 1)
        example_gen = r1["stages"].get("ExampleGen", {})
        if example_gen.get("kubetfx") and example_gen.get("stock"):
            slope[f"ExampleGen speed-up at {s1}"] = round(example_gen["stock"] / example_gen["kubetfx"], 1)
        if slope:
            out["slopes"][f"{s0} -> {s1}"] = slope
    return out


def wide(sizes: dict) -> dict:
    """Per width: Transform seconds per numeric column (flat = linear in the columns), the
    Trainer's seconds and microseconds per cell, rows x columns (flat = proportional to the
    data, not to the graph's width), and peak RSS against the bound."""
    out = {}
    for size, r in sizes.items():
        transform = r["stages"].get("Transform", {}).get("kubetfx")
        trainer = r["stages"].get("Trainer", {}).get("kubetfx")
        if r.get("columns") and transform:
            rows = r.get("wide_rows") or datasets.wide_rows(size)
            out[size] = {"columns": r["columns"], "rows": rows, "transform_seconds": transform,
                         "transform_seconds_per_column": round(transform / r["columns"], 3),
                         "trainer_seconds": trainer,
                         "trainer_us_per_cell": round(trainer / (rows * r["columns"]) * 1e6, 2) if trainer else None,
                         "peak_tree_rss_mb": r.get("kubetfx_peak_tree_rss_mb"),
                         "over_memory_bound": over_memory_bound(r)}
    # The cost of one more column between widths (the fixed cost cancels out).
    widths = sorted(out.values(), key=lambda w: w["columns"])
    for narrow, broad in zip(widths, widths[1:]):
        broad[f"transform_seconds_per_extra_column_from_{narrow['columns']}"] = round(
            (broad["transform_seconds"] - narrow["transform_seconds"]) / (broad["columns"] - narrow["columns"]), 3)
    return out


def _cell(value) -> str:
    return "–" if value in (None, 0, 0.0) else str(value)


def table(results: dict) -> str:
    lines = ["| size | stage | stock TFX (s) | kubetfx (s) | kubetfx/stock | kubetfx peak RSS, tree (MB) |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    for size, r in results["sizes"].items():
        for stage, t in r["stages"].items():
            stock, mine = t.get("stock"), t.get("kubetfx")
            if not (stock or mine):
                continue  # under 0.05 s on both sides (SchemaGen, Pusher...)
            ratio = f"{mine / stock:.2f}" if stock and mine else "–"
            rss = r["stage_peak_tree_rss_mb"].get(stage, {}).get("kubetfx")
            lines.append(f"| {size} | {stage} | {_cell(stock)} | {_cell(mine)} | {ratio} | {_cell(rss)} |")
        lines.append(f"| {size} | **end to end** | **{_cell(r.get('stock_seconds'))}** | "
                     f"**{_cell(r.get('kubetfx_seconds'))}** | **{_cell(r.get('ratio'))}** | "
                     f"**{_cell(r.get('kubetfx_peak_tree_rss_mb'))}** |")
        lines.append(f"| {size} | peak RSS, run process + children (MB) | {_cell(r.get('stock_peak_tree_rss_mb'))} "
                     f"| {_cell(r.get('kubetfx_peak_tree_rss_mb'))} | | |")
        if r["failed_runs"]:
            lines.append(f"| {size} | **failed runs** | | **{r['failed_runs']}** | | |")
        if over_memory_bound(r):
            lines.append(f"| {size} | **over the {MEMORY_BOUND_MB} MB memory bound** | | | | "
                         f"**{r['kubetfx_peak_tree_rss_mb']}** |")
    extra = [f"import {results['import_seconds']} s, compile {results['compile_seconds']} s",
             f"load average {results['machine']['load_average_at_start']} -> {results['machine']['load_average_at_end']}"]
    for side, per_size in results["scaling"].get("us_per_row", {}).items():
        extra.append(f"{side} µs per row: " + ", ".join(f"{s} {v['end to end']}" for s, v in per_size.items()))
    for interval, slope in results["scaling"].get("slopes", {}).items():
        extra.append(f"{interval}: " + ", ".join(f"{k} {v}" for k, v in slope.items()))
    for size, w in results.get("wide", {}).items():
        extra.append(f"{size} ({w['rows']} rows): Transform {w['transform_seconds']} s, "
                     f"{w['transform_seconds_per_column']} s per column"
                     + "".join(f", {v} s per extra column from {k.rsplit('_', 1)[-1]}"
                               for k, v in w.items() if k.startswith("transform_seconds_per_extra"))
                     + f"; Trainer {w['trainer_seconds']} s, {w['trainer_us_per_cell']} µs per row x column"
                     + f"; peak RSS {w['peak_tree_rss_mb']} MB"
                     + (f" OVER THE {MEMORY_BOUND_MB} MB BOUND" if w["over_memory_bound"] else ""))
    extra += [f"{k}: {v}" for k, v in results.get("docker", {}).items()]
    return "\n".join(lines) + "\n\n" + "\n".join(extra)


if __name__ == "__main__":
    sys.exit(main())
