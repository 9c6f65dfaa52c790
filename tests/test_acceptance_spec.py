"""The acceptance test in the compiled Kubeflow spec: ExampleGen's three splits, the
Evaluator blessing on `eval` only, and `acceptance_threshold` reaching the Evaluator's
executor as an exec property, in a spec the KFP backend accepts at upload and run creation
(pipelines/kubeflow/backend_rules.py)."""
from __future__ import annotations

import json

import yaml

from kubetfx.components.evaluator import acceptance
from kubetfx.pipelines.config import PipelineConfig
from kubetfx.pipelines.kubeflow import backend_rules, compiler
from kubetfx.pipelines.run import inputs


def test_the_threshold_and_the_test_split_compile_into_a_spec_the_backend_accepts(tmp_path):
    config = PipelineConfig(home=str(tmp_path / "home"), acceptance_threshold=0.9)
    path = compiler.compile_to_file(config, str(tmp_path / "spec.yaml"), prepare=inputs.prepare)
    spec, platform = backend_rules.check_upload(path.read_text())
    backend_rules.check_run(spec, platform, {})
    document = next(yaml.safe_load_all(path.read_text()))
    tasks = document["root"]["dag"]["tasks"]
    evaluator = tasks["Evaluator"]["inputs"]["parameters"]
    assert evaluator[acceptance.THRESHOLD_KEY] == {"runtimeValue": {"constant": 0.9}}
    assert json.loads(evaluator["example_splits"]["runtimeValue"]["constant"]) == ["eval"]
    declared = document["components"][tasks["Evaluator"]["componentRef"]["name"]]["inputDefinitions"]["parameters"]
    assert declared[acceptance.THRESHOLD_KEY] == {"parameterType": "NUMBER_DOUBLE"}
    output_config = json.loads(tasks["CsvExampleGen"]["inputs"]["parameters"]["output_config"]["runtimeValue"]["constant"])
    assert [(s["name"], s["hash_buckets"]) for s in output_config["split_config"]["splits"]] == [
        ("train", 4), ("eval", 1), ("test", 1)]
