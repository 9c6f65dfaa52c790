"""What the Evaluator's gate adds (components/evaluator/gate.py): counting the labelled eval
rows for the change-tolerance floor (every run with a served model, both paths) and the
labelled-only copy TFMA's general path gets when some eval rows lack a label. On a
synthetic eval split of --rows rows (1 in 20 without a label); wall and CPU seconds, best
of --reps, one JSON line with the load average.

    .venv/bin/python tests/bench/gate_cost.py --rows 100000 --reps 3
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/: testing_models
from testing_models import PENGUIN_CLASSES, write_gate_examples  # noqa: E402

from kubetfx.components.evaluator import gate  # noqa: E402


def _timed(function, reps: int) -> dict:
    runs = []
    for _ in range(reps):
        wall, cpu = time.monotonic(), time.process_time()
        function()
        runs.append((time.monotonic() - wall, time.process_time() - cpu))
    best = min(runs)
    return {"seconds": round(best[0], 3), "cpu_seconds": round(best[1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        rows = [(i / args.rows, 4000.0, None if i % 20 == 0 else PENGUIN_CLASSES[i % 3]) for i in range(args.rows)]
        examples = write_gate_examples(Path(root), {"eval": rows})
        split = os.path.join(examples.uri, "Split-eval")
        files = [os.path.join(split, name) for name in os.listdir(split)]
        out = os.path.join(root, "copy")
        os.makedirs(out)
        result = {
            "rows": args.rows,
            # change_tolerance 0.01: counting stops at 101 labelled rows
            "count_for_floor": _timed(lambda: gate.count_labelled(files, "GZIP", "species", 101), args.reps),
            "count_whole_split": _timed(lambda: gate.count_labelled(files, "GZIP", "species"), args.reps),
            "labelled_copy_tfma_path": _timed(lambda: gate.labelled_copy(files, "GZIP", "species", out), args.reps),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
