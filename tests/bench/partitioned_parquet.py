"""The cost of reading a partitioned Parquet folder (Spark's `partitionBy("dt")`, 10
days) against the same rows in one flat file: what a run pays before any stage
(data_format.check: files, columns, label, classes) and ExampleGen's read (every row
serialized to a tf.Example, parquet_input.encoded_batches). Each side in its own process,
alternated, median of --reps; CPU seconds (user+sys of the child) beside wall, the load
average beside each figure.

    .venv/bin/python tests/bench/partitioned_parquet.py [--rows 1000000] [--reps 3]"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DAYS = 10
CHILD = """
import sys, time
from kubetfx.components.example_gen import data_format, parquet_input
started = time.monotonic()
data_format.check(sys.argv[1], "species")
kind, files = data_format.data_files(sys.argv[1])
rows = sum(len(records) for records, _ in parquet_input.encoded_batches(files))
print(rows, time.monotonic() - started)
"""


def _write(root: Path, rows: int) -> dict:
    import pyarrow as pa

    import data_formats
    from kubetfx.pipelines.config import EMBEDDED_DATA

    penguins = data_formats.csv_table(EMBEDDED_DATA / "penguins.csv")
    table = pa.concat_tables([penguins] * (rows // penguins.num_rows + 1)).slice(0, rows)
    flat = data_formats.write_parquet(root / "flat" / "part-0.parquet", table).parent
    step = rows // DAYS
    parted = data_formats.write_partitioned(root / "partitioned", {
        f"2026-12-{d + 1:02d}": table.slice(d * step, step if d < DAYS - 1 else rows - d * step) for d in range(DAYS)})
    return {"flat": flat, "partitioned": parted}


def _once(data: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", CHILD, str(data)], capture_output=True, text=True, check=True,
                         timeout=1800, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    rows, seconds = out.stdout.split()[-2:]
    return {"rows": int(rows), "read_s": float(seconds), "wall_s": time.monotonic() - started,
            "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
            "load": os.getloadavg()[0]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        sides = _write(Path(tmp), args.rows)
        _once(sides["flat"])  # warm-up, discarded
        runs = {side: [] for side in sides}
        for rep in range(args.reps):
            for side in (sides if rep % 2 == 0 else reversed(list(sides))):
                runs[side].append(_once(sides[side]))
                print(side, json.dumps(runs[side][-1]), flush=True)
    for side, results in runs.items():
        print(f"{side}: rows {results[0]['rows']}, check + read {statistics.median(r['read_s'] for r in results):.2f} s "
              f"(process {statistics.median(r['wall_s'] for r in results):.2f} s wall, "
              f"{statistics.median(r['cpu_s'] for r in results):.2f} CPU s), "
              f"load {min(r['load'] for r in results):.1f}-{max(r['load'] for r in results):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
