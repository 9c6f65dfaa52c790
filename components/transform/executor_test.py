"""The Beam-less Transform writes the transform graph the stock executor writes: the same
vocabulary files, metadata and asset map, and a transform_fn that gives the same outputs on
the same raw examples (vocabulary ids exactly, z-scores to float32 rounding); anything but
the built-in function on the in-process runner goes to the stock executor."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.transform import executor as stock
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils, standard_artifacts, standard_component_specs as keys

from kubetfx.components.transform import component, executor as ours, preprocessing

TFX_TESTDATA = os.path.join(os.path.dirname(os.path.dirname(stock.__file__)), "testdata")
# TFX's taxi examples (~10k rows in 12 shards): strings, ints and floats, values missing.
CONFIG = {"label": "payment_type", "task": "classification", "column_roles": {}}
REGRESSION = {"label": "tips", "task": "regression", "column_roles": {"identifiers": ["trip_start_timestamp"]}}
# The built-in function under another dotted name: to TFX, a user's function.
preprocessing_fn = preprocessing.preprocessing_fn
USERS_FN = f"{__name__}.preprocessing_fn"


def _inputs(examples_uri=os.path.join(TFX_TESTDATA, "csv_example_gen")) -> dict:
    examples = standard_artifacts.Examples()
    examples.uri = examples_uri
    examples.split_names = artifact_utils.encode_split_names(["train", "eval"])
    schema = standard_artifacts.Schema()
    schema.uri = os.path.join(TFX_TESTDATA, "schema_gen")
    return {keys.EXAMPLES_KEY: [examples], keys.SCHEMA_KEY: [schema]}


def _properties(fn=component.PREPROCESSING_FN, config=None, **changes) -> dict:
    """What component.build gives TFX for the built-in function (materialize=False)."""
    return {keys.PREPROCESSING_FN_KEY: fn, keys.CUSTOM_CONFIG_KEY: json.dumps(config or CONFIG),
            keys.FORCE_TF_COMPAT_V1_KEY: 1, keys.DISABLE_STATISTICS_KEY: 1, **changes}


def _outputs(uri) -> dict:
    graph = standard_artifacts.TransformGraph()
    graph.uri = str(uri)
    return {keys.TRANSFORM_GRAPH_KEY: [graph]}


def _run(uri, fn=component.PREPROCESSING_FN, config=None) -> str:
    os.makedirs(uri, exist_ok=True)
    ours.Executor().Do(_inputs(), _outputs(uri), _properties(fn, config))
    return str(uri)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """(fast, stock) transform graph directories of the taxi data: the stock one written by
    ours.Executor handing a user's function to the stock executor."""
    root = tmp_path_factory.mktemp("transform")
    return _run(root / "fast"), _run(root / "stock", fn=USERS_FN)


def _transformed(graph_dir: str) -> dict:
    """The eval split's raw examples through `graph_dir`'s transform_fn, as numpy."""
    output = tft.TFTransformOutput(graph_dir)
    files = tf.io.gfile.glob(os.path.join(TFX_TESTDATA, "csv_example_gen", "Split-eval", "*"))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(100_000).get_single_element().numpy()
    # A tf.compat.v1 transform_fn (force_tf_compat_v1) is applied in a graph, as the Trainer does.
    with tf.compat.v1.Graph().as_default(), tf.compat.v1.Session() as session:
        raw = tf.io.parse_example(tf.constant(records), output.raw_feature_spec())
        transformed = output.transform_raw_features(raw)
        session.run(tf.compat.v1.tables_initializer())
        return session.run(transformed)


def _files(graph_dir: str) -> dict:
    """{relative path: bytes} of the artifact, the SavedModel's own files left out."""
    found = {}
    for folder, _, names in os.walk(graph_dir):
        for name in names:
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, graph_dir)
            if not relative.startswith(os.path.join("transform_fn", "saved_model")):
                with open(path, "rb") as f:
                    found[relative] = f.read()
    return found


@pytest.mark.slow  # the stock side is TFT's Beam pipeline
def test_same_transform_graph_as_the_stock_executor(graphs):
    fast, stock_dir = graphs
    mine, theirs = _files(fast), _files(stock_dir)
    assert sorted(mine) == sorted(theirs)
    vocabularies = [p for p in mine if p.startswith(os.path.join("transform_fn", "assets"))]
    assert len(vocabularies) == 2, vocabularies  # company and the label, payment_type
    for path in mine:  # vocabularies, metadata, transformed metadata, asset map: byte for byte
        assert mine[path] == theirs[path], path
    assert not os.path.exists(os.path.join(fast, ours.TEMP_DIR))

    ours_out, stock_out = _transformed(fast), _transformed(stock_dir)
    _assert_same_outputs(ours_out, stock_out)
    assert len(ours_out["payment_type"]) > 1000 and len(set(ours_out["company"].tolist())) > 10
    assert np.abs(ours_out["fare"]).max() > 0.5  # not all imputed zeros


@pytest.mark.slow
def test_same_transform_graph_for_a_regression_label_and_a_left_out_column(tmp_path):
    fast = _run(tmp_path / "fast", config=REGRESSION)
    stock_dir = _run(tmp_path / "stock", fn=USERS_FN, config=REGRESSION)
    mine, theirs = _files(fast), _files(stock_dir)
    assert mine == theirs and len([p for p in mine if "assets" in p]) == 2  # company, payment_type
    ours_out, stock_out = _transformed(fast), _transformed(stock_dir)
    assert "trip_start_timestamp" not in ours_out and ours_out["tips"].dtype == np.float32
    _assert_same_outputs(ours_out, stock_out)


