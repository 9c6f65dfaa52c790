"""`make bench-quality`: the default pipeline's model against a strong tabular reference.

For each public dataset that ships inside an installed package (no network), `kubetfx run`
(the real CLI, all nine stages, the default schema-driven Transform and Trainer) trains
and evaluates; then scikit-learn's HistGradientBoosting is fitted on the SAME train split
and scored on the SAME eval split, read back from the run's ExampleGen artifact. Prints the
Evaluator's metric beside the reference and writes build/bench-quality/results.json.

Goals (issue 15): accuracy within 0.02 of the reference (classification), mean absolute
error within 5% of it (regression). A benchmark, not a test: nothing here asserts.
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "build" / "bench-quality"


def _sklearn_frame(loader, label: str) -> pd.DataFrame:
    bunch = loader(as_frame=True)
    frame = bunch.frame.rename(columns={"target": label})
    frame.columns = [str(c).replace(" ", "_").replace("(", "").replace(")", "").replace("/", "_")
                     for c in frame.columns]
    return frame


def _taxi() -> pd.DataFrame:
    import tfx

    path = Path(tfx.__file__).parent / "examples/chicago_taxi_pipeline/data/big_tipper_label/data.csv"
    # `tips` is the label's source (big_tipper = tips > 20% of fare): a leak, dropped.
    return pd.read_csv(path).drop(columns=["tips"])


def datasets() -> dict:
    """name -> (frame, label, task). Every one ships inside an installed package."""
    from sklearn import datasets as sk

    from kubetfx.pipelines import config

    return {
        "penguins": (pd.read_csv(config.EMBEDDED_DATA / "penguins.csv"), "species", "classification"),
        "breast-cancer": (_sklearn_frame(sk.load_breast_cancer, "diagnosis").assign(
            diagnosis=lambda f: f.diagnosis.map({0: "malignant", 1: "benign"})), "diagnosis", "classification"),
        "wine": (_sklearn_frame(sk.load_wine, "cultivar").assign(
            cultivar=lambda f: "c" + f.cultivar.astype(str)), "cultivar", "classification"),
        "digits": (_sklearn_frame(sk.load_digits, "digit").assign(
            digit=lambda f: "d" + f.digit.astype(str)), "digit", "classification"),
        "chicago-taxi-tips": (_taxi().assign(big_tipper=lambda f: f.big_tipper.map({0: "no", 1: "yes"})),
                              "big_tipper", "classification"),
        "diabetes": (_sklearn_frame(sk.load_diabetes, "progression"), "progression", "regression"),
    }


def _read_split(examples_uri: str, split: str) -> pd.DataFrame:
    import tensorflow as tf

    rows = []
    for path in sorted(glob.glob(os.path.join(examples_uri, f"Split-{split}", "*"))):
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression):
            example = tf.train.Example.FromString(record.numpy())
            row = {}
            for name, feature in example.features.feature.items():
                kind = feature.WhichOneof("kind")
                values = list(getattr(feature, kind).value) if kind else []
                value = values[0] if values else None
                row[name] = value.decode() if isinstance(value, bytes) else value
            rows.append(row)
    return pd.DataFrame(rows)


def reference(train: pd.DataFrame, evaluation: pd.DataFrame, label: str, task: str) -> float:
    """HistGradientBoosting (scikit-learn's strong tabular default) on the same rows."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    features = [c for c in train.columns if c != label]
    categorical = [c for c in features if train[c].dtype == object]
    both = pd.concat([train[features], evaluation[features]])
    for column in categorical:
        both[column] = both[column].astype("category")
    x_train, x_eval = both.iloc[:len(train)], both.iloc[len(train):]
    train_labels, eval_labels = train[label], evaluation[label]
    keep = train_labels.notna()
    if task == "classification":
        model = HistGradientBoostingClassifier(categorical_features="from_dtype", random_state=0)
        model.fit(x_train[keep], train_labels[keep].astype(str))
        scored = eval_labels.notna()
        return float((model.predict(x_eval[scored]) == eval_labels[scored].astype(str)).mean())
    model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0)
    model.fit(x_train[keep], train_labels[keep].astype(float))
    scored = eval_labels.notna()
    return float(np.abs(model.predict(x_eval[scored]) - eval_labels[scored].astype(float)).mean())


