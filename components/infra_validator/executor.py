"""InfraValidator executor: stock TFX's needs TF Serving in Docker or Kubernetes, neither of
which a laptop without a registry (or a KFP pod without Docker) has. This one starts
kubetfx's model server (TF Serving's REST API, on the stage's own TensorFlow) as a child
process, waits for the model to load, sends canary predict requests built from real
examples, and blesses only a model that loads and answers every one of them.

It is TFX's executor with another model server: it subclasses TFX 1.16's
(tfx/components/infra_validator/executor.py) and keeps its seams, so TFX's own executor
tests run against it (tests/tfx_contract): `Do` installs TFX's SIGTERM handler (SIGTERM
raises GracefulShutdown, which stops the server), `_ValidateWithRetry` makes num_tries
attempts of `_ValidateOnce(model_path, serving_binary, serving_spec, validation_spec,
requests)`, which drives a runner from this module's `_create_model_server_runner` and a
client from `serving_binary.MakeClient(endpoint)`, as TFX's does. What differs: the binary
is kubetfx's model server (ModelServerBinary) and the runner a child process
(ModelServerRunner), not TF Serving in Docker/Kubernetes; requests are serialized
tf.Examples sent over REST, not TFX's gRPC request protos; a failure's reason is kept in
the blessing."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from absl import logging
from tfx.components.infra_validator import error_types
from tfx.components.infra_validator import executor as tfx_executor
from tfx.components.infra_validator import request_builder
from tfx.proto import infra_validator_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, path_utils, proto_utils

from kubetfx.components import upstream_seams
from kubetfx.components.infra_validator import canary, server_process

MODEL_NAME = server_process.CANDIDATE_MODEL_NAME
LOG_FILE = "model_server.log"
LOG_TAIL_BYTES = 20_000


def _parse(exec_properties, key, proto):
    if exec_properties.get(key):
        proto_utils.json_to_proto(exec_properties[key], proto)
    return proto


def _bless(blessing, blessed: bool, reason: str = "") -> None:
    # TFX 1.16 executor.py _mark_blessed/_mark_not_blessed, plus the reason.
    name = "INFRA_BLESSED" if blessed else "INFRA_NOT_BLESSED"
    io_utils.write_string_file(os.path.join(blessing.uri, name), reason)
    blessing.set_int_custom_property("blessed", int(blessed))
    if reason:
        blessing.set_string_custom_property("reason", reason[:1000])


def serialized_examples(request) -> list[bytes]:
    """The serialized tf.Examples a TFX request proto carries: a PredictRequest's single
    string input (request_builder._BuildPredictRequests), or a Classification/
    RegressionRequest's example list."""
    if request.DESCRIPTOR.name == "PredictRequest":
        (tensor,) = request.inputs.values()
        return list(tensor.string_val)
    return [e.SerializeToString() for e in request.input.example_list.examples]


class ModelServerClient:
    """TFX's BaseModelServerClient contract (WaitUntilModelLoaded, SendRequests) over TF
    Serving's REST API; `requests` are TFX's request protos (request_builder.py)."""

    def __init__(self, endpoint: str, model_name: str, runner: "ModelServerRunner | None" = None):
        self._url, self._model_name, self._runner = endpoint, model_name, runner

    def WaitUntilModelLoaded(self, deadline: float, polling_interval_sec: float = 0.1) -> None:
        while True:
            available, error = canary.model_status(self._url, self._model_name)
            if available:
                return
            if error:
                raise canary.CanaryError(f"model server could not load the model: {error}")
            process = self._runner.process if self._runner else None
            if process is not None and process.poll() is not None:
                raise canary.CanaryError(f"model server exited with code {process.returncode} before the model loaded")
            if time.time() > deadline:
                raise error_types.DeadlineExceeded(f"model not loaded within the deadline "
                                                   "(ValidationSpec.max_loading_time_seconds)")
            time.sleep(min(polling_interval_sec, 0.1))

    def SendRequests(self, requests: list) -> None:
        """One REST predict call per signature with every request's examples (TFX sends one
        gRPC call per request): each example must get its own prediction."""
        by_signature: dict[str, list[bytes]] = {}
        for request in requests:
            by_signature.setdefault(request.model_spec.signature_name or "serving_default", []).extend(
                serialized_examples(request))
        for signature, examples in by_signature.items():
            canary.send_canaries(self._url, self._model_name, examples, signature)


