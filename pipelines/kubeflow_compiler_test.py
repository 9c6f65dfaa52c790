"""The compiled KFP v2 spec: strictly valid, loadable by the KFP SDK, complete (images,
resources, retries, caching, parameters), free of secrets, and equal to the golden file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from kubetfx.pipelines import kubeflow_compiler
from kubetfx.pipelines.config import PipelineConfig

GOLDEN = Path(__file__).parent / "testdata" / "kubetfx-penguin.golden.yaml"
STAGES = {"CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform",
          "Trainer", "Evaluator", "InfraValidator", "Pusher"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = tmp_path_factory.mktemp("build") / "kubetfx-penguin.yaml"
    config = PipelineConfig(home=str(tmp_path_factory.mktemp("home")))
    return kubeflow_compiler.compile_to_file(config, str(path))


@pytest.fixture(scope="module")
def docs(compiled):
    return list(yaml.safe_load_all(compiled.read_text()))


def _container_tasks(spec):
    executors = spec["deploymentSpec"]["executors"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        container = executors[spec["components"][task["componentRef"]["name"]]["executorLabel"]].get("container")
        if container:
            yield name, task, container


def test_spec_parses_strictly_as_a_pipeline_spec(docs):
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    spec = json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())  # unknown fields fail
    assert spec.pipeline_info.name == "kubetfx-penguin"


@pytest.mark.kfp_sdk
def test_kfp_sdk_loads_it_with_the_pipeline_parameters(compiled):
    from kfp import components

    component = components.load_component_from_file(str(compiled))
    assert set(component.component_spec.inputs) == {"data_root", "eval_threshold"}


def test_nine_stage_tasks_each_in_a_kubetfx_image_via_our_entrypoint(docs):
    tasks = dict((n, c) for n, _, c in _container_tasks(docs[0]))
    assert set(tasks) == STAGES
    for name, container in tasks.items():
        expected = kubeflow_compiler.INFRA_VALIDATOR_IMAGE if name == "InfraValidator" else kubeflow_compiler.PIPELINE_IMAGE
        assert container["image"] == expected
        assert container["command"] == kubeflow_compiler.ENTRYPOINT
        assert "{{$}}" in container["args"] and "--artifact_types" in container["args"]


def test_every_task_has_resources_retries_and_caching(docs):
    for name, task, container in _container_tasks(docs[0]):
        resources = container["resources"]
        assert 0 < resources["cpuRequest"] <= resources["cpuLimit"], name
        assert 0 < resources["memoryRequest"] <= resources["memoryLimit"], name
        assert task["retryPolicy"]["maxRetryCount"] >= 1, name
        assert task["cachingOptions"]["enableCache"] is True, name


def test_parameters_use_the_forms_the_oss_driver_reads(docs):
    for name, task, _ in _container_tasks(docs[0]):
        for parameter in task.get("inputs", {}).get("parameters", {}).values():
            assert "constantValue" not in parameter.get("runtimeValue", {}), name
    tasks = docs[0]["root"]["dag"]["tasks"]
    assert tasks["CsvExampleGen"]["inputs"]["parameters"]["kubetfx_data_root"] == {"componentInputParameter": "data_root"}
    assert tasks["Evaluator"]["inputs"]["parameters"]["kubetfx_eval_threshold"] == {"componentInputParameter": "eval_threshold"}
    defaults = docs[0]["root"]["inputDefinitions"]["parameters"]
    assert defaults["eval_threshold"]["defaultValue"] == 0.6
    assert defaults["data_root"]["defaultValue"] == kubeflow_compiler.IMAGE_DATA_ROOT


def test_platform_spec_mounts_the_pipeline_volume_by_name(docs):
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert len(executors) == 9
    for config in executors.values():
        assert config["pvcMount"] == [{"constant": "kubetfx-pipeline-root", "mountPath": "/kubetfx"}]


def test_secrets_are_referenced_by_name_never_included(tmp_path):
    settings = kubeflow_compiler.ClusterSettings(object_store_secret="mlpipeline-minio-artifact")
    spec, platform = kubeflow_compiler.compile_spec(PipelineConfig(home=str(tmp_path)), settings)
    text = json.dumps([spec, platform]).lower()
    first = next(iter(platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()))
    assert first["secretAsEnv"][0]["secretName"] == "mlpipeline-minio-artifact"
    assert "minio123" not in text and "password" not in text and "token" not in text


def test_compiled_spec_matches_the_golden_file(compiled):
    """`make regenerate` refreshes the golden file after an intended change."""
    text = compiled.read_text()
    if os.environ.get("KUBETFX_REGENERATE"):
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), "no golden file: run `make regenerate`"
    assert text == GOLDEN.read_text(), "compiled spec drifted from the golden file: review, then `make regenerate`"
