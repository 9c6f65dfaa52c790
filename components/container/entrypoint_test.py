"""Each incompatibility between the OSS KFP v2 driver's executor input and TFX, reproduced
and shown handled; then a real stage run through the entrypoint from such an input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kubetfx.components.container import entrypoint, kfp_compat

# As the OSS v2 driver builds it (backend/src/v2/driver): artifacts typed from MLMD,
# `system.*` titles, no instance schema, URIs in the minio:// pipeline root.
def _driver_input(root="minio://mlpipeline/v2/artifacts/p/run/Task"):
    return {
        "inputs": {
            "parameterValues": {"eval_config": json.dumps({"metrics_specs": [{"metrics": [
                {"class_name": "SparseCategoricalAccuracy", "threshold": {"value_threshold": {"lower_bound": 0.6}}}]}]}),
                "kubetfx_eval_threshold": 0.8},
            "artifacts": {"model": {"artifacts": [{"name": "m", "uri": f"{root}/model",
                                                   "type": {"schemaTitle": "system.Model"}}]},
                          "examples": {"artifacts": [{"name": "e", "uri": f"{root}/examples",
                                                      "type": {"instanceSchema": ""}}]}}},
        "outputs": {"artifacts": {"blessing": {"artifacts": [{"name": "b", "uri": f"{root}/blessing",
                                                             "type": {"schemaTitle": "system.Artifact"}}]}},
                    "outputFile": f"{root}/executor_output.json"},
    }


DECLARED = {"model": "tfx.Model", "examples": "tfx.Examples", "blessing": "tfx.ModelBlessing"}


def test_system_titles_and_empty_instance_schemas_become_declared_tfx_types():
    executor_input = _driver_input()
    kfp_compat.fix_artifact_types(executor_input, DECLARED)
    types = {k: v["artifacts"][0]["type"]["instanceSchema"]
             for side in ("inputs", "outputs") for k, v in executor_input[side]["artifacts"].items()}
    assert types == {k: f"title: {t}\ntype: object\n" for k, t in DECLARED.items()}


def test_tfx_parses_the_repaired_artifacts_as_their_real_classes():
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils
    from tfx.types import standard_artifacts

    executor_input = _driver_input()
    kfp_compat.fix_artifact_types(executor_input, DECLARED)
    proto = json_format.ParseDict(executor_input, pipeline_spec_pb2.ExecutorInput(), ignore_unknown_fields=True)
    parsed = utils.parse_raw_artifact_dict(proto.inputs.artifacts)
    assert isinstance(parsed["model"][0], standard_artifacts.Model)
    assert isinstance(parsed["examples"][0], standard_artifacts.Examples)


@pytest.mark.parametrize("uri, local", [
    # KFP 2.5.0 backend/src/v2/component/launcher_v2.go LocalPathForURI, case by case
    ("minio://mlpipeline/v2/artifacts/p/r/T/u/examples", "/minio/mlpipeline/v2/artifacts/p/r/T/u/examples"),
    ("s3://bucket/a/b", "/s3/bucket/a/b"),
    ("gs://bucket/a", "/gcs/bucket/a"),
    ("oci://registry/model:1", "/oci/registry_model:1/models"),
])
def test_artifact_uris_map_to_the_launcher_s_local_paths(uri, local):
    assert kfp_compat.local_path_for_uri(uri) == local
    if not uri.startswith("oci://"):
        assert kfp_compat.uri_for_local_path(local) == uri


def test_uris_map_to_local_paths_and_come_back_in_the_original_scheme(tmp_path):
    executor_input = _driver_input()
    kfp_compat.map_uris(executor_input, str(tmp_path))
    assert executor_input["inputs"]["artifacts"]["model"]["artifacts"][0]["uri"] == \
        f"{tmp_path}/minio/mlpipeline/v2/artifacts/p/run/Task/model"
    output = tmp_path / "out.json"
    output.write_text(json.dumps({"artifacts": {"blessing": {"artifacts": [{"uri": f"{tmp_path}/s3/b/x"}]}}}))
    kfp_compat.unmap_output_file(str(output), str(tmp_path))
    assert json.loads(output.read_text())["artifacts"]["blessing"]["artifacts"][0]["uri"] == "s3://b/x"


def test_an_unknown_scheme_is_a_clear_error():
    with pytest.raises(ValueError, match="unsupported storage scheme"):
        kfp_compat.local_path_for_uri("hdfs://x/y")


def test_the_2_5_executor_logs_output_is_dropped_before_tfx_sees_it():
    executor_input = _driver_input()
    executor_input["outputs"]["artifacts"]["executor-logs"] = {"artifacts": [
        {"uri": "minio://mlpipeline/v2/artifacts/p/run/Task/u/executor-logs", "type": {"schemaTitle": "system.Artifact"}}]}
    entrypoint.repair(executor_input, DECLARED, {})
    assert list(executor_input["outputs"]["artifacts"]) == ["blessing"]


def test_zero_byte_directory_markers_are_removed_real_files_kept(tmp_path):
    (tmp_path / "Split-train").mkdir()
    (tmp_path / "Split-train_$folder$").write_bytes(b"")
    (tmp_path / "Split-train" / "data.gz").write_bytes(b"data")
    (tmp_path / "Split-train" / "empty-but-real.txt").write_bytes(b"")
    assert kfp_compat.remove_directory_markers(str(tmp_path)) == 1
    assert sorted(os.listdir(tmp_path)) == ["Split-train"]
    assert sorted(os.listdir(tmp_path / "Split-train")) == ["data.gz", "empty-but-real.txt"]


def test_model_saved_at_the_artifact_root_gets_a_format_serving_view(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"pb")
    view = kfp_compat.ensure_serving_layout(str(tmp_path))
    assert (Path(view) / "Format-Serving" / "saved_model.pb").read_bytes() == b"pb"
    assert sorted(os.listdir(tmp_path)) == ["saved_model.pb"]  # the input is untouched
    (tmp_path / "Format-Serving").mkdir()
    assert kfp_compat.ensure_serving_layout(str(tmp_path)) == str(tmp_path)


def test_kfp_namespace_comes_from_the_pod(monkeypatch, tmp_path):
    env = {"POD_NAMESPACE": "team-a"}
    kfp_compat.export_namespace(env)
    assert env["KFP_NAMESPACE"] == "team-a"
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("kubeflow-user\n")
    monkeypatch.setattr(kfp_compat, "SERVICE_ACCOUNT_NAMESPACE", namespace_file)
    env = {}
    kfp_compat.export_namespace(env)
    assert env["KFP_NAMESPACE"] == "kubeflow-user"


def test_the_data_artifact_becomes_input_base_and_the_fingerprint_is_popped():
    executor_input = {"inputs": {"parameterValues": {"input_base": "unused", "kubetfx_data_fingerprint": "ab12"},
                                 "artifacts": {"kubetfx_data": {"artifacts": [
                                     {"name": "3", "uri": "minio://mlpipeline/kubetfx/data/p", "type": {"instanceSchema": ""}}]}}},
                      "outputs": {"artifacts": {}}}
    entrypoint.apply_data(executor_input)
    assert executor_input["inputs"] == {"parameterValues": {"input_base": "/minio/mlpipeline/kubetfx/data/p"},
                                        "artifacts": {}}


def test_the_eval_threshold_parameter_sets_the_gate():
    executor_input = _driver_input()
    entrypoint.apply_eval_threshold(executor_input)
    params = executor_input["inputs"]["parameterValues"]
    metric = json.loads(params["eval_config"])["metrics_specs"][0]["metrics"][0]
    assert metric["threshold"]["value_threshold"] == {"lower_bound": 0.8} and "kubetfx_eval_threshold" not in params


def _run_example_gen(tmp_path) -> dict:
    """The real ExampleGen executor, through the entrypoint, from a minio:// input; returns
    the executor output it wrote."""
    from kubetfx.pipelines.config import EMBEDDED_DATA

    root = "minio://mlpipeline/v2/artifacts/p/run/CsvExampleGen"
    executor_input = {
        "inputs": {"parameterValues": {
            "input_base": "unused", "kubetfx_data_fingerprint": "f1",
            "input_config": json.dumps({"splits": [{"name": "single_split", "pattern": "*.csv"}]}),
            "output_config": json.dumps({"split_config": {"splits": [{"hash_buckets": 2, "name": "train"},
                                                                     {"hash_buckets": 1, "name": "eval"}]}}),
            "output_data_format": 6, "output_file_format": 5},
            "artifacts": {"kubetfx_data": {"artifacts": [{"name": "1", "uri": "minio://mlpipeline/data/penguins",
                                                          "type": {"instanceSchema": ""}}]}}},
        "outputs": {"artifacts": {"examples": {"artifacts": [{"name": "ex", "uri": f"{root}/examples",
                                                              "type": {"schemaTitle": "system.Dataset"}}]},
                                  "executor-logs": {"artifacts": [{"uri": f"{root}/executor-logs",
                                                                   "type": {"schemaTitle": "system.Artifact"}}]}},
                    "outputFile": str(tmp_path / "kfp_outputs" / "output_metadata.json")},
    }
    inputs_spec = {"parameters": {"input_base": {"parameterType": "STRING"}, "input_config": {"parameterType": "STRING"},
                                  "output_config": {"parameterType": "STRING"},
                                  "output_data_format": {"parameterType": "NUMBER_INTEGER"},
                                  "output_file_format": {"parameterType": "NUMBER_INTEGER"},
                                  "kubetfx_data_fingerprint": {"parameterType": "STRING"}}}
    import shutil
    shutil.copytree(EMBEDDED_DATA, tmp_path / "minio" / "mlpipeline" / "data" / "penguins")  # as the launcher stages it
    os.environ["KUBETFX_LAUNCHER_ROOT"] = str(tmp_path)
    try:
        assert entrypoint.main([
            "--executor_class_path", "tfx.components.example_gen.csv_example_gen.executor.Executor",
            "--artifact_types", json.dumps({"examples": "tfx.Examples"}),
            "--json_serialized_inputs_spec_args", json.dumps(inputs_spec),
            "--json_serialized_invocation_args", json.dumps(executor_input)]) == 0
    finally:
        del os.environ["KUBETFX_LAUNCHER_ROOT"]
    return json.loads((tmp_path / "kfp_outputs" / "output_metadata.json").read_text())


@pytest.mark.slow
def test_example_gen_runs_from_an_oss_driver_shaped_input(tmp_path):
    root = "minio://mlpipeline/v2/artifacts/p/run/CsvExampleGen"
    output = _run_example_gen(tmp_path)
    task_dir = tmp_path / "minio" / "mlpipeline" / "v2" / "artifacts" / "p" / "run" / "CsvExampleGen"
    assert sorted(os.listdir(task_dir / "examples")) == ["Split-eval", "Split-train"]
    artifact = output["artifacts"]["examples"]["artifacts"][0]
    assert artifact["uri"] == f"{root}/examples"  # KFP gets back the URI it handed out
    assert json.loads(artifact["metadata"]["split_names"]) == ["train", "eval"]


@pytest.mark.slow
def test_a_stage_writes_its_markdown_view_for_the_kfp_ui_from_its_real_outputs(tmp_path):
    """StatisticsGen through the entrypoint with the compiled `kubetfx_view` output: TFX's
    executor never sees it, and the file the launcher uploads is the statistics as Markdown."""
    examples = _run_example_gen(tmp_path)["artifacts"]["examples"]["artifacts"][0]
    root = "minio://mlpipeline/v2/artifacts/p/run/StatisticsGen"
    executor_input = {
        "inputs": {"parameterValues": {"exclude_splits": "[]"},
                   "artifacts": {"examples": {"artifacts": [{**examples, "type": {"schemaTitle": "system.Dataset"}}]}}},
        "outputs": {"artifacts": {
            "statistics": {"artifacts": [{"name": "s", "uri": f"{root}/statistics", "type": {"schemaTitle": "system.Artifact"}}]},
            entrypoint.VIEW: {"artifacts": [{"name": "v", "uri": f"{root}/kubetfx_view",
                                             "type": {"schemaTitle": "system.Markdown"}}]}},
            "outputFile": str(tmp_path / "kfp_outputs" / "statistics_output.json")},
    }
    os.environ["KUBETFX_LAUNCHER_ROOT"] = str(tmp_path)
    try:
        assert entrypoint.main([
            "--view_stage", "StatisticsGen",
            "--executor_class_path", "tfx.components.statistics_gen.executor.Executor",
            "--artifact_types", json.dumps({"examples": "tfx.Examples", "statistics": "tfx.ExampleStatistics",
                                            entrypoint.VIEW: "system.Markdown"}),
            "--json_serialized_inputs_spec_args", json.dumps({"parameters": {"exclude_splits": {"parameterType": "STRING"}}}),
            "--json_serialized_invocation_args", json.dumps(executor_input)]) == 0
    finally:
        del os.environ["KUBETFX_LAUNCHER_ROOT"]
    view = (tmp_path / "minio" / "mlpipeline" / "v2" / "artifacts" / "p" / "run" / "StatisticsGen" / "kubetfx_view").read_text()
    assert view.startswith("# StatisticsGen")
    assert "### train: " in view and "### eval: " in view
    assert "| bill_length_mm | FLOAT |" in view and "| island |" in view
    output = json.loads((tmp_path / "kfp_outputs" / "statistics_output.json").read_text())
    # Listed as the KFP SDK lists an output it wrote (kfp/dsl/executor.py), with the URI KFP
    # handed out, beside TFX's own output.
    assert output["artifacts"][entrypoint.VIEW] == {"artifacts": [
        {"name": "v", "uri": f"{root}/kubetfx_view", "metadata": {}}]}
    assert output["artifacts"]["statistics"]["artifacts"][0]["uri"] == f"{root}/statistics"


def test_a_view_that_cannot_be_drawn_says_why_and_does_not_fail(tmp_path):
    path = tmp_path / "view.md"
    executor_input = {"outputs": {"artifacts": {"evaluation": {"artifacts": [{"uri": str(tmp_path / "missing")}]}}}}
    entrypoint.write_view(str(path), "Evaluator", executor_input, {"evaluation": "tfx.ModelEvaluation"})
    assert path.read_text().startswith("# Evaluator\n\nThe view could not be drawn: ")


@pytest.mark.slow
def test_a_reshaped_private_tfx_runner_is_one_line_and_the_public_main_runs_the_stage(tmp_path, monkeypatch, caplog):
    """An upgrade that reshapes TFX's private `_run_executor` (simulated: other parameter
    names; TFX's own main() calls it positionally) must not fail the stage."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_runner

    original = tfx_runner._run_executor
    monkeypatch.setattr(tfx_runner, "_run_executor", lambda parsed, extra: original(parsed, extra))
    with caplog.at_level("WARNING"):
        output = _run_example_gen(tmp_path)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("kubetfx: entrypoint:")]
    assert len(lines) == 1 and "_run_executor takes ('parsed', 'extra')" in lines[0] and "main()" in lines[0], lines
    artifact = output["artifacts"]["examples"]["artifacts"][0]
    assert json.loads(artifact["metadata"]["split_names"]) == ["train", "eval"]


