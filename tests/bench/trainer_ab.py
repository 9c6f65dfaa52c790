"""The built-in Trainer alone (trainer_alone.py's inputs: a finished run's ExampleGen,
SchemaGen and Transform outputs under --home), model.py as committed at --before beside the
working tree's, alternated: run_fn's wall and CPU seconds (process_time, all threads), the
load average, and whether both models predict the same on the eval split. One JSON line
per run, then the medians.

    .venv/bin/kubetfx run --home /tmp/T/home
    .venv/bin/python tests/bench/trainer_ab.py --home /tmp/T/home --before 9f29a14 --reps 4
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))


def one_run(model_file: str, home: str, out: str) -> dict:
    """run_fn of `model_file` (imported under model.py's name) in a fresh process."""
    code = f"""
import importlib.util, json, os, sys, time
sys.path.insert(0, {HERE!r})
import kubetfx.components.trainer as package
spec = importlib.util.spec_from_file_location("kubetfx.components.trainer.model", {model_file!r})
model = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = package.model = model
spec.loader.exec_module(model)
from trainer_alone import fn_args_for
fn_args = fn_args_for({home!r}, {out!r}, {{"label": "species", "task": "classification"}})
started, cpu = time.monotonic(), time.process_time()
model.run_fn(fn_args)
print("RESULT", json.dumps({{"seconds": round(time.monotonic() - started, 2),
      "cpu_seconds": round(time.process_time() - cpu, 2), "load1": round(os.getloadavg()[0], 2)}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, check=False)
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    if done.returncode or not lines:
        raise SystemExit(f"{model_file}: exit {done.returncode}: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(lines[-1][len("RESULT "):])


def predictions(serving: str, home: str):
    import glob

    import tensorflow as tf
    from latest_outputs import latest
    files = glob.glob(os.path.join(latest(home, "*ExampleGen/examples/*"), "Split-eval", "*"))
    examples = tf.constant([r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")])
    return tf.saved_model.load(serving).signatures["serving_default"](examples=examples)["probabilities"].numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True, help="a finished run's --home")
    parser.add_argument("--before", required=True, help="the git revision of model.py to compare with")
    parser.add_argument("--reps", type=int, default=4)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="trainer_ab_")
    before = os.path.join(work, "model_before.py")
    with open(before, "w") as f:
        f.write(subprocess.run(["git", "-C", REPO, "show", f"{args.before}:components/trainer/model.py"],
                               capture_output=True, text=True, check=True).stdout)
    sides = {"before": before, "after": os.path.join(REPO, "components", "trainer", "model.py")}
    results = {side: [] for side in sides}
    for rep in range(args.reps):
        for side, model_file in sides.items():
            out = os.path.join(work, f"{side}{rep}")
            result = {"side": side, "rep": rep, **one_run(model_file, args.home, out)}
            results[side].append(result)
            print(json.dumps(result), flush=True)
    import numpy as np
    same = np.array_equal(*(predictions(os.path.join(work, f"{side}0", "serving"), args.home) for side in sides))
    print(json.dumps({side: {key: round(statistics.median(r[key] for r in runs), 2) for key in ("seconds", "cpu_seconds", "load1")}
                      for side, runs in results.items()} | {"same_predictions": bool(same)}))


if __name__ == "__main__":
    main()
