"""`make bench`: kubetfx against TFX's own penguin example, side by side in one invocation.

For each size, alternating stock / kubetfx for N repetitions, each run in a fresh process
and a fresh pipeline root: end-to-end wall time (process start to exit, imports included,
as a user waits for it), per-stage wall time (from each run's ML Metadata), peak RSS, and
the ratio kubetfx/stock. Also import and compile time, and image sizes and a container
cold start when Docker and the images are there. Writes build/bench/results.json and
prints a table."""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kubetfx.pipelines import kubeflow_compiler, summary

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import datasets  # noqa: E402  (beside this script, not a package)

REPO = HERE.parents[1]
OUT = REPO / "build" / "bench"
STAGE_ALIASES = {"CsvExampleGen": "ExampleGen", "ImportSchemaGen": "SchemaGen"}


def _json_line(stdout: str) -> dict:
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def _stages(metadata: Path, pipeline: str) -> dict:
    result = summary.summarize(str(metadata), pipeline)
    return {STAGE_ALIASES.get(s.stage, s.stage): round(s.seconds, 2) for s in result.stages} if result else {}


def run_timed(command: list, check: bool = True) -> tuple:
    """(completed process, wall seconds from spawn to exit)."""
    started = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, check=check)
    return out, time.monotonic() - started


def run_stock(data: Path, root: Path) -> dict:
    out, seconds = run_timed([sys.executable, str(HERE / "run_stock.py"), str(data.parents[1]), str(root)])
    return {**_json_line(out.stdout), "seconds": seconds, "stages": _stages(root / "metadata.sqlite", "penguin-stock")}


def run_kubetfx(data: Path | None, root: Path) -> dict:
    args = ["--home", str(root)] + (["--data", str(data), "--label", "species", "--name", "bench"] if data else [])
    out, seconds = run_timed([sys.executable, str(HERE / "run_kubetfx.py"), *args], check=False)
    result = {**_json_line(out.stdout), "seconds": seconds}
    if result["exit_code"] != 0:
        raise RuntimeError(f"kubetfx run failed ({result['exit_code']}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    name = "bench" if data else "kubetfx-penguin"
    return {**result, "stages": _stages(root / "metadata" / f"{name}.sqlite", name)}


def timed(command: list) -> float:
    return run_timed(command)[1]


def docker_facts() -> dict:
    if not shutil.which("docker") or subprocess.call(["docker", "info"], stdout=subprocess.DEVNULL,
                                                     stderr=subprocess.DEVNULL):
        return {}
    facts = {}
    for image in (kubeflow_compiler.PIPELINE_IMAGE, kubeflow_compiler.INFRA_VALIDATOR_IMAGE):
        out = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", image], capture_output=True, text=True)
        if out.returncode == 0:
            facts[f"{image} size GB"] = round(int(out.stdout) / 1e9, 2)
    if facts:
        facts["container cold start s (import tfx)"] = round(timed(
            ["docker", "run", "--rm", "--pull=never", "--network", "none", "--entrypoint", "python",
             kubeflow_compiler.PIPELINE_IMAGE, "-c", "import tfx.v1"]), 1)
    return facts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="default,100k,1m")
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args(argv)
    results = {"machine": {"cpus": os.cpu_count()}, "sizes": {}, "reps": args.reps}
    results["import_seconds"] = round(timed([sys.executable, "-c", "import kubetfx.pipelines.pipeline"]), 1)
    results["compile_seconds"] = round(timed([sys.executable, "-m", "kubetfx.pipelines.cli", "compile",
                                              "--output", str(OUT / "compiled.yaml"), "--home", str(OUT / "compile-home")]), 1)
    for size in args.sizes.split(","):
        data = datasets.write(size, OUT / "data" / size)
        runs = {"stock": [], "kubetfx": []}
        for rep in range(args.reps):
            for side in ("stock", "kubetfx"):  # alternate, so machine load hits both alike
                root = OUT / "runs" / f"{size}-{side}-{rep}"
                shutil.rmtree(root, ignore_errors=True)
                print(f"[{size}] rep {rep + 1}/{args.reps}: {side} ...", flush=True)
                # On the embedded default, kubetfx runs its own default (raw penguins, nine stages).
                kubetfx_data = None if size == "default" else data
                runs[side].append(run_stock(data, root) if side == "stock" else run_kubetfx(kubetfx_data, root))
        results["sizes"][size] = summarize_size(runs)
    results["scaling"] = scaling(results["sizes"])
    results["docker"] = docker_facts()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    print(f"\nwrote {OUT / 'results.json'}")
    return 0