def _kubetfx(csv: Path, label: str, name: str, home: Path) -> dict:
    started = time.monotonic()
    process = subprocess.run([sys.executable, "-m", "kubetfx.pipelines.cli", "run", "--data", str(csv),
                              "--label", label, "--name", name, "--home", str(home), "--no-cache"],
                             capture_output=True, text=True, timeout=3600)
    elapsed = time.monotonic() - started
    trainer = [line for line in process.stdout.splitlines() if line.strip().startswith("Trainer")]
    return {"exit_code": process.returncode, "seconds": round(elapsed, 1),
            "trainer": trainer[-1].split(None, 3)[-1] if trainer else "", "log": process.stdout[-3000:]}


def _run_artifacts(home: Path, name: str) -> tuple:
    """(Examples uri, candidate metric value) of the pipeline's latest run, from MLMD."""
    from kubetfx.components import stage_outputs
    from kubetfx.pipelines.record import mlmd

    store = mlmd.open_store(str(home / "metadata" / f"{name}.sqlite"))
    types = {t.id: t.name for t in store.get_artifact_types()}
    latest = {}
    for artifact in store.get_artifacts():
        latest[types[artifact.type_id]] = artifact  # ids grow: the last one wins
    metrics = stage_outputs.gated_metrics(latest["ModelEvaluation"].uri)
    (value, _), = metrics.values()
    return latest["Examples"].uri, value


def measure(name: str, frame: pd.DataFrame, label: str, task: str, work: Path) -> dict:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    csv = folder / f"{name}.csv"
    frame.to_csv(csv, index=False)
    home = folder / "home"
    pipeline = "bq-" + name
    run = _kubetfx(csv, label, pipeline, home)
    result = {"dataset": name, "rows": len(frame), "columns": frame.shape[1] - 1, "task": task, **run}
    try:
        examples, value = _run_artifacts(home, pipeline)
    except Exception as err:  # a failed run still gets a row saying why
        result["error"] = f"{type(err).__name__}: {err}"
        return result
    train, evaluation = _read_split(examples, "train"), _read_split(examples, "eval")
    result.update(kubetfx=value, reference=reference(train, evaluation, label, task),
                  train_rows=len(train), eval_rows=len(evaluation))
    if task == "classification":
        result["gap"] = result["reference"] - value
        result["goal_met"] = result["gap"] <= 0.02
    else:
        result["gap"] = value / result["reference"] - 1
        result["goal_met"] = result["gap"] <= 0.05
    result.pop("log")
    return result


def table(results: list) -> str:
    lines = ["| dataset | rows x cols | task | metric | kubetfx | HistGradientBoosting | gap | goal | trainer |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | --- | --- |"]
    for r in results:
        if "kubetfx" not in r:
            lines.append(f"| {r['dataset']} | {r['rows']} x {r['columns']} | {r['task']} | – | – | – | – | "
                         f"run failed (exit {r['exit_code']}): {r.get('error', '')} | |")
            continue
        metric = "accuracy" if r["task"] == "classification" else "MAE"
        gap = f"{r['gap']:+.3f}" if r["task"] == "classification" else f"{r['gap']:+.1%}"
        goal = "<= 0.02" if r["task"] == "classification" else "<= 5%"
        lines.append(f"| {r['dataset']} | {r['rows']} x {r['columns']} | {r['task']} | {metric} | "
                     f"{r['kubetfx']:.3f} | {r['reference']:.3f} | {gap} | {'met' if r['goal_met'] else 'NOT met'} ({goal}) | "
                     f"{r['trainer']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default="all", help="comma-separated names, or all")
    args = parser.parse_args(argv)
    available = datasets()
    names = list(available) if args.datasets == "all" else args.datasets.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        frame, label, task = available[name]
        print(f"==> {name}: {len(frame)} rows", flush=True)
        results.append(measure(name, frame, label, task, OUT / "work"))
        print(json.dumps({k: v for k, v in results[-1].items() if k != "log"}), flush=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