class ModelServerBinary:
    """Stands where TFX's serving_bins.TensorFlowServing stands: names the model and makes
    the client; the runner registers itself so the client can see the server die."""

    def __init__(self, model_name: str, log_path: Path):
        self.model_name, self.log_path = model_name, log_path
        self.runner: ModelServerRunner | None = None

    def MakeClient(self, endpoint: str) -> ModelServerClient:
        return ModelServerClient(endpoint, self.model_name, self.runner)


class ModelServerRunner:
    """TFX's BaseModelServerRunner contract (Start, WaitUntilRunning, GetEndpoint, GetLogs,
    Stop) for kubetfx's model server in a child process (server_process.py)."""

    def __init__(self, model_path: str, serving_binary: ModelServerBinary):
        self._model_path, self._binary = model_path, serving_binary
        self._stack = contextlib.ExitStack()
        self._endpoint = ""
        self.process = None

    def __repr__(self):
        return f"ModelServerRunner(model_path={self._model_path!r})"

    def Start(self) -> None:
        self._binary.runner = self

    def WaitUntilRunning(self, deadline: float) -> None:
        self._endpoint, self.process = self._stack.enter_context(server_process.running_server(
            self._model_path, self._binary.model_name, self._binary.log_path, max(deadline - time.time(), 1)))

    def GetEndpoint(self) -> str:
        return self._endpoint

    def GetLogs(self) -> str | None:
        try:
            with open(self._binary.log_path, "rb") as log:
                log.seek(max(os.path.getsize(self._binary.log_path) - LOG_TAIL_BYTES, 0))
                return log.read().decode(errors="replace") or None
        except OSError:
            return None

    def Stop(self) -> None:
        self._stack.close()
        self._binary.runner = None


def _create_model_server_runner(model_path: str, serving_binary, serving_spec) -> ModelServerRunner:
    """TFX 1.16 executor.py _create_model_server_runner: ours whatever the ServingSpec's
    platform says (local_docker or kubernetes name where TF Serving runs in production)."""
    del serving_spec  # The platform is always a child process of the stage.
    return ModelServerRunner(model_path, serving_binary)


