"""`make bench-monitor`: how often `kubetfx monitor` alarms on healthy data (false alarms)
and on shifted data (true alarms), at the default thresholds.

For each table (the embedded penguins; monitor_tables.py's customers and trips: ~3% empty
cells, an integer id, a date), `kubetfx run` (the real CLI) trains and pushes a model once
into build/bench-monitor/<table>/home. Then, for SEEDS seeds and each sample size, rows are
drawn from the training table (without replacement) and judged by the monitor's own code
(`drift.judge` against the served version's training statistics and schema, as `kubetfx
monitor` does, in process to keep the bench short) on two paths:
- data: the sample written as CSV without the label column, read as `--data` reads it;
- logs: each row as the JSON instance a client sends (empty cells left out, no label),
  encoded as the model server encodes requests for the inference log, judged as skew.
A sample alarms when any feature's verdict is not ok (the exit code would be 11).
Shifted samples (one numeric feature +1 and +0.3 standard deviation, one categorical
feature all one value, one feature's missing rate to 30% and 15%) measure the alarms a
team wants: the share of them where the shifted feature's verdict is not ok.

Prints one table, writes build/bench-monitor/results.json. A benchmark: nothing asserts.
"""
from __future__ import annotations

import argparse
import collections
import csv
import datetime
import io
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent)]
import monitor_tables  # noqa: E402  (beside this script, not a package)

OUT = REPO / "build" / "bench-monitor"
SHIFTS = ("numeric +1 sd", "numeric +0.3 sd", "category all one value", "missing rate 30%", "missing rate 15%")


def _tables(folder: Path) -> list:
    """(name, data path, label)."""
    from kubetfx.pipelines.config import EMBEDDED_DATA

    for name in ("customers", "trips"):
        (folder / name / "data").mkdir(parents=True, exist_ok=True)
    return [("penguins", EMBEDDED_DATA / "penguins.csv", "species"),
            ("customers", monitor_tables.customers(folder / "customers" / "data" / "data.csv"), "churned"),
            ("trips", monitor_tables.trips(folder / "trips" / "data" / "data.csv"), "fare")]


