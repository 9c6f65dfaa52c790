"""InfraValidator executor: stock TFX's needs TF Serving in Docker or Kubernetes, neither of
which a laptop without a registry (or a KFP pod without Docker) has. This one starts
kubetfx's model server (TF Serving's REST API, on the stage's own TensorFlow) as a child
process, waits for the model to load, sends canary predict requests built from real
examples, and blesses only a model that loads and answers every one of them."""
from __future__ import annotations

import os
import time
from pathlib import Path

from absl import logging
from tfx.dsl.components.base import base_executor
from tfx.proto import infra_validator_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from kubetfx.components.infra_validator import canary, server_process

MODEL_NAME = "candidate"
LOG_FILE = "model_server.log"


def _parse(exec_properties, key, proto):
    if exec_properties.get(key):
        proto_utils.json_to_proto(exec_properties[key], proto)
    return proto


def _bless(blessing, blessed: bool, reason: str = "") -> None:
    name = "INFRA_BLESSED" if blessed else "INFRA_NOT_BLESSED"
    io_utils.write_string_file(os.path.join(blessing.uri, name), reason)
    blessing.set_int_custom_property("blessed", int(blessed))
    if reason:
        blessing.set_string_custom_property("reason", reason[:1000])


def validate(model_dir: str, examples: list, log_path: Path, max_loading_seconds: float) -> None:
    """Raises CanaryError/ServerStartError unless the model loads and answers."""
    deadline = time.monotonic() + max_loading_seconds
    with server_process.running_server(model_dir, MODEL_NAME, log_path, max_loading_seconds) as (url, process):
        while True:
            available, error = canary.model_status(url, MODEL_NAME)
            if available:
                break
            if error:
                raise canary.CanaryError(f"model server could not load the model: {error}")
            if process.poll() is not None:
                raise canary.CanaryError(f"model server exited with code {process.returncode} before the model loaded")
            if time.monotonic() > deadline:
                raise canary.CanaryError(f"model not loaded within {max_loading_seconds:.0f} s")
            time.sleep(0.1)
        canary.send_canaries(url, MODEL_NAME, examples)


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        examples = artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
        validation = _parse(exec_properties, standard_component_specs.VALIDATION_SPEC_KEY, infra_validator_pb2.ValidationSpec())
        request = _parse(exec_properties, standard_component_specs.REQUEST_SPEC_KEY, infra_validator_pb2.RequestSpec())
        os.makedirs(blessing.uri, exist_ok=True)
        log_path = Path(blessing.uri) / LOG_FILE
        model_dir = path_utils.serving_model_path(model.uri)
        tries = max(validation.num_tries, 1)
        reason = ""
        for attempt in range(1, tries + 1):
            try:
                canaries = canary.read_examples(examples.uri, request.split_name or "eval", request.num_examples or 10)
                validate(model_dir, canaries, log_path, validation.max_loading_time_seconds or 300)
                _bless(blessing, True)
                logging.info("Model answered %d canary requests: infra blessed.", len(canaries))
                return
            except (canary.CanaryError, server_process.ServerStartError, OSError) as err:
                reason = f"attempt {attempt}/{tries}: {err}"
                logging.warning("Infra validation failed (%s); server log: %s", reason, log_path)
        _bless(blessing, False, reason)
        logging.warning("Model NOT infra blessed: %s", reason)
