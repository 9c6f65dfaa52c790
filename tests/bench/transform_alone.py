"""Transform alone, the stock TFX executor beside kubetfx's (components/transform/executor.py),
on a finished run's ExampleGen and SchemaGen outputs (the latest of each under --home),
with the exec properties component.build gives the built-in preprocessing_fn. Each run is
a fresh process (imports are not counted: the stage's time is its executor's Do); a
discarded warm-up of each side, then --reps runs alternated (stock first, then kubetfx
first, ...), medians printed as one JSON line with every raw run and the load average.

    .venv/bin/python tests/bench/transform_alone.py --home .kubetfx \\
        --config '{"label": "species", "task": "classification"}' --reps 3
"""
import glob
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import alternated  # beside this script (sys.path[0])
from latest_outputs import latest

SIDES = ("stock", "kubetfx")


def run_once(side: str, home: str, out: str, config: dict) -> dict:
    """One executor's Do on the run's data: wall and CPU seconds, peak RSS."""
    from tfx.components.transform import executor as stock
    from tfx.types import artifact_utils, standard_artifacts, standard_component_specs as keys

    from kubetfx.components.transform import component, executor as ours

    examples = standard_artifacts.Examples()
    examples.uri = latest(home, "*ExampleGen/examples/*")
    splits = sorted(os.path.basename(p)[len("Split-"):] for p in glob.glob(os.path.join(examples.uri, "Split-*")))
    examples.split_names = artifact_utils.encode_split_names(splits)
    schema = standard_artifacts.Schema()
    schema.uri = latest(home, "*SchemaGen/schema/*")
    graph = standard_artifacts.TransformGraph()
    graph.uri = out
    properties = {keys.PREPROCESSING_FN_KEY: component.PREPROCESSING_FN,
                  keys.CUSTOM_CONFIG_KEY: json.dumps({"column_roles": {}, **config}),
                  keys.FORCE_TF_COMPAT_V1_KEY: 1, keys.DISABLE_STATISTICS_KEY: 1}
    executor = {"stock": stock.Executor, "kubetfx": ours.Executor}[side]()
    wall, cpu = time.monotonic(), time.process_time()
    executor.Do({keys.EXAMPLES_KEY: [examples], keys.SCHEMA_KEY: [schema]}, {keys.TRANSFORM_GRAPH_KEY: [graph]},
                properties)
    return {"side": side, "seconds": round(time.monotonic() - wall, 2),
            "cpu_seconds": round(time.process_time() - cpu, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def _spawn(side: str, args) -> dict:
    out = tempfile.mkdtemp(prefix=f"transform-{side}-")
    try:
        load = os.getloadavg()[0]
        result = subprocess.run([sys.executable, __file__, "--side", side, "--home", args.home,
                                 "--config", args.config, "--out", out],
                                capture_output=True, text=True, timeout=args.timeout,
                                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
        if result.returncode != 0:
            raise SystemExit(f"{side} run failed:\n{result.stderr[-3000:]}")
        return {**json.loads(result.stdout.strip().splitlines()[-1]), "load_before": round(load, 1)}
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = alternated.parser(__doc__, SIDES, reps=3)
    parser.add_argument("--home", required=True)
    parser.add_argument("--config", default='{"label": "species", "task": "classification"}')
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_once(args.side, args.home, args.out, json.loads(args.config))))
        return
    for side in SIDES:  # warm-up, discarded
        _spawn(side, args)
    runs = []
    for side in alternated.order(SIDES, args.reps):
        runs.append(_spawn(side, args))
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    medians = {side: {key: statistics.median(r[key] for r in runs if r["side"] == side)
                      for key in ("seconds", "cpu_seconds", "peak_rss_mb")} for side in SIDES}
    print(json.dumps({"home": args.home, "reps": args.reps, "medians": medians,
                      "ratio": round(medians["kubetfx"]["seconds"] / medians["stock"]["seconds"], 3),
                      "runs": runs}))


if __name__ == "__main__":
    main()