def summarize_size(runs: dict) -> dict:
    def median(side, key):
        return round(statistics.median(r[key] for r in runs[side]), 1)
    stages = sorted({s for side in runs for r in runs[side] for s in r["stages"]})
    per_stage = {s: {side: round(statistics.median(r["stages"].get(s, 0.0) for r in runs[side]), 1)
                     for side in runs} for s in stages}
    return {"stock_seconds": median("stock", "seconds"), "kubetfx_seconds": median("kubetfx", "seconds"),
            "ratio": round(median("kubetfx", "seconds") / median("stock", "seconds"), 2),
            "stock_peak_rss_mb": median("stock", "peak_rss_mb"), "kubetfx_peak_rss_mb": median("kubetfx", "peak_rss_mb"),
            "stages": per_stage, "runs": runs}


def scaling(sizes: dict) -> dict:
    """Cost per extra 100k rows between the scaled sizes (linear growth shows as a steady slope)."""
    measured = sorted(((datasets.SIZES[s], r) for s, r in sizes.items() if datasets.SIZES.get(s)),
                      key=lambda m: m[0])
    if len(measured) < 2:
        return {}
    (n0, r0), (n1, r1) = measured[0], measured[-1]
    per_100k = 100_000 / (n1 - n0)
    out = {f"{side} s per 100k rows": round((r1[f"{side}_seconds"] - r0[f"{side}_seconds"]) * per_100k, 1)
           for side in ("stock", "kubetfx")}
    out["kubetfx peak RSS MB per 100k rows"] = round(
        (r1["kubetfx_peak_rss_mb"] - r0["kubetfx_peak_rss_mb"]) * per_100k, 1)
    example_gen = r1["stages"].get("ExampleGen", {})
    if example_gen.get("kubetfx"):
        out[f"ExampleGen speed-up at {n1:,} rows"] = round(example_gen["stock"] / example_gen["kubetfx"], 1)
    return out


def table(results: dict) -> str:
    lines = ["| size | stage | stock TFX (s) | kubetfx (s) | kubetfx/stock |", "| --- | --- | ---: | ---: | ---: |"]
    for size, r in results["sizes"].items():
        for stage, t in r["stages"].items():
            if not (t["stock"] or t["kubetfx"]):
                continue  # under 0.05 s on both sides (SchemaGen, Pusher...)
            ratio = f"{t['kubetfx'] / t['stock']:.2f}" if t["stock"] and t["kubetfx"] else "–"
            lines.append(f"| {size} | {stage} | {t['stock'] or '–'} | {t['kubetfx'] or '–'} | {ratio} |")
        lines.append(f"| {size} | **end to end** | **{r['stock_seconds']}** | **{r['kubetfx_seconds']}** | **{r['ratio']}** |")
        lines.append(f"| {size} | peak RSS (MB) | {r['stock_peak_rss_mb']} | {r['kubetfx_peak_rss_mb']} | |")
    extra = [f"import {results['import_seconds']} s, compile {results['compile_seconds']} s"]
    extra += [f"{k}: {v}" for k, v in results.get("scaling", {}).items()]
    extra += [f"{k}: {v}" for k, v in results.get("docker", {}).items()]
    return "\n".join(lines) + "\n\n" + "; ".join(extra)


if __name__ == "__main__":
    sys.exit(main())
