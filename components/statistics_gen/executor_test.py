"""The Beam-less StatisticsGen writes what the stock executor writes: the same statistics
(to the last bits of a float sum's order), the same artifact properties; anything but
the defaults goes to the stock executor."""
from __future__ import annotations

import math
import os
import shutil

import pytest
import tensorflow as tf
from google.protobuf import json_format
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx.components.statistics_gen import executor as stock
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs as keys

from kubetfx.components.statistics_gen import executor as ours

TFX_TESTDATA = os.path.join(os.path.dirname(os.path.dirname(stock.__file__)), "testdata", "csv_example_gen")


def _examples(uri: str, splits: list) -> standard_artifacts.Examples:
    examples = standard_artifacts.Examples()
    examples.uri = uri
    examples.split_names = artifact_utils.encode_split_names(splits)
    examples.span = 7
    return examples


def _run(executor_class, examples, out_dir, exec_properties=None) -> standard_artifacts.ExampleStatistics:
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(out_dir)
    executor_class().Do({keys.EXAMPLES_KEY: [examples]}, {keys.STATISTICS_KEY: [statistics]},
                        exec_properties or {keys.EXCLUDE_SPLITS_KEY: '["test"]'})
    return statistics


def _read(statistics, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    result = statistics_pb2.DatasetFeatureStatisticsList()
    with open(os.path.join(artifact_utils.get_split_uri([statistics], split), "FeatureStats.pb"), "rb") as f:
        result.ParseFromString(f.read())
    return result


def _assert_close(mine, theirs, path="") -> None:
    """Equal, floats to 1e-12 relative (TFDV's sums run in another order under Beam)."""
    if isinstance(mine, dict):
        assert mine.keys() == theirs.keys(), path
        for key in mine:
            _assert_close(mine[key], theirs[key], f"{path}.{key}")
    elif isinstance(mine, list):
        assert len(mine) == len(theirs), path
        for i, (a, b) in enumerate(zip(mine, theirs)):
            _assert_close(a, b, f"{path}[{i}]")
    elif isinstance(mine, float) or isinstance(theirs, float):
        assert math.isclose(mine, theirs, rel_tol=1e-12, abs_tol=1e-15), f"{path}: {mine} != {theirs}"
    else:
        assert mine == theirs, f"{path}: {mine!r} != {theirs!r}"


def _same_statistics(mine, theirs) -> None:
    _assert_close(json_format.MessageToDict(mine), json_format.MessageToDict(theirs))


def test_same_statistics_and_properties_as_the_stock_executor(tmp_path):
    """TFX's taxi test data: numeric and string features, missing values, top-k values."""
    examples = _examples(TFX_TESTDATA, ["train", "eval", "test"])
    mine = _run(ours.Executor, examples, tmp_path / "ours")
    theirs = _run(stock.Executor, examples, tmp_path / "stock")
    for split in ("train", "eval"):
        statistics = _read(mine, split)
        assert statistics.datasets[0].num_examples > 0
        assert any(f.string_stats.top_values for f in statistics.datasets[0].features)
        _same_statistics(statistics, _read(theirs, split))
    assert not os.path.exists(os.path.join(mine.uri, "Split-test"))
    for name in ("split_names", "span"):
        assert getattr(mine, name) == getattr(theirs, name)
    assert mine.mlmd_artifact.custom_properties == theirs.mlmd_artifact.custom_properties


def test_an_empty_split_gets_the_stock_placeholder(tmp_path):
    source = tmp_path / "examples"
    shutil.copytree(os.path.join(TFX_TESTDATA, "Split-train"), source / "Split-train")
    (source / "Split-eval").mkdir()
    with tf.io.TFRecordWriter(str(source / "Split-eval" / "empty.gz"), tf.io.TFRecordOptions(compression_type="GZIP")):
        pass
    examples = _examples(str(source), ["train", "eval"])
    mine = _run(ours.Executor, examples, tmp_path / "ours")
    theirs = _run(stock.Executor, examples, tmp_path / "stock")
    assert _read(mine, "eval").datasets[0].num_examples == 0
    _same_statistics(_read(mine, "eval"), _read(theirs, "eval"))


@pytest.mark.parametrize("exec_properties, schema", [
    ({keys.STATS_OPTIONS_JSON_KEY: '{"num_top_values": 3}'}, False),
    ({keys.SAMPLE_RATE_BY_SPLIT_KEY: '{"train": 0.5}'}, False),
    ({keys.SHARDED_STATS_OUTPUT_KEY: True}, False),
    ({}, True),
], ids=["stats options", "sampling", "sharded output", "schema input"])
def test_anything_but_the_defaults_goes_to_the_stock_executor(exec_properties, schema):
    examples = _examples(TFX_TESTDATA, ["train", "eval"])
    defaults = {keys.EXCLUDE_SPLITS_KEY: "[]"}
    assert ours.Executor()._plan({keys.EXAMPLES_KEY: [examples]}, defaults) is not None
    input_dict = {keys.EXAMPLES_KEY: [examples]}
    if schema:
        input_dict[keys.SCHEMA_KEY] = [standard_artifacts.Schema()]
    assert ours.Executor()._plan(input_dict, {**defaults, **exec_properties}) is None


def test_a_distributed_runner_goes_to_the_stock_executor():
    input_dict = {keys.EXAMPLES_KEY: [_examples(TFX_TESTDATA, ["train", "eval"])]}
    executor = ours.Executor(ours.Executor.Context(beam_pipeline_args=["--runner=DataflowRunner"]))
    assert executor._plan(input_dict, {keys.EXCLUDE_SPLITS_KEY: "[]"}) is None


def test_a_location_tensorflow_cannot_open_goes_to_the_stock_executor():
    """TF 2.16 has no s3:// filesystem; Beam's (boto) reads it in the stock executor."""
    input_dict = {keys.EXAMPLES_KEY: [_examples("s3://kubetfx-bucket/examples", ["train", "eval"])]}
    assert ours.Executor()._plan(input_dict, {keys.EXCLUDE_SPLITS_KEY: "[]"}) is None


@pytest.fixture(scope="module")
def examples_with_gaps(tmp_path_factory):
    """ExampleGen's output of a small CSV with empty cells (3-14% per column), and the
    number of empty cells per column in the CSV."""
    from kubetfx.components.example_gen import executor as example_gen
    from kubetfx.components.example_gen.executor_test import run_example_gen

    folder = tmp_path_factory.mktemp("gaps")
    (folder / "csv").mkdir()
    rows = [(i / 4 if i % 10 else "", i % 9 if i % 7 else "", "abc"[i % 3] if i % 13 else "", i) for i in range(300)]
    (folder / "csv" / "data.csv").write_text("x,n,s,full\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    gaps = {name: sum(row[i] == "" for row in rows) for i, name in enumerate(("x", "n", "s", "full"))}
    return run_example_gen(example_gen.Executor, folder / "csv", folder / "examples"), gaps


@pytest.mark.slow  # the stock executor is a Beam pipeline
def test_missing_cells_are_counted_missing_as_stock_tfdv_counts_them(examples_with_gaps, tmp_path):
    """A CSV gap is a missing value in the statistics (num_missing), the same count with
    ours as with the stock executor on the same examples: before, a gap was an empty value
    list, which TFDV counts as present (0% missing where 3-14% were)."""
    examples, gaps = examples_with_gaps
    mine = _run(ours.Executor, examples, tmp_path / "ours", {keys.EXCLUDE_SPLITS_KEY: "[]"})
    theirs = _run(stock.Executor, examples, tmp_path / "stock", {keys.EXCLUDE_SPLITS_KEY: "[]"})
    missing = dict.fromkeys(gaps, 0)
    for split in ("train", "eval"):
        statistics = _read(mine, split)
        _same_statistics(statistics, _read(theirs, split))
        dataset = statistics.datasets[0]
        for feature in dataset.features:
            common = getattr(feature, feature.WhichOneof("stats")).common_stats
            missing[feature.path.step[0]] += int(common.num_missing)
            assert common.num_non_missing + common.num_missing == dataset.num_examples
            assert common.min_num_values == 1  # a present feature holds its value: no empty list
    assert missing == gaps == {"x": 30, "n": 43, "s": 24, "full": 0}


def test_a_moved_or_changed_private_tfdv_name_hands_the_run_to_the_stock_executor(tmp_path, monkeypatch, caplog):
    """An upgrade that reshapes a private TFDV name (simulated: the same function under
    other parameter names, which TFDV's own positional call still accepts) must not fail
    the stage: one log line, the stock executor's statistics."""
    from tensorflow_data_validation.statistics import stats_impl

    original = stats_impl._split_generator_types

    def _split_generator_types(generator_list, partitions):
        return original(generator_list, partitions)
    monkeypatch.setattr(stats_impl, "_split_generator_types", _split_generator_types)
    examples = _examples(TFX_TESTDATA, ["train", "eval"])
    with caplog.at_level("INFO"):
        mine = _run(ours.Executor, examples, tmp_path / "ours", {keys.EXCLUDE_SPLITS_KEY: "[]"})
    seams = [r.getMessage() for r in caplog.records if "upgrade changed it" in r.getMessage()]
    assert len(seams) == 1 and "stats_impl._split_generator_types" in seams[0] and "stock executor" in seams[0]
    assert not any(r.getMessage().startswith("StatisticsGen: split") for r in caplog.records)  # not the fast path
    monkeypatch.undo()
    theirs = _run(stock.Executor, examples, tmp_path / "stock", {keys.EXCLUDE_SPLITS_KEY: "[]"})
    _same_statistics(_read(mine, "train"), _read(theirs, "train"))
