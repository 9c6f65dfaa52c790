"""Pusher executor: stock TFX pushes by copying file by file into the live serving directory,
so a model server polling it can see a partial model, and it pushes with one blessing
missing. This one requires both blessings and publishes a complete copy with one rename."""
from __future__ import annotations

import hashlib
import os
import time

from absl import logging
from tfx.components.pusher import executor as tfx_pusher
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils
from tfx.proto import pusher_pb2

STAGING_PREFIX = ".staging-"


def next_version(base_directory: str) -> str:
    """A Unix-time version (TF Serving wants integers), later than every existing one."""
    existing = [int(n) for n in os.listdir(base_directory) if n.isdigit()] if os.path.isdir(base_directory) else []
    return str(max([int(time.time())] + [v + 1 for v in existing]))


def _digest(saved_model_dir: str) -> str:
    with open(os.path.join(saved_model_dir, "saved_model.pb"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def latest_version(base_directory: str):
    versions = [n for n in os.listdir(base_directory) if n.isdigit()] if os.path.isdir(base_directory) else []
    return max(versions, key=int) if versions else None


def publish_atomically(model_path: str, base_directory: str) -> tuple[str, str]:
    """Copies the model beside its destination, then renames it into place. A model that
    is already the latest version (a re-run, a retried task) is not pushed twice."""
    os.makedirs(base_directory, exist_ok=True)
    current = latest_version(base_directory)
    if current is not None and _digest(os.path.join(base_directory, current)) == _digest(model_path):
        logging.info("Model already served as version %s; not pushing a duplicate.", current)
        return os.path.join(base_directory, current), current
    version = next_version(base_directory)
    staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}-{os.getpid()}")
    io_utils.copy_dir(model_path, staging)
    final = os.path.join(base_directory, version)
    os.rename(staging, final)  # atomic on one filesystem; fails rather than overwrite a version
    return final, version


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
        model_path = self.GetModelPath(input_dict)
        serving_path, version = publish_atomically(model_path, destination.filesystem.base_directory)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        logging.info("Model pushed to %s (version %s).", serving_path, version)
