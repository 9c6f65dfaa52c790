"""Pusher executor: stock TFX copies file by file into the live serving directory (a model
server polling it can load a partial model) and pushes with one blessing missing. This
one requires both blessings and publishes a complete copy as a new version
(`serving_dir.publish`: one rename on a local path, saved_model.pb last on an object
store), through tf.io.gfile, so the serving directory may be a bucket as in TFX.

What it keeps of TFX's contract (tfx 1.16 tfx/components/pusher/executor.py, checked by
tests/tfx_contract/test_pusher_contract.py): the PushedModel artifact holds a copy of the
model and the `pushed`, `pushed_destination` and `pushed_version` properties; versions are
Unix-time integers; a model can come from the InfraBlessing (`GetModelPath`).

What it adds: with its optional `schema` and `statistics` inputs (component.py), each
version carries the schema and training statistics it was trained on
(training_summary.py), for `kubetfx monitor` where no ML Metadata is. A `serving_dir`
exec property, when set, is the directory it publishes to instead of push_destination's:
the compiled spec wires it to the pipeline parameter of that name
(pipelines/kubeflow/compiler.py wire_serving_dir), so a run can choose where it pushes.
With the summary, each version also holds an ONNX copy of the network when it converts
(onnx_export.py); the outcome is the PushedModel's `onnx_export` property, and a failure
never stops the push."""
from __future__ import annotations

import json

from absl import logging
from tfx.components.pusher import executor as tfx_pusher
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from kubetfx.components.pusher import onnx_export, serving_dir, training_summary
from kubetfx.components.pusher.serving_dir import STAGING_PREFIX  # noqa: F401 (pipelines/run/recovery.py)


SCHEMA_KEY = "schema"
STATISTICS_KEY = "statistics"
SERVING_DIR_KEY = "serving_dir"  # the same name as ServedBaseline's


def summary_files(input_dict, exec_properties) -> dict:
    """The training summary to publish with the model; {} without schema and statistics
    inputs (TFX's own Pusher graph, its contract tests)."""
    schema, statistics = input_dict.get(SCHEMA_KEY), input_dict.get(STATISTICS_KEY)
    if not (schema and statistics):
        return {}
    custom = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null") or {}
    statistics = artifact_utils.get_single_instance(statistics)
    # Both blessings are true here (CheckBlessing); written down so that a serving volume
    # read without ML Metadata (`kubetfx models --serving-dir`) still says so.
    record = {"label": custom.get("label"), "task": custom.get("task"), "span": statistics.span,
              "column_roles": custom.get("column_roles") or {}, "blessed": True, "infra_blessed": True}
    return training_summary.files(artifact_utils.get_single_uri(schema), statistics.uri, record)


class AtomicPusherExecutor(tfx_pusher.Executor):

    def CheckBlessing(self, input_dict) -> bool:
        for key in (standard_component_specs.MODEL_BLESSING_KEY, standard_component_specs.INFRA_BLESSING_KEY):
            if not input_dict.get(key):
                logging.warning("Not pushing: input %s is missing; both blessings are required.", key)
                return False
        return super().CheckBlessing(input_dict)

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"Invalid push destination {destination.WhichOneof('destination')}")
        model_path = self.GetModelPath(input_dict)
        base_directory = exec_properties.get(SERVING_DIR_KEY) or destination.filesystem.base_directory
        extra_files = summary_files(input_dict, exec_properties)
        if extra_files:  # kubetfx's graph; TFX's own gets a version of the model's files only, as in TFX
            onnx_files, onnx_outcome = onnx_export.export(model_path)
            extra_files.update(onnx_files)
            model_push.set_string_custom_property(onnx_export.OUTCOME_PROPERTY, onnx_outcome)
        serving_path, version, pushed = serving_dir.publish(model_path, base_directory, extra_files)
        if not pushed:
            logging.info("Model already served as version %s (same files, byte for byte); no new version.", version)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        logging.info("Model pushed to %s (version %s).", serving_path, version)
