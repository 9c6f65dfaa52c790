"""`kubetfx monitor --data` on 10k new rows in each format `run --data` takes (CSV, Parquet,
TFRecords of tf.Examples), against one model trained on the Parquet penguins: CPU seconds
(user+sys of the monitor process) and wall, alternated, median of --reps, the load average
beside each. The three formats share the statistics; what differs is the reading.

    .venv/bin/python tests/bench/monitor_formats.py [--home DIR] [--reps 3]

Without --home a throwaway home is trained first (`kubetfx run`, 100 steps)."""
from __future__ import annotations

import argparse
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
KUBETFX = str(Path(sys.executable).with_name("kubetfx"))
ROWS = 10_000


def _write_formats(root: Path) -> dict:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    import data_formats
    from kubetfx.pipelines.config import EMBEDDED_DATA

    penguins = data_formats.csv_table(EMBEDDED_DATA / "penguins.csv")
    table = pa.concat_tables([penguins] * (ROWS // penguins.num_rows + 1)).slice(0, ROWS)
    (root / "csv").mkdir(parents=True)
    pacsv.write_csv(table, root / "csv" / "part-0.csv")
    data_formats.write_parquet(root / "parquet" / "part-0.parquet", table)
    data_formats.write_tfrecords(root / "tfrecord" / "data_tfrecord-0.gz",
                                 data_formats.penguin_examples(root / "csv" / "part-0.csv"), compress=True)
    return {kind: root / kind for kind in ("csv", "parquet", "tfrecord")}


def _timed(args: list) -> tuple:
    before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    code = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600).returncode
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return code, cpu, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", help="a home whose served model was trained on the penguins (any format)")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubetfx-monitor-formats-") as scratch:
        data = _write_formats(Path(scratch))
        home = args.home
        if home is None:
            home = os.path.join(scratch, "home")
            code = subprocess.run([KUBETFX, "run", "--home", home, "--data", str(data["parquet"]), "--label",
                                   "species", "--train-steps", "100"], stdout=subprocess.DEVNULL).returncode
            assert code == 0, f"the training run failed ({code})"
        found = {kind: [] for kind in data}
        for rep in range(args.reps):
            for kind in (data if rep % 2 == 0 else reversed(list(data))):  # alternated
                load = os.getloadavg()[0]
                code, cpu, wall = _timed([KUBETFX, "monitor", "--home", home, "--data", str(data[kind])])
                assert code in (0, 11), f"monitor on {kind} exited {code}"
                found[kind].append((cpu, wall, load))
                print(f"  {kind:<9} rep {rep + 1}: {cpu:.2f} CPU s, {wall:.2f} s wall, load {load:.1f}", flush=True)
    print(f"| format | {ROWS} rows: CPU s (median) | wall s (median) | load |")
    print("| --- | ---: | ---: | --- |")
    for kind, runs in found.items():
        loads = [r[2] for r in runs]
        print(f"| {kind} | {statistics.median(r[0] for r in runs):.2f} | {statistics.median(r[1] for r in runs):.2f} "
              f"| {min(loads):.1f}-{max(loads):.1f} |")


if __name__ == "__main__":
    main()
