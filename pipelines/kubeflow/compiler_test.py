"""The compiled KFP v2 spec: strictly valid, loadable by the KFP SDK, complete (images,
resources, retries, caching, parameters), free of secrets, and equal to the golden file."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from kubetfx.pipelines.kubeflow import compiler as kubeflow_compiler
from kubetfx.pipelines.config import PipelineConfig
from kubetfx.pipelines.run import inputs

GOLDEN = Path(__file__).parent.parent / "testdata" / "kubetfx-penguin.golden.yaml"
STAGES = {"CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform",
          "Trainer", "ServedBaseline", "Evaluator", "InfraValidator", "Pusher"}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    path = tmp_path_factory.mktemp("build") / "kubetfx-penguin.yaml"
    config = PipelineConfig(home=str(tmp_path_factory.mktemp("home")))
    return kubeflow_compiler.compile_to_file(config, str(path), prepare=inputs.prepare)


@pytest.fixture(scope="module")
def docs(compiled):
    return list(yaml.safe_load_all(compiled.read_text()))


def _container_tasks(spec):
    """The stages' tasks (the data-fingerprint task is not a TFX stage: tested on its own)."""
    executors = spec["deploymentSpec"]["executors"]
    for name, task in spec["root"]["dag"]["tasks"].items():
        if name == "data-fingerprint":
            continue
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
    assert set(component.component_spec.inputs) == {"data_root", "eval_threshold", "serving_dir"}


def test_the_backend_accepts_it_at_upload_and_run_creation(compiled):
    from kubetfx.pipelines.kubeflow import backend_rules

    spec, platform = backend_rules.check_upload(compiled.read_text())
    assert platform is not None  # parsed strictly, so the apiserver keeps it
    backend_rules.check_run(spec, platform, {})
    kinds = {next(iter(e)) for e in next(yaml.safe_load_all(compiled.read_text()))["deploymentSpec"]["executors"].values()}
    assert kinds == {"container", "importer"}


def test_with_tune_the_tuner_task_feeds_the_trainer_and_the_backend_accepts_it(tmp_path):
    from kubetfx.pipelines.kubeflow import backend_rules

    config = PipelineConfig(home=str(tmp_path / "home"), tune=True)
    path = kubeflow_compiler.compile_to_file(config, str(tmp_path / "tuned.yaml"), prepare=inputs.prepare)
    spec, platform = backend_rules.check_upload(path.read_text())
    backend_rules.check_run(spec, platform, {})
    tasks = next(yaml.safe_load_all(path.read_text()))["root"]["dag"]["tasks"]
    hyperparameters = tasks["Trainer"]["inputs"]["artifacts"]["hyperparameters"]["taskOutputArtifact"]
    assert hyperparameters == {"producerTask": "Tuner", "outputArtifactKey": "best_hyperparameters"}


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
        # ServedBaseline reads the serving volume, which KFP's cache key cannot see.
        assert task["cachingOptions"]["enableCache"] is (name != "ServedBaseline"), name


def test_parameters_use_the_forms_the_oss_driver_reads(docs):
    for name, task, _ in _container_tasks(docs[0]):
        for parameter in task.get("inputs", {}).get("parameters", {}).values():
            assert "constantValue" not in parameter.get("runtimeValue", {}), name
            assert parameter.get("runtimeValue", {}).get("constant") != "null", name  # unset is left out
    defaults = docs[0]["root"]["inputDefinitions"]["parameters"]
    assert defaults["data_root"]["defaultValue"] == "minio://mlpipeline/kubetfx/data/kubetfx-penguin/"
    assert "data_fingerprint" not in defaults  # taken by the run when it starts, never given


