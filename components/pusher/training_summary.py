"""What each pushed version was trained on, kept beside it: the schema and the training
split's statistics, so `kubetfx monitor` can judge new data against the served model where
no ML Metadata of the pipeline is at hand (a pod mounting the serving volume; KFP's MLMD
is behind its own gRPC service).

Where: `<version>/assets.extra/kubetfx/` —
    schema.pbtxt                               the Trainer's schema, as SchemaGen wrote it
    statistics/Split-train/FeatureStats.pb     StatisticsGen's train split (TFX's layout)
    training.json                              label, task, span, where the two came from,
                                               both blessings

Why there: TF Serving reads nothing under `assets.extra/` but its warmup file
(tensorflow/serving tensorflow_serving/servables/tensorflow/saved_model_warmup.h
RunSavedModelWarmup: only `assets.extra/tf_serving_warmup_requests`; TensorFlow's
SavedModel loader reads saved_model.pb, variables/ and assets/),
and a version directory is published, copied by a rollback and deleted as a whole, so the
summary travels with its model. It is not part of the model: the Pusher's "same model
already served" comparison leaves it out (serving_dir.same_model)."""
from __future__ import annotations

import json
import os

import tensorflow as tf

DIRECTORY = "assets.extra/kubetfx"
SCHEMA_FILE = "schema.pbtxt"
STATISTICS_DIR = "statistics"
TRAIN_SPLIT = "train"
# TFX 1.16 tfx/components/statistics_gen/stats_artifact_utils.py BINARY_PB_BASENAME
STATISTICS_FILE = f"{STATISTICS_DIR}/Split-{TRAIN_SPLIT}/FeatureStats.pb"
RECORD_FILE = "training.json"
gfile = tf.io.gfile


def is_summary_path(relative: str) -> bool:
    """A path (relative to a version directory) of this summary, not of the model."""
    return relative == DIRECTORY or relative.startswith(DIRECTORY + "/")


def _read(path: str) -> bytes:
    with gfile.GFile(path, "rb") as f:
        return f.read()


def schema_file(schema_uri: str) -> str:
    """The one schema file of a Schema artifact (SchemaGen and ImportSchemaGen: schema.pbtxt)."""
    names = [n for n in gfile.listdir(schema_uri) if not n.endswith("/")]
    if SCHEMA_FILE in names:
        return os.path.join(schema_uri, SCHEMA_FILE)
    if len(names) != 1:
        raise ValueError(f"Schema artifact {schema_uri} holds {names}, expected one {SCHEMA_FILE}")
    return os.path.join(schema_uri, names[0])


def files(schema_uri: str, statistics_uri: str, record: dict) -> dict:
    """{path relative to the version directory: bytes} of the summary, from the Schema and
    ExampleStatistics artifacts' directories."""
    statistics = os.path.join(statistics_uri, f"Split-{TRAIN_SPLIT}", "FeatureStats.pb")
    if not gfile.exists(statistics):
        raise ValueError(f"no training-split statistics at {statistics}")
    record = {**record, "schema_uri": schema_uri, "statistics_uri": statistics_uri}
    return {f"{DIRECTORY}/{SCHEMA_FILE}": _read(schema_file(schema_uri)),
            f"{DIRECTORY}/{STATISTICS_FILE}": _read(statistics),
            f"{DIRECTORY}/{RECORD_FILE}": (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()}


def location(version_dir: str) -> str:
    return os.path.join(version_dir, *DIRECTORY.split("/"))


def read_record(version_dir: str) -> dict | None:
    """training.json of a version; None when the version has no complete summary (pushed
    by a kubetfx before this one, or by another tool)."""
    where = location(version_dir)
    needed = [os.path.join(where, RECORD_FILE), os.path.join(where, SCHEMA_FILE),
              os.path.join(where, *STATISTICS_FILE.split("/"))]
    if not all(gfile.exists(p) for p in needed):
        return None
    try:
        return json.loads(_read(needed[0]))
    except ValueError:
        return None
