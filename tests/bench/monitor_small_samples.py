"""How often `kubetfx monitor` alarms on small healthy samples (a quiet hour's requests):
for each size, SEEDS samples of the embedded penguins drawn from the data itself (without
the label), judged by the monitor's own code (new_statistics + drift.judge, the served
schema's types, histograms on the training buckets) against the statistics of the whole
file. Prints, per size, how many samples alarmed, which features, and the largest
measure/limit ratio per feature. A benchmark: nothing asserts.

    .venv/bin/python tests/bench/monitor_small_samples.py --sizes 5,10,20,30,50,100 --seeds 200
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,20,30,50,100", help="rows per sample, comma-separated")
    parser.add_argument("--seeds", type=int, default=200, help="samples per size (seeds 0..N-1)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow_data_validation as tfdv

    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.monitor import drift, new_statistics
    from kubetfx.pipelines.run.inputs import CURATED_SCHEMA

    data = PipelineConfig().data + "/penguins.csv"
    schema = tfdv.load_schema_text(str(CURATED_SCHEMA))
    training = new_statistics.statistics(new_statistics.csv_examples(data), schema)
    boundaries = new_statistics.standard_boundaries(training)
    thresholds = drift.Thresholds.from_config(PipelineConfig())
    with open(data, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c != "species"]
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "sample.csv")
        for size in (int(s) for s in args.sizes.split(",")):
            alarmed, by_feature, worst = 0, {}, {}
            for seed in range(args.seeds):
                with open(path, "w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
                    writer.writeheader()
                    writer.writerows(random.Random(seed).sample(rows, size))
                new = new_statistics.statistics(new_statistics.csv_examples(path, schema), schema, boundaries)
                judged = drift.judge(new, training, schema, drift.DRIFT, "species", thresholds)
                alarmed += judged.word != drift.OK
                for v in judged.verdicts:
                    if v.value is not None:
                        worst[v.feature] = max(worst.get(v.feature, 0.0), v.value / v.threshold)
                    if not v.ok:
                        by_feature[v.feature] = by_feature.get(v.feature, 0) + 1
            print(f"{size:>4} rows: {alarmed}/{args.seeds} samples alarmed; by feature {by_feature}; "
                  f"largest measure/limit {({k: round(x, 2) for k, x in worst.items()})}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