def test_the_data_is_an_importer_task_feeding_example_gen_with_its_fingerprint(docs):
    spec = docs[0]
    tasks = spec["root"]["dag"]["tasks"]
    importer = spec["deploymentSpec"]["executors"][spec["components"][tasks["data"]["componentRef"]["name"]][
        "executorLabel"]]["importer"]
    assert importer == {"artifactUri": {"runtimeParameter": "uri"},
                        "typeSchema": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"}}
    assert tasks["data"]["inputs"]["parameters"]["uri"] == {"componentInputParameter": "data_root"}
    example_gen = tasks["CsvExampleGen"]["inputs"]
    assert example_gen["artifacts"]["kubetfx_data"] == {
        "taskOutputArtifact": {"producerTask": "data", "outputArtifactKey": "artifact"}}
    assert example_gen["parameters"]["kubetfx_data_fingerprint"] == {"taskOutputParameter": {
        "producerTask": "data-fingerprint", "outputParameterKey": "fingerprint"}}
    assert example_gen["parameters"]["input_base"] == {"componentInputParameter": "data_root"}
    assert {"data", "data-fingerprint"} <= set(tasks["CsvExampleGen"]["dependentTasks"])


def test_the_data_fingerprint_is_taken_when_the_run_starts_and_never_cached(docs):
    spec = docs[0]
    task = spec["root"]["dag"]["tasks"]["data-fingerprint"]
    assert task["cachingOptions"] == {"enableCache": False}
    assert task["inputs"]["artifacts"]["data"] == {
        "taskOutputArtifact": {"producerTask": "data", "outputArtifactKey": "artifact"}}
    container = spec["deploymentSpec"]["executors"]["exec-data-fingerprint"]["container"]
    assert container["command"] == ["python", "-m", "kubetfx.components.container.data_fingerprint"]
    assert container["image"] == kubeflow_compiler.PIPELINE_IMAGE
    assert "{{$.inputs.artifacts['data'].path}}" in container["args"]
    assert "{{$.outputs.parameters['fingerprint'].output_file}}" in container["args"]


def test_the_threshold_parameter_is_the_only_bound_in_the_spec(docs):
    tasks = docs[0]["root"]["dag"]["tasks"]
    assert tasks["Evaluator"]["inputs"]["parameters"]["kubetfx_eval_threshold"] == {
        "componentInputParameter": "eval_threshold"}
    assert docs[0]["root"]["inputDefinitions"]["parameters"]["eval_threshold"]["defaultValue"] == 0.6
    eval_config = json.loads(tasks["Evaluator"]["inputs"]["parameters"]["eval_config"]["runtimeValue"]["constant"])
    threshold = eval_config["metrics_specs"][0]["metrics"][0]["threshold"]
    assert "value_threshold" not in threshold and "change_threshold" in threshold


def test_without_a_threshold_there_is_no_threshold_parameter(tmp_path):
    config = PipelineConfig(home=str(tmp_path), label="body_mass_g", task="regression")
    spec, _ = kubeflow_compiler.compile_spec(config, prepare=inputs.prepare)
    assert "eval_threshold" not in spec["root"]["inputDefinitions"]["parameters"]
    assert "kubetfx_eval_threshold" not in spec["root"]["dag"]["tasks"]["Evaluator"]["inputs"]["parameters"]


def test_only_the_pusher_and_the_baseline_task_mount_the_serving_volume(docs):
    executors = docs[1]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert set(executors) == {"Pusher_executor", "ServedBaseline_executor"}
    for config in executors.values():
        assert config == {"pvcMount": [{"constant": "kubetfx-serving", "mountPath": "/kubetfx/serving"}]}
    for _, _, container in _container_tasks(docs[0]):
        assert all(e["name"] != "KUBETFX_URI_MAP" for e in container.get("env", []))


def test_the_serving_location_is_a_pipeline_parameter_read_by_the_baseline_and_the_pusher(docs):
    """Default: the pipeline's directory on the serving volume (a cluster run as before); a
    runner without the volume (kfp.local, tests/test_kfp_local_spec.py) passes another."""
    spec = docs[0]
    assert spec["root"]["inputDefinitions"]["parameters"]["serving_dir"] == {
        "parameterType": "STRING", "isOptional": True, "defaultValue": "/kubetfx/serving/kubetfx-penguin"}
    for name in ("ServedBaseline", "Pusher"):
        assert spec["root"]["dag"]["tasks"][name]["inputs"]["parameters"]["serving_dir"] == {
            "componentInputParameter": "serving_dir"}
        component = spec["components"][spec["root"]["dag"]["tasks"][name]["componentRef"]["name"]]
        assert component["inputDefinitions"]["parameters"]["serving_dir"] == {"parameterType": "STRING"}
    push_destination = json.loads(
        spec["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]["push_destination"]["runtimeValue"]["constant"])
    assert push_destination["filesystem"]["base_directory"] == "/kubetfx/serving/kubetfx-penguin"


def test_result_stages_have_a_markdown_view_for_the_kfp_ui(docs):
    spec = docs[0]
    with_view = set()
    for name, task, container in _container_tasks(spec):
        outputs = spec["components"][task["componentRef"]["name"]].get("outputDefinitions", {}).get("artifacts", {})
        if "kubetfx_view" in outputs:
            with_view.add(name)
            assert outputs["kubetfx_view"]["artifactType"]["schemaTitle"] == "system.Markdown"
            assert container["args"][:2] == ["--view_stage", name]
    assert with_view == {"StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Trainer", "Evaluator",
                         "InfraValidator"}


def test_secrets_are_referenced_by_name_never_included(tmp_path):
    """A real secret: its name goes in the spec, its value (here in this process's
    environment, where a careless compiler could read it) never does."""
    secret_value = "kubetfx-test-secret-value-7f3a9c"
    settings = kubeflow_compiler.ClusterSettings(object_store_secret="kubetfx-object-store")
    env = {"AWS_ACCESS_KEY_ID": "kubetfx-test-access-key-41d2", "AWS_SECRET_ACCESS_KEY": secret_value,
           "KUBETFX_KFP_TOKEN": "kubetfx-test-token-9be1"}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        spec, platform = kubeflow_compiler.compile_spec(PipelineConfig(home=str(tmp_path)), settings, prepare=inputs.prepare)
    text = json.dumps([spec, platform])
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors and all(c["secretAsEnv"][0]["secretName"] == "kubetfx-object-store" for c in executors.values())
    assert {e["envVar"] for e in executors["Pusher_executor"]["secretAsEnv"][0]["keyToEnv"]} == {
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    for value in env.values():
        assert value not in text


def test_compiled_spec_matches_the_golden_file(compiled):
    """`make regenerate` refreshes the golden file after an intended change."""
    text = compiled.read_text()
    if os.environ.get("KUBETFX_REGENERATE"):
        GOLDEN.write_text(text)
    assert GOLDEN.exists(), "no golden file: run `make regenerate`"
    assert text == GOLDEN.read_text(), "compiled spec drifted from the golden file: review, then `make regenerate`"


def test_a_compile_stopped_mid_write_leaves_the_previous_spec_whole(tmp_path):
    """A full disk (here the file-size limit, EFBIG, as `ulimit -f` sets it), a Ctrl-C or a
    kill while writing truncated the spec a schedule's next `submit` reads; the old spec
    stays whole, and no partial file is left beside it."""
    import resource

    output = tmp_path / "spec.yaml"
    output.write_text("previous: spec\n")
    big = {"root": {"dag": {"tasks": {f"task-{i}": {"x": "y" * 100} for i in range(200)}}}}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # Python ignores SIGXFSZ: the write raises EFBIG
    try:
        with pytest.raises(OSError) as err:
            kubeflow_compiler.write_yaml(big, {}, output)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert err.value.errno == 27  # EFBIG
    assert output.read_text() == "previous: spec\n"
    assert os.listdir(tmp_path) == ["spec.yaml"]
    kubeflow_compiler.write_yaml(big, {}, output)
    assert list(yaml.safe_load_all(output.read_text())) == [big, {}]
