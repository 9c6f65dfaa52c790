"""Each backend rule: the compiled spec (the golden file, equal to `kubetfx compile`'s output
by kubeflow_compiler_test) passes it; a crafted violation fails with the upstream message."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from kubetfx.pipelines.kubeflow import backend_rules as rules

GOLDEN = Path(__file__).parent.parent / "testdata" / "kubetfx-penguin.golden.yaml"


@pytest.fixture(scope="module")
def documents():
    return list(yaml.safe_load_all(GOLDEN.read_text()))


def _text(*documents) -> str:
    return yaml.safe_dump_all(list(documents))


def _edited(documents, edit):
    spec, platform = copy.deepcopy(documents)
    edit(spec)
    return _text(spec, platform)


def _rejected(text, parameters=None, run=False) -> str:
    with pytest.raises(rules.Rejected) as err:
        spec, platform = rules.check_upload(text)
        if run:
            rules.check_run(spec, platform, parameters)
    return str(err.value)


def test_the_compiled_spec_is_uploaded_and_runs_with_default_and_given_parameters(documents):
    spec, platform = rules.check_upload(GOLDEN.read_text())
    assert spec.schema_version == "2.1.0" and "kubernetes" in platform.platforms
    rules.check_run(spec, platform, {})
    rules.check_run(spec, platform, {"data_root": "s3://bucket/data/", "eval_threshold": 0.8,
                                     "serving_dir": "/mnt/serving/kubetfx-penguin"})
    # The data fingerprint is the data-fingerprint task's output, never a run parameter.
    with pytest.raises(rules.Rejected, match="not required by pipeline: data_fingerprint"):
        rules.check_run(spec, platform, {"data_fingerprint": "sha256:ab"})


def test_a_parameter_from_a_task_output_must_be_declared_by_its_producer(documents):
    def rename(spec):
        spec["components"]["comp-data-fingerprint"]["outputDefinitions"]["parameters"] = {"other": {
            "parameterType": "STRING"}}
    message = _rejected(_edited(documents, rename), {}, run=True)
    assert message == ("task CsvExampleGen: cannot find output parameter key 'fingerprint' in producer task "
                       "'data-fingerprint'")


def test_schema_version_other_than_2_1_0_is_refused(documents):
    message = _rejected(_edited(documents, lambda s: s.update(schemaVersion="2.0.0")))
    assert message == "KFP only supports schema version 2.1.0, but the pipeline spec has version 2.0.0"


def test_an_unknown_field_makes_it_no_pipeline_spec_at_all(documents):
    assert _rejected(_edited(documents, lambda s: s.update(extra=1))) == "unknown template format"


def test_yaml_that_is_not_a_pipeline_spec(documents):
    assert _rejected("apiVersion: v1\nkind: ConfigMap\n") == "unknown template format"
    assert _rejected("") == "unknown template format"
    assert _rejected(_text({"pipelineInfo": {"name": "x"}})) == "unknown template format"  # no root


def test_pipeline_name_rule_matches_anywhere_as_go_regexp_matchstring(documents):
    bad = _edited(documents, lambda s: s["pipelineInfo"].update(name="KUBETFX_PENGUIN"))
    assert _rejected(bad).startswith("invalid v2 pipeline spec: name should consist of lower case")
    rules.check_upload(_edited(documents, lambda s: s["pipelineInfo"].update(name="My Pipeline")))  # unanchored


def test_two_pipeline_specs_or_two_platform_specs_are_refused(documents):
    assert _rejected(_text(documents[0], documents[0])) == "multiple pipeline specs provided"
    assert _rejected(_text(documents[0], documents[1], documents[1])) == "multiple platform specs provided"


def test_a_platform_spec_that_does_not_parse_is_silently_dropped(documents):
    platform = copy.deepcopy(documents[1])
    platform["platforms"]["kubernetes"]["deploymentSpec"]["executor"] = {}  # typo: not a field
    _, parsed = rules.check_upload(_text(documents[0], platform))
    assert parsed is None  # what the apiserver does: the pods would run without the volume


def test_a_resolver_executor_fails_run_creation(documents):
    def add_resolver(spec):
        spec["deploymentSpec"]["executors"]["Pusher_executor"] = {"resolver": {"outputArtifactQueries": {}}}
    message = _rejected(_edited(documents, add_resolver), {}, run=True)
    assert message == ('Failed to compile job: error processing component name="Pusher": '
                       'executor(label="Pusher_executor"): non-container and non-importer executor not implemented')


def test_a_missing_executor_or_producer_fails_run_creation(documents):
    def drop_executor(spec):
        del spec["deploymentSpec"]["executors"]["Pusher_executor"]
    assert "not found in deployment config" in _rejected(_edited(documents, drop_executor), {}, run=True)

    def drop_producer(spec):
        spec["root"]["dag"]["tasks"]["Evaluator"]["inputs"]["artifacts"]["model"]["taskOutputArtifact"][
            "producerTask"] = "Nowhere"
    assert 'unknown producer task "Nowhere" in DAG' in _rejected(_edited(documents, drop_producer), {}, run=True)


def test_run_parameters_are_type_checked_and_must_be_declared(documents):
    text = GOLDEN.read_text()
    assert _rejected(text, {"eval_threshold": "0.8"}, run=True) == (
        "invalid pipeline job inputs: input parameter eval_threshold requires type double or integer, "
        "but the parameter value is not of number value type")
    assert _rejected(text, {"data_roots": "s3://b/"}, run=True) == (
        "invalid pipeline job inputs: parameter(s) provided are not required by pipeline: data_roots")
    assert _rejected(text, None, run=True).startswith(
        "invalid pipeline job inputs: pipeline requiring input has no parameter(s) provided")


def test_the_driver_refuses_null_for_a_number_parameter(documents):
    # An optional root parameter without default is filled with null (argocompiler/argo.go).
    message = _rejected(_edited(documents, lambda s: s["root"]["inputDefinitions"]["parameters"][
        "eval_threshold"].pop("defaultValue")), {}, run=True)
    assert message == "task Evaluator: got null for input parameter 'kubetfx_eval_threshold'"


def test_the_importer_needs_an_object_store_uri(documents):
    text = GOLDEN.read_text()
    assert _rejected(text, {"data_root": ""}, run=True) == "task data: empty artifact URI runtime value for parameter uri"
    assert _rejected(text, {"data_root": "/data/penguins"}, run=True) == (
        "task data: no provider scheme found in artifact URI: /data/penguins")


def test_a_task_parameter_without_a_value_fails_in_the_driver(documents):
    def drop_value(spec):
        del spec["root"]["dag"]["tasks"]["Pusher"]["inputs"]["parameters"]["push_destination"]
    assert _rejected(_edited(documents, drop_value), {}, run=True) == (
        "task Pusher: neither value nor default value provided for non-optional parameter 'push_destination'")
