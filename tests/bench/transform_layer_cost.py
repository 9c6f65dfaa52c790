"""What the Trainer pays to use a finished run's transform graph, apart from the data: CPU
seconds to load TFT's TransformFeaturesLayer and to trace two applications of it on parsed
examples (each application of a TF1 transform graph prunes and copies the whole graph,
tensorflow_transform 1.16 saved_transform_io_v2), the graph's op count and the process's
peak RSS. One JSON line. For wide tables (docs/performance.md, 1,000 columns).

    .venv/bin/python tests/bench/transform_layer_cost.py HOME
"""
import glob
import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tensorflow_transform as tft  # noqa: E402


def main(home: str) -> None:
    graphs = sorted(glob.glob(os.path.join(home, "pipelines", "*", "Transform", "transform_graph", "*")))
    if not graphs:
        raise SystemExit(f"no transform graph under {home}/pipelines: run the pipeline first")
    output = tft.TFTransformOutput(graphs[-1])
    spec = output.raw_feature_spec()
    started = time.process_time()
    layer = output.transform_features_layer()
    load = time.process_time() - started
    applications = []
    for _ in range(2):
        started = time.process_time()
        tf.function(lambda s: layer(tf.io.parse_example(s, spec))).get_concrete_function(
            tf.TensorSpec([None], tf.string))
        applications.append(round(time.process_time() - started, 1))
    loader = getattr(layer, "_saved_model_loader", None)
    print(json.dumps({"ops_in_transform_graph": len(loader._func_graph.get_operations()) if loader else None,
                      "load_cpu_s": round(load, 1), "apply_cpu_s": applications,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


if __name__ == "__main__":
    main(sys.argv[1])
