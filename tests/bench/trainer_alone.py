"""The built-in Trainer's run_fn alone, on a finished run's ExampleGen, SchemaGen and
Transform outputs (the latest of each under --home): the Trainer's time and memory without
re-running the stages before it. Prints one JSON line: seconds, CPU seconds, the process's
peak RSS and the run's training.json.

    .venv/bin/python tests/bench/trainer_alone.py --home .kubetfx --out /tmp/trainer \\
        --config '{"label": "species", "task": "classification"}'
"""
import argparse
import json
import os
import resource
import time

from tfx.components.trainer import fn_args_utils
from tfx.types import artifact_utils, standard_artifacts

from kubetfx.components.trainer import model
from latest_outputs import latest  # beside this script (sys.path[0])


def fn_args_for(home: str, out: str, config: dict):
    examples = standard_artifacts.Examples()
    examples.uri = latest(home, "*ExampleGen/examples/*")
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    examples.set_string_custom_property("payload_format", "FORMAT_TF_EXAMPLE")
    graph = standard_artifacts.TransformGraph()
    graph.uri = latest(home, "Transform/transform_graph/*")
    schema = standard_artifacts.Schema()
    schema.uri = latest(home, "*SchemaGen/schema/*")
    fn_args = fn_args_utils.get_common_fn_args(
        {"examples": [examples], "transform_graph": [graph], "schema": [schema]},
        {"train_args": "{}", "eval_args": "{}"})
    fn_args.transform_output = fn_args.transform_graph_path
    fn_args.serving_model_dir = os.path.join(out, "serving")
    fn_args.model_run_dir = os.path.join(out, "run")
    fn_args.custom_config = config
    return fn_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--home", required=True, help="the run's --home")
    parser.add_argument("--out", required=True, help="where the model goes")
    parser.add_argument("--config", default='{"label": "species", "task": "classification"}',
                        help="the Trainer's custom_config as JSON (label, task, batch_size, ...)")
    args = parser.parse_args()
    fn_args = fn_args_for(args.home, args.out, json.loads(args.config))
    started, cpu = time.monotonic(), time.process_time()
    model.run_fn(fn_args)
    with open(os.path.join(args.out, "run", model.TRAINING_RECORD)) as f:
        record = json.load(f)
    print(json.dumps({"seconds": round(time.monotonic() - started, 1),
                      "cpu_seconds": round(time.process_time() - cpu, 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                      "record": record}))


if __name__ == "__main__":
    main()