def _assert_same_outputs(ours_out: dict, stock_out: dict) -> None:
    assert sorted(ours_out) == sorted(stock_out)
    for name in ours_out:
        if ours_out[name].dtype.kind in "iu":  # vocabulary ids
            np.testing.assert_array_equal(ours_out[name], stock_out[name], err_msg=name)
        else:
            # The z-scores: TFT sums mean and variance in float32 per batch, Beam over its
            # own (dynamic, up to 1,000 rows), this executor over 1,000 rows. Columns far from
            # 0 magnify the order: the pickup latitudes (41.9 +- 0.037) up to 1e-4 apart, each
            # within 7e-5 of the float64 value; the census tracts (1.7e10 +- 3.3e5, beyond
            # float32's 2,048 spacing) 3e-3 apart (this executor 2.7e-3 from the float64
            # value, Beam 3.4e-4; two Beam runs differ by 6e-5).
            tolerance = 5e-3 if name.endswith("census_tract") else 2e-4
            np.testing.assert_allclose(ours_out[name], stock_out[name], rtol=1e-5, atol=tolerance, err_msg=name)


def _plan(properties=None, outputs=None, beam_args=None, inputs=None, tmp_path="/nonexistent"):
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=beam_args) if beam_args else None
    return ours.Executor(context)._plan(inputs or _inputs(), outputs or _outputs(tmp_path), properties or _properties())


def test_the_built_in_function_on_the_in_process_runner_takes_the_fast_path():
    assert _plan() is not None
    assert _plan(beam_args=["--direct_num_workers=2"]) is not None  # still in process


@pytest.mark.parametrize("case, properties", [
    ("a user's module file", _properties(**{keys.MODULE_FILE_KEY: "/tmp/my_module.py"})),
    ("a user's packaged module", _properties(**{keys.MODULE_PATH_KEY: "my_module@/tmp/pkg.whl"})),
    ("another preprocessing_fn", _properties(fn=USERS_FN)),
    ("statistics", _properties(**{keys.DISABLE_STATISTICS_KEY: 0})),
    ("TF2 tracing", _properties(**{keys.FORCE_TF_COMPAT_V1_KEY: 0})),
    ("a splits config", _properties(**{keys.SPLITS_CONFIG_KEY: '{"analyze": ["eval"]}'})),
])
def test_anything_but_the_built_in_function_goes_to_the_stock_executor(case, properties):
    assert _plan(properties) is None, case


@pytest.mark.parametrize("beam_args", [["--runner=FlinkRunner"], ["--runner=PortableRunner"],
                                       ["--direct_running_mode=multi_processing"]])
def test_a_runner_other_than_the_in_process_one_goes_to_the_stock_executor(beam_args):
    assert _plan(beam_args=beam_args) is None


def test_materialized_examples_or_an_analyzer_cache_go_to_the_stock_executor():
    materialized = {**_outputs("/nonexistent"), keys.TRANSFORMED_EXAMPLES_KEY: [standard_artifacts.Examples()]}
    assert _plan(outputs=materialized) is None
    cache = {**_inputs(), keys.ANALYZER_CACHE_KEY: [standard_artifacts.TransformCache()]}
    assert _plan(inputs=cache) is None


def test_a_moved_private_tft_name_hands_the_run_to_the_stock_executor(monkeypatch, caplog):
    from tensorflow_transform import analyzers

    monkeypatch.delattr(analyzers, "_VocabOrderingType")
    with caplog.at_level("WARNING"):
        assert _plan() is None
    assert any("tensorflow_transform.analyzers._VocabOrderingType is gone" in r.getMessage() for r in caplog.records)


def _analysis(fn):
    plan = _plan()
    return ours.Analysis(plan["tft"], fn, plan["tfxio"], plan["schema"], plan["files"])


def test_an_analyzer_the_fast_path_does_not_compute_is_refused():
    def with_quantiles(inputs):
        return {"fare": tft.bucketize(preprocessing._dense(inputs["fare"], 0.0), 4)}

    with pytest.raises(ours.Unsupported, match="analyzer node CacheableCombineAccumulate of a QuantilesCombiner"):
        _analysis(with_quantiles)


def test_an_analyzer_that_reads_another_analyzers_result_is_refused():
    def two_phases(inputs):
        fare = preprocessing._dense(inputs["fare"], 0.0)
        centred = fare - tft.mean(fare)
        return {"fare": centred / tft.var(centred)}

    with pytest.raises(ours.Unsupported, match="second phase"):
        _analysis(two_phases)


def test_the_built_in_function_on_the_taxi_schema_is_supported():
    analysis = _analysis(lambda inputs: preprocessing.preprocessing_fn(inputs, CONFIG))
    # Every column is read (none is an identifier here), by four analyzers: three
    # vocabularies and one mean-and-variance over all numeric columns.
    assert sorted(analysis.needed) == sorted(f.name for f in _plan()["schema"].feature)
    assert len(analysis.sources) == 4


@pytest.mark.parametrize("module_file", [None, "/tmp/my_module.py"])
def test_the_pipeline_runs_transform_with_this_executor(tmp_path, module_file):
    """One executor class for both; it hands a module file to the stock executor itself."""
    from kubetfx.pipelines import pipeline
    from kubetfx.pipelines.config import PipelineConfig

    config = PipelineConfig(home=str(tmp_path), task="classification", module_file=module_file)
    transform = {c.id: c for c in pipeline.create_components(config)}["Transform"]
    assert transform.executor_spec.executor_class is ours.Executor
    fast = transform.exec_properties.get(keys.PREPROCESSING_FN_KEY) == ours.BUILT_IN
    assert fast is (module_file is None)