def _train(name: str, data: Path, label: str, folder: Path) -> Path:
    home = folder / name / "home"
    if not (home / "serving").exists():
        argv = [sys.executable, "-m", "kubetfx.pipelines.cli", "run", "--home", str(home), "--name", f"bench-{name}"]
        if name != "penguins":
            argv += ["--data", str(data.parent), "--label", label]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=1800)
        if result.returncode != 0:
            sys.exit(f"kubetfx run on {name} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return home


def _served(home: Path, name: str):
    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.monitor import command

    config = PipelineConfig(home=str(home), name=f"bench-{name}").validate()
    served = command._served(config)
    training, schema = command._training(served)
    return config, training, schema


def _rows(path: Path) -> tuple[list, list]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def _csv_examples(header: list, rows: list, label: str) -> list:
    from kubetfx.pipelines.monitor import new_statistics

    columns = [c for c in header if c != label]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path = OUT / f"sample-{os.getpid()}.csv"
    path.write_text(buffer.getvalue())
    try:
        return list(new_statistics.csv_examples(str(path)))
    finally:
        path.unlink()


def _request_examples(rows: list, schema, label: str) -> list:
    """Each row as the JSON instance a client sends: typed by the schema, gaps left out."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    from kubetfx.components.example_gen import csv_input
    from kubetfx.components.serving import rest_api

    gaps = set(csv_input.NULL_VALUES)  # what ExampleGen reads as an empty cell ("NA" in trips)
    kinds = {f.name: {schema_pb2.INT: int, schema_pb2.FLOAT: float}.get(f.type, str) for f in schema.feature}
    examples = []
    for row in rows:
        instance = {}
        for name, value in row.items():
            if name == label or name not in kinds or value is None or value in gaps:
                continue
            try:
                instance[name] = kinds[name](float(value)) if kinds[name] is int else kinds[name](value)
            except ValueError:
                instance[name] = value
        examples.append(rest_api.example_from_features(instance, {}))
    return examples


def _judge(examples: list, training, schema, mode: str, label: str, thresholds):
    from kubetfx.pipelines.monitor import drift, new_statistics

    new = new_statistics.statistics(examples, schema, new_statistics.standard_boundaries(training))
    return drift.judge(new, training, schema, mode, label, thresholds)


def _numeric(rows: list, name: str) -> list:
    values = []
    for row in rows:
        try:
            values.append(float(row[name]))
        except (TypeError, ValueError):
            pass
    return values


def _shift(kind: str, rows: list, all_rows: list, schema, label: str, rng: random.Random) -> tuple[list, str]:
    """The sample with one feature moved; (rows, feature)."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    from kubetfx.pipelines.monitor import drift

    features = [f for f in schema.feature if f.name != label]
    rows = [dict(r) for r in rows]
    if kind.startswith("numeric"):
        feature = next(f for f in features if not drift.is_categorical(f) and len(set(_numeric(all_rows, f.name))) > 20)
        sd = statistics.pstdev(_numeric(all_rows, feature.name)) * float(kind.split("+")[1].split()[0])
        for row in rows:
            if row[feature.name] not in ("", None):
                value = float(row[feature.name]) + sd
                row[feature.name] = str(round(value)) if feature.type == schema_pb2.INT else f"{value:.4f}"
    elif kind.startswith("category"):
        counts_of = {f.name: collections.Counter(r[f.name] for r in all_rows if r[f.name]) for f in features}
        feature = next(f for f in features if drift.is_categorical(f) and 2 <= len(counts_of[f.name]) <= 20)
        counts = counts_of[feature.name]
        rare = min(counts, key=counts.get)
        for row in rows:
            row[feature.name] = rare
    else:
        feature, rate = features[-1], float(kind.split()[-1].rstrip("%")) / 100
        for row in rows:
            if rng.random() < rate:
                row[feature.name] = ""
    return rows, feature.name


def _alarm(judgement) -> dict:
    return {"alarm": judgement.word != "ok", "word": judgement.word,
            "features": {v.feature: v.verdict for v in judgement.verdicts if not v.ok},
            "measures": {v.feature: v.value for v in judgement.verdicts},
            "kinds": {v.feature: v.measure for v in judgement.verdicts},
            "missing_moves": {v.feature: abs(v.missing - v.missing_training) for v in judgement.verdicts
                              if v.missing is not None and v.missing_training is not None}}


def run(seeds: int, sizes: list) -> dict:
    from kubetfx.pipelines.monitor import drift

    OUT.mkdir(parents=True, exist_ok=True)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "command": " ".join(["python", "tests/bench/monitor_false_alarms.py", *sys.argv[1:]]),
               "seeds": seeds, "sizes": sizes, "tables": {}}
    for name, data, label in _tables(OUT):
        home = _train(name, Path(data), label, OUT)
        config, training, schema = _served(home, name)
        thresholds = drift.Thresholds.from_config(config)
        header, all_rows = _rows(Path(data))
        table = results["tables"][name] = {"rows": len(all_rows), "label": label, "healthy": [], "shifted": []}
        for size in sizes:
            size = min(size, len(all_rows) // 2)
            for seed in range(seeds):
                rng = random.Random(seed)
                sample = rng.sample(all_rows, size)
                for path, examples, mode in (
                        ("data", _csv_examples(header, sample, label), drift.DRIFT),
                        ("logs", _request_examples(sample, schema, label), drift.SKEW)):
                    judged = _judge(examples, training, schema, mode, label, thresholds)
                    table["healthy"].append({"size": size, "seed": seed, "path": path, **_alarm(judged)})
                for kind in SHIFTS:
                    shifted, feature = _shift(kind, sample, all_rows, schema, label, rng)
                    judged = _judge(_csv_examples(header, shifted, label), training, schema, drift.DRIFT, label,
                                    thresholds)
                    table["shifted"].append({"size": size, "seed": seed, "shift": kind, "feature": feature,
                                             "caught": any(v.feature == feature and not v.ok
                                                           for v in judged.verdicts),
                                             **_alarm(judged)})
        print(f"{name}: {len(table['healthy'])} healthy and {len(table['shifted'])} shifted samples judged",
              file=sys.stderr, flush=True)
    return results


def _rate(items: list, key: str) -> str:
    hits = sum(1 for i in items if i[key])
    return f"{hits}/{len(items)} = {hits / len(items):.1%}" if items else "-"


def report(results: dict) -> str:
    lines = [f"kubetfx monitor alarms at the default thresholds, {results['date']} ({results['command']}); "
             f"{results['seeds']} seeds per table, size and path",
             f"{'table':<10} {'size':>5} {'path':<5} {'false alarms (healthy)':<24} which"]
    everything = []
    for name, table in results["tables"].items():
        for size in sorted({h["size"] for h in table["healthy"]}):
            for path in ("data", "logs"):
                items = [h for h in table["healthy"] if h["size"] == size and h["path"] == path]
                everything += items
                which = collections.Counter(f"{f} {w}" for h in items for f, w in h["features"].items())
                lines.append(f"{name:<10} {size:>5} {path:<5} {_rate(items, 'alarm'):<24} "
                             f"{', '.join(f'{k} x{n}' for k, n in which.most_common(3)) or '-'}")
    lines.append(f"all healthy samples: false alarms {_rate(everything, 'alarm')}")
    largest = collections.defaultdict(float)
    for h in everything:
        for feature, value in h["measures"].items():
            if value is not None:
                largest[h["kinds"][feature]] = max(largest[h["kinds"][feature]], value)
        largest["missing-rate move"] = max([largest["missing-rate move"], *h["missing_moves"].values()])
    from kubetfx.pipelines.config import PipelineConfig

    default = PipelineConfig()
    limits = {"Jensen-Shannon": default.drift_numeric_threshold, "L-infinity": default.drift_categorical_threshold,
              "missing-rate move": default.drift_missing_rate_threshold}
    lines.append("largest on healthy samples (default limit): " + ", ".join(
        f"{kind} {value:.3f} ({limits.get(kind)})" for kind, value in sorted(largest.items())))
    lines.append(f"{'table':<10} {'size':>5} {'shift':<24} true alarms on the shifted feature")
    for name, table in results["tables"].items():
        for size in sorted({s["size"] for s in table["shifted"]}):
            for kind in SHIFTS:
                items = [s for s in table["shifted"] if s["size"] == size and s["shift"] == kind]
                feature = items[0]["feature"] if items else "-"
                lines.append(f"{name:<10} {size:>5} {kind:<24} {_rate(items, 'caught')} ({feature})")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=25)
    parser.add_argument("--sizes", default="100,300", help="rows per sample, comma-separated")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    started = time.monotonic()
    results = run(args.seeds, [int(s) for s in args.sizes.split(",")])
    results["seconds"] = round(time.monotonic() - started, 1)
    (OUT / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(report(results))
    print(f"({results['seconds']} s; every sample in {OUT / 'results.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
