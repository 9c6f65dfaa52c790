"""Parquet and TFRecords of tf.Examples through the stage containers, for real: the compiled
spec's data path (the importer's staged data, its fingerprint task, the format's
ExampleGen, StatisticsGen, SchemaGen) run on the local KFP backend, each task in its
container, artifacts only through the object store.

Only the tasks up to the inferred schema run: what is specific to a format ends there (the
Examples every later stage reads are the same TFRecords whatever came in, and the full
container run on CSV, tests/test_containers.py, covers the rest); the spec is cut to those
tasks as a pipeline of fewer tasks would compile, so the backend runs it unchanged."""
from __future__ import annotations

import re

import pytest
from container_engine import IMAGES, REPO, require_engine_and_images

import data_formats
from kubetfx.pipelines.config import EMBEDDED_DATA, PipelineConfig

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def engine_and_images():
    require_engine_and_images(IMAGES[:1])


@pytest.fixture(scope="module")
def penguin_formats(tmp_path_factory):
    root = tmp_path_factory.mktemp("formats")
    csv = EMBEDDED_DATA / "penguins.csv"
    parquet = data_formats.write_parquet(root / "parquet" / "part-0.parquet", data_formats.csv_table(csv))
    tfrecords = data_formats.write_tfrecords(root / "tfrecord" / "data_tfrecord-00000-of-00001.gz",
                                             data_formats.penguin_examples(csv), compress=True)
    return {"Parquet": parquet.parent, "TFRecord": tfrecords.parent}


def up_to(spec: dict, platform: dict, last: list) -> tuple:
    """The spec (and platform spec) with only the `last` tasks and what they need."""
    from kubetfx.pipelines.kubeflow.local_backend import dag

    tasks = spec["root"]["dag"]["tasks"]
    keep, todo = set(), list(last)
    while todo:
        name = todo.pop()
        if name not in keep:
            keep.add(name)
            todo.extend(dag.dependencies(tasks[name]))
    spec["root"]["dag"]["tasks"] = {n: t for n, t in tasks.items() if n in keep}
    components = {t["componentRef"]["name"] for t in spec["root"]["dag"]["tasks"].values()}
    spec["components"] = {n: c for n, c in spec["components"].items() if n in components}
    labels = {c["executorLabel"] for c in spec["components"].values()}
    spec["deploymentSpec"]["executors"] = {n: e for n, e in spec["deploymentSpec"]["executors"].items()
                                           if n in labels}
    for image in {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values() if "container" in e}:
        assert image.startswith("kubetfx/"), image
    for executor in spec["deploymentSpec"]["executors"].values():
        if "container" in executor:  # as `--image-repo` does (kubeflow/local_run.py)
            executor["container"]["image"] = REPO + executor["container"]["image"][len("kubetfx"):]
    executors = (platform or {}).get("platforms", {}).get("kubernetes", {}).get("deploymentSpec", {}).get("executors")
    if executors is not None:
        for label in [n for n in executors if n not in labels]:
            del executors[label]
    return spec, platform


@pytest.mark.parametrize("kind, example_gen", [("Parquet", "ParquetExampleGen"), ("TFRecord", "ImportExampleGen")])
def test_each_format_reaches_statistics_and_schema_in_containers(tmp_path, penguin_formats, kind, example_gen):
    from kubetfx.pipelines.kubeflow import compiler, staged_files
    from kubetfx.pipelines.kubeflow.local_backend import backend
    from kubetfx.pipelines.run import inputs

    config = PipelineConfig(home=str(tmp_path / "home"), data=str(penguin_formats[kind]), label="species",
                            name=f"formats-{kind.lower()}")
    spec, platform = compiler.compile_spec(config, prepare=inputs.prepare)
    tasks = spec["root"]["dag"]["tasks"]
    schema_gen = next(n for n in tasks if n.endswith("SchemaGen"))
    spec, platform = up_to(spec, platform, [schema_gen])
    files = staged_files.uploads(spec, staged_files.user_files(config.module_file, config.schema_file))
    summary = backend.run_spec(spec, platform, backend.RunRequest(
        pipeline=config.name, home=tmp_path / "home", data=penguin_formats[kind], files=files))

    stages = {s.stage: s for s in summary.stages}
    assert {n: s.state for n, s in stages.items()} == {
        "data": "imported", "data-fingerprint": "complete", example_gen: "complete",
        "StatisticsGen": "complete", schema_gen: "complete"}
    assert stages[example_gen].result == "splits eval, test, train"
    assert sum(int(n) for n in re.findall(r"(\d+) rows", stages["StatisticsGen"].result)) == 344
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    text = next((tmp_path / "home" / "object-store").rglob(f"{schema_gen}/*/schema/schema.pbtxt")).read_text()
    schema = text_format.Parse(text, schema_pb2.Schema())
    features = {f.name: schema_pb2.FeatureType.Name(f.type) for f in schema.feature}
    assert features["bill_length_mm"] == "FLOAT" and features["species"] == "BYTES", features
    assert len(features) == 8, features
