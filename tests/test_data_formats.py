"""Parquet and TFRecords of tf.Examples in, end to end: the embedded penguins converted to
each format train, pass the gates and push a model with the local runner, through the
ExampleGen the format picks; and the compiled spec carries that ExampleGen and its input
pattern, so a cluster run reads the staged data the same way."""
from __future__ import annotations

import os
import re

import pytest
import yaml

import data_formats
from kubetfx.pipelines.config import EMBEDDED_DATA

PENGUINS = EMBEDDED_DATA / "penguins.csv"


@pytest.fixture(scope="module")
def penguin_formats(tmp_path_factory):
    """{format: folder} of the 344 penguins as Parquet (types from Arrow's reading of the
    CSV) and as gzip TFRecords of the Examples the CSV path writes."""
    root = tmp_path_factory.mktemp("formats")
    parquet = data_formats.write_parquet(root / "penguins_parquet" / "part-0.parquet", data_formats.csv_table(PENGUINS))
    tfrecords = data_formats.write_tfrecords(root / "penguins_tfrecord" / "data_tfrecord-00000-of-00001.gz",
                                             data_formats.penguin_examples(PENGUINS), compress=True)
    return {"Parquet": parquet.parent, "TFRecord": tfrecords.parent}


@pytest.mark.slow
@pytest.mark.serving
@pytest.mark.parametrize("kind, example_gen", [("Parquet", "ParquetExampleGen"), ("TFRecord", "ImportExampleGen")])
def test_the_penguins_in_each_format_train_and_push(tmp_path, run_kubetfx, penguin_formats, kind, example_gen):
    home = tmp_path / "home"
    result = run_kubetfx("run", "--home", home, "--data", penguin_formats[kind], "--label", "species",
                         "--train-steps", "100")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"^\s+{example_gen}\s+complete", result.stdout, re.M), result.stdout
    statistics = next(line for line in result.stdout.splitlines() if line.strip().startswith("StatisticsGen"))
    assert sum(int(n) for n in re.findall(r"(\d+) rows", statistics)) == 344, statistics
    [pipeline] = os.listdir(home / "serving")
    assert len(os.listdir(home / "serving" / pipeline)) == 1  # one pushed version
    assert "model pushed to" in result.stdout


@pytest.mark.parametrize("kind, example_gen, pattern", [("Parquet", "ParquetExampleGen", "*.parquet"),
                                                        ("TFRecord", "ImportExampleGen", "*tfrecord*")])
def test_the_compiled_spec_reads_the_staged_data_with_the_formats_example_gen(
        tmp_path, penguin_formats, kind, example_gen, pattern):
    from kubetfx.pipelines.config import PipelineConfig
    from kubetfx.pipelines.kubeflow import compiler
    from kubetfx.pipelines.run import inputs

    config = PipelineConfig(home=str(tmp_path / "home"), data=str(penguin_formats[kind]), label="species")
    path = compiler.compile_to_file(config, str(tmp_path / "spec.yaml"), prepare=inputs.prepare)
    spec = next(yaml.safe_load_all(path.read_text()))
    tasks = spec["root"]["dag"]["tasks"]
    assert example_gen in tasks and not any(n.endswith("ExampleGen") and n != example_gen for n in tasks)
    task = tasks[example_gen]
    # The staged data (the importer's artifact) and its run-time fingerprint feed it.
    assert {"data", "data-fingerprint"} <= set(task["dependentTasks"])
    assert task["inputs"]["parameters"]["input_base"] == {"componentInputParameter": "data_root"}
    input_config = task["inputs"]["parameters"]["input_config"]["runtimeValue"]["constant"]
    assert f'"pattern": "{pattern}"' in input_config
    executor = spec["deploymentSpec"]["executors"][spec["components"][task["componentRef"]["name"]]["executorLabel"]]
    assert "kubetfx.components.example_gen.executor.Executor" in " ".join(executor["container"]["args"])


@pytest.mark.parametrize("kind, pattern", [("Parquet", "*.parquet"), ("TFRecord", "*tfrecord*")])
def test_in_a_container_example_gen_reads_the_staged_data_through_the_entrypoint(
        tmp_path, monkeypatch, penguin_formats, kind, pattern):
    """What a stage's container runs (components/container/entrypoint.py, the OSS driver's
    input shape): the FileBased driver and the kubetfx executor on the data as the launcher
    stages the importer's artifact under /minio."""
    import json
    import shutil

    from kubetfx.components.container import entrypoint
    from kubetfx.components.example_gen import executor

    root = "minio://mlpipeline/v2/artifacts/p/run/ExampleGen"
    splits = [{"name": name, "hash_buckets": buckets} for name, buckets in executor.DEFAULT_SPLITS]
    executor_input = {
        "inputs": {"parameterValues": {
            "input_base": "unused", "kubetfx_data_fingerprint": "f1",
            "input_config": json.dumps({"splits": [{"name": "single_split", "pattern": pattern}]}),
            "output_config": json.dumps({"split_config": {"splits": splits}}),
            "output_data_format": 6, "output_file_format": 5},
            "artifacts": {"kubetfx_data": {"artifacts": [{"name": "1", "uri": "minio://mlpipeline/data/penguins",
                                                          "type": {"instanceSchema": ""}}]}}},
        "outputs": {"artifacts": {"examples": {"artifacts": [{"name": "ex", "uri": f"{root}/examples",
                                                              "type": {"schemaTitle": "system.Dataset"}}]}},
                    "outputFile": str(tmp_path / "kfp_outputs" / "output_metadata.json")},
    }
    inputs_spec = {"parameters": {name: {"parameterType": "STRING"} for name in
                                  ("input_base", "input_config", "output_config", "kubetfx_data_fingerprint")}
                   | {name: {"parameterType": "NUMBER_INTEGER"} for name in ("output_data_format", "output_file_format")}}
    shutil.copytree(penguin_formats[kind], tmp_path / "minio" / "mlpipeline" / "data" / "penguins")
    monkeypatch.setenv("KUBETFX_LAUNCHER_ROOT", str(tmp_path))
    assert entrypoint.main([
        "--executor_class_path", "kubetfx.components.example_gen.executor.Executor",
        "--artifact_types", json.dumps({"examples": "tfx.Examples"}),
        "--json_serialized_inputs_spec_args", json.dumps(inputs_spec),
        "--json_serialized_invocation_args", json.dumps(executor_input)]) == 0
    import tensorflow as tf

    examples = tmp_path / "minio" / "mlpipeline" / "v2" / "artifacts" / "p" / "run" / "ExampleGen" / "examples"
    rows = sum(1 for split in os.listdir(examples)
               for _ in tf.data.TFRecordDataset(tf.io.gfile.glob(f"{examples}/{split}/*.gz"), compression_type="GZIP"))
    assert sorted(os.listdir(examples)) == sorted(f"Split-{s['name']}" for s in splits) and rows == 344
