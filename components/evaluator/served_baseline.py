"""The Evaluator's baseline: the model the Pusher serves now, as a TFX Model artifact.

Why not TFX's Resolver (LatestBlessedModelStrategy): compiled for Kubeflow it becomes two
`resolver` executors, a Vertex-only feature; open-source KFP refuses them at run creation
(KFP 2.5.0 backend/src/v2/compiler/visitor.go: "non-container and non-importer executor
not implemented"). This is an ordinary component, so the local runner and KFP run the
same code with the same meaning.

What it reads: the Pusher's serving directory, where the highest complete version (the
rule of components/serving/valid_version.py, which the model server follows too: a torn
copy beside it is skipped, never made the baseline) is the model that was blessed (Evaluator and InfraValidator) and pushed (TF Serving's layout,
components/pusher/executor.py writes it). That version is copied into the output Model in
TFX's layout (`<uri>/Format-Serving/`). Which directory: its `serving_dir` exec property;
in the compiled spec the pipeline parameter `serving_dir` (pipelines/kubeflow/compiler.py
wire_serving_dir), the one the Pusher publishes to, so a runner without the serving volume
(kfp.local) points both elsewhere. With nothing served yet the Model is left empty
(one note file, so the directory exists in every object store) and our Evaluator executor
treats a Model without a SavedModel as "no baseline".

It takes the candidate model as an input only for ordering and caching: it runs after the
Trainer and its cache key (KFP: input artifact ids + parameters, v2/cacheutils/cache.go;
TFX: input artifacts + exec properties) changes whenever a new model is trained. What is
served can change while the candidate does not (a push by another run, a rollback, a new
threshold re-evaluating a cached Trainer's model): locally the version served when the
pipeline is built is an exec property (`served_version`, part of TFX's cache key only);
on KFP, where no one can read the serving volume at compile or submit time, the compiler
turns caching off for this task (kubeflow_compiler), so the Evaluator and Pusher after it
re-run too (seconds; the Pusher publishes no duplicate version)."""
from __future__ import annotations

import os

from absl import logging
from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter
from tfx.utils import io_utils, path_utils

from kubetfx.components.serving.rollout_state import serving_version as latest_version

NODE_ID = "ServedBaseline"
SERVING_DIR_KEY = "serving_dir"
CANDIDATE_KEY = "model"
BASELINE_KEY = "baseline_model"
SERVED_VERSION_PROPERTY = "served_version"
SERVED_AT_BUILD_KEY = "served_version"
NOTHING_SERVED_FILE = "NOTHING_SERVED"


def has_saved_model(model: types.Artifact) -> bool:
    """False for the empty baseline written when nothing is served yet."""
    path = path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model))
    return os.path.exists(os.path.join(path, "saved_model.pb"))


def copy_served_model(serving_dir: str, baseline: types.Artifact):
    """Copies the highest served version into `baseline`; returns the version or None."""
    version = latest_version(serving_dir)
    if version is None:
        io_utils.write_string_file(os.path.join(baseline.uri, NOTHING_SERVED_FILE),
                                   f"no model version under {serving_dir}: no baseline\n")
        return None
    io_utils.copy_dir(os.path.join(serving_dir, version), path_utils.serving_model_dir(baseline.uri))
    baseline.set_string_custom_property(SERVED_VERSION_PROPERTY, version)
    return version


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        serving_dir = exec_properties[SERVING_DIR_KEY]
        baseline = artifact_utils.get_single_instance(output_dict[BASELINE_KEY])
        version = copy_served_model(serving_dir, baseline)
        if version is None:
            logging.info("ServedBaseline: nothing served under %s yet; no baseline", serving_dir)
        else:
            logging.info("ServedBaseline: version %s of %s", version, serving_dir)


class ServedBaselineSpec(types.ComponentSpec):
    PARAMETERS = {SERVING_DIR_KEY: ExecutionParameter(type=str),
                  SERVED_AT_BUILD_KEY: ExecutionParameter(type=str, optional=True)}
    INPUTS = {CANDIDATE_KEY: ChannelParameter(type=standard_artifacts.Model)}
    OUTPUTS = {BASELINE_KEY: ChannelParameter(type=standard_artifacts.Model)}


class ServedBaseline(base_component.BaseComponent):
    """The served model (or an empty Model) for the Evaluator's `baseline_model`."""
    SPEC_CLASS = ServedBaselineSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel, serving_dir: str, served_version: str = ""):
        super().__init__(spec=ServedBaselineSpec(
            model=model, serving_dir=serving_dir, served_version=served_version or None,
            baseline_model=types.Channel(type=standard_artifacts.Model)))


def build(config, trainer) -> ServedBaseline:
    # What is served now, read where the pipeline is built: a change of it changes the local
    # cache key (the executor reads the directory again when it runs). A re-run of the build
    # that pushed it gets that build's value in the config (pipelines/record/served_build.py), so its
    # own push does not make the same run look new.
    served = config.served_baseline_version
    if served is None:
        served = latest_version(str(config.serving_dir)) if os.path.isdir(config.serving_dir) else None
    return ServedBaseline(model=trainer.outputs["model"], serving_dir=str(config.serving_dir),
                          served_version=served or "").with_id(NODE_ID)
