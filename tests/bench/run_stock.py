"""One run of TFX's own penguin example (8 nodes, in-process Beam) in this process; prints
a JSON line with its peak RSS (bench.py times the process). Invoked by bench.py as a subprocess."""
import json
import os
import resource
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import logging  # noqa: E402
from tfx import v1 as tfx  # noqa: E402
from tfx.examples.penguin import penguin_pipeline_local, penguin_utils_keras  # noqa: E402

logging.set_verbosity(logging.WARNING)
data_root, root = sys.argv[1], sys.argv[2]
tfx.orchestration.LocalDagRunner().run(penguin_pipeline_local.create_pipeline(
    pipeline_name="penguin-stock", pipeline_root=os.path.join(root, "pipeline"), data_root=data_root,
    module_file=penguin_utils_keras.__file__.replace(".pyc", ".py"), accuracy_threshold=0.6,
    serving_model_dir=os.path.join(root, "serving"), metadata_path=os.path.join(root, "metadata.sqlite"),
    user_provided_schema_path=None, enable_tuning=False, enable_bulk_inferrer=False, enable_example_diff=False,
    examplegen_input_config=None, examplegen_range_config_date=None, resolver_range_config=None,
    beam_pipeline_args=["--direct_running_mode=in_memory", "--direct_num_workers=1"],
    enable_transform_input_cache=False))
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