def test_the_images_own_command_repeated_in_front_of_the_args_is_dropped():
    """kfp.local's DockerRunner hands the spec's command and args to Docker as CMD, after the
    image's ENTRYPOINT: `python -m <entrypoint>` arrived twice and reached Beam as its args."""
    args = ["--executor_class_path", "x.Executor", "--json_serialized_invocation_args", "{}"]
    assert entrypoint.own_args(["python", "-m", entrypoint.MODULE, *args]) == args
    assert entrypoint.own_args(["/usr/local/bin/python3", "-m", entrypoint.MODULE, *args]) == args
    assert entrypoint.own_args(args) == args
    assert entrypoint.own_args(["python", "-m", "other.module", *args])[:3] == ["python", "-m", "other.module"]
    from kubetfx.pipelines.kubeflow import compiler
    assert compiler.ENTRYPOINT == ["python", "-m", entrypoint.MODULE]  # what the spec's command says


def test_another_tasks_command_handed_over_the_same_way_runs_as_the_spec_says(tmp_path):
    """The same runner hands the data-fingerprint task's command (`python -m
    ...data_fingerprint --data ... --output ...`) to the image's ENTRYPOINT: it failed on the
    entrypoint's own required arguments instead of hashing the data."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x,y\n1,2\n")
    output = tmp_path / "out" / "fingerprint"
    result = subprocess.run(
        [sys.executable, "-m", entrypoint.MODULE, sys.executable, "-m", "kubetfx.components.container.data_fingerprint",
         "--data", str(data), "--output", str(output)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert output.read_text().startswith("sha256:")