class Executor(tfx_executor.Executor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        # TFX 1.16 executor.py Executor.Do, with a serving_spec optional (ours needs none).
        self._log_startup(input_dict, output_dict, exec_properties)
        blessing = artifact_utils.get_single_instance(output_dict[standard_component_specs.BLESSING_KEY])
        model = artifact_utils.get_single_instance(input_dict[standard_component_specs.MODEL_KEY])
        examples = (artifact_utils.get_single_instance(input_dict[standard_component_specs.EXAMPLES_KEY])
                    if input_dict.get(standard_component_specs.EXAMPLES_KEY) else None)
        serving_spec = _parse(exec_properties, standard_component_specs.SERVING_SPEC_KEY, infra_validator_pb2.ServingSpec())
        validation_spec = _parse(exec_properties, standard_component_specs.VALIDATION_SPEC_KEY,
                                 infra_validator_pb2.ValidationSpec())
        defaults = upstream_seams.tfx_infra_validator_defaults()
        validation_spec.num_tries = validation_spec.num_tries or defaults.num_tries
        validation_spec.max_loading_time_seconds = (validation_spec.max_loading_time_seconds
                                                    or defaults.max_loading_time_sec)
        request_spec = (_parse(exec_properties, standard_component_specs.REQUEST_SPEC_KEY, infra_validator_pb2.RequestSpec())
                        if exec_properties.get(standard_component_specs.REQUEST_SPEC_KEY) else None)
        # SIGTERM raises GracefulShutdown, whose unwinding stops the model server; a
        # SIGKILL'ed stage's server stops on its own (server_process.py, --parent_pid).
        with self._InstallGracefulShutdownHandler():
            self._Do(model=model, examples=examples, blessing=blessing, serving_spec=serving_spec,
                     validation_spec=validation_spec, request_spec=request_spec)

    def _Do(self, model, examples, blessing, serving_spec, validation_spec, request_spec) -> None:
        # TFX 1.16 executor.py Executor._Do: LOAD_AND_QUERY with examples and a request
        # spec, LOAD_ONLY otherwise; bless when every attempt series passes; warm up.
        os.makedirs(blessing.uri, exist_ok=True)
        requests, request_error = [], ""
        if examples is not None and request_spec is not None:
            # TFX's request protos (the warmup file holds them); sent over REST by the client.
            try:
                requests = request_builder.build_requests(model_name=MODEL_NAME, model=model, examples=examples,
                                                          request_spec=request_spec)
            except Exception as err:  # pylint: disable=broad-except
                # TFX's executor fails the run here; ours refuses the model, after a
                # LOAD_ONLY attempt so that a model that cannot load says why (server log).
                request_error = f"no canary requests from the model's signatures and the examples: {err}"
        model_path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
        binary = ModelServerBinary(MODEL_NAME, Path(blessing.uri) / LOG_FILE)
        self._last_error = ""
        passed = self._ValidateWithRetry(model_path=model_path, serving_binary=binary, serving_spec=serving_spec,
                                         validation_spec=validation_spec, requests=requests)
        if passed and request_error:
            passed, self._last_error = False, request_error
        if passed:
            _bless(blessing, True)
            logging.info("Model answered %d canary requests: infra blessed.", len(requests))
            if requests and request_spec.make_warmup:
                # TFX's: a copy of the model with assets.extra/tf_serving_warmup_requests
                # in the blessing, and has_model=1, so TFX's Pusher pushes that copy.
                self._CreateWarmupModel(blessing, model_path, warmup_requests=requests)
        else:
            _bless(blessing, False, self._last_error)
            logging.warning("Model NOT infra blessed: %s", self._last_error)

    def _ValidateWithRetry(self, model_path, serving_binary, serving_spec, validation_spec, requests) -> bool:
        # TFX 1.16 executor.py Executor._ValidateWithRetry, keeping the last failure's reason.
        tries = validation_spec.num_tries
        for attempt in range(1, tries + 1):
            try:
                self._ValidateOnce(model_path=model_path, serving_binary=serving_binary, serving_spec=serving_spec,
                                   validation_spec=validation_spec, requests=requests)
            except error_types.GracefulShutdown:
                raise
            except Exception as err:  # pylint: disable=broad-except  (any failure is a refusal, as in TFX)
                self._last_error = f"attempt {attempt}/{tries}: {err}"
                logging.warning("Infra validation failed (%s); server log: %s", self._last_error,
                                getattr(serving_binary, "log_path", "-"))
            else:
                return True
        return False

    def _ValidateOnce(self, model_path, serving_binary, serving_spec, validation_spec, requests) -> None:
        # TFX 1.16 executor.py Executor._ValidateOnce, with this module's runner factory.
        deadline = time.time() + validation_spec.max_loading_time_seconds
        runner = _create_model_server_runner(model_path=model_path, serving_binary=serving_binary,
                                             serving_spec=serving_spec)
        try:
            runner.Start()
            runner.WaitUntilRunning(deadline)
            client = serving_binary.MakeClient(runner.GetEndpoint())
            client.WaitUntilModelLoaded(deadline, polling_interval_sec=upstream_seams.tfx_infra_validator_defaults().polling_interval_sec)
            if requests:
                client.SendRequests(requests)
        finally:
            runner.Stop()
