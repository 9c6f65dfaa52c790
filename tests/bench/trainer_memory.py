"""The built-in Trainer alone (trainer_alone.py's inputs: a finished run's outputs under
--home) with its resident memory sampled every 0.2 s (psutil; tracemalloc does not see
TensorFlow's allocations), the peak reported per phase: before the read (TFT's layer
loaded), the read of the splits through the transform graph, training and the save, the
release. Prints one JSON line.

    .venv/bin/python tests/bench/trainer_memory.py --home <wide-1000 run's home> --out /tmp/tm \\
        --config '{"label": "label", "task": "classification"}' [--read-batch 512]
"""
import argparse
import json
import os
import resource
import threading
import time

import psutil

from kubetfx.components.trainer import model
from trainer_alone import fn_args_for  # beside this script (sys.path[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True, help="the run's --home")
    parser.add_argument("--out", required=True, help="where the model goes")
    parser.add_argument("--config", default='{"label": "species", "task": "classification"}')
    parser.add_argument("--read-batch", type=int, help="examples per read batch (model.READ_BATCH)")
    args = parser.parse_args()
    if args.read_batch:
        model.READ_BATCH = args.read_batch
    process, phase, peaks, done = psutil.Process(), ["before the read"], {}, threading.Event()

    def sample():
        while not done.wait(0.2):
            peaks[phase[0]] = max(peaks.get(phase[0], 0), process.memory_info().rss / 2**20)
    threading.Thread(target=sample, daemon=True).start()

    def marked(name, after, function):
        def call(*a, **k):
            phase[0] = name
            try:
                return function(*a, **k)
            finally:
                phase[0] = after
        return call
    # The Trainer's own seams: the two split reads, and the release run_fn ends with.
    model.read_in_memory = marked("read", "training and save", model.read_in_memory)
    model.release_memory = marked("release", "after the release", model.release_memory)
    fn_args = fn_args_for(args.home, args.out, json.loads(args.config))
    started, cpu = time.monotonic(), time.process_time()
    model.run_fn(fn_args)
    time.sleep(0.5)
    done.set()
    print(json.dumps({"read_batch": model.READ_BATCH, "seconds": round(time.monotonic() - started, 1),
                      "cpu_seconds": round(time.process_time() - cpu, 1),
                      "peak_rss_mb_by_phase": {k: round(v) for k, v in peaks.items()},
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "saved_model_pb_mb": round(os.path.getsize(
                          os.path.join(args.out, "serving", "saved_model.pb")) / 2**20, 1),
                      "load_average": os.getloadavg()}))


if __name__ == "__main__":
    main()
