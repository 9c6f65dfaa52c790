"""The batched Evaluator writes what TFX's Evaluator (TFMA) writes: same metric keys and
values, same validation result, same blessing; and it hands TFMA anything else.

Each case runs both executors on the same examples and SavedModels. The models are small
tf.Modules with the two signatures kubetfx's Trainer exports (serialized examples in), whose
accuracy / error is known by construction."""
from __future__ import annotations

import os

import numpy as np
import pytest

from kubetfx.components.evaluator import component, executor as batched
from testing_models import PENGUIN_CLASSES, save_gate_model, write_gate_examples
from kubetfx.pipelines.config import PipelineConfig

pytestmark = pytest.mark.slow

ROWS = 1000
CLASSES = PENGUIN_CLASSES


def _write_examples(root) -> "Examples":
    rng = np.random.default_rng(7)
    rows = {split: [(rng.random(), rng.normal(4000, 500), CLASSES[rng.integers(3)]) for _ in range(ROWS)]
            for split in ("train", "eval")}
    return write_gate_examples(root, rows)


def _save_model(path, task: str, quality: float) -> "Model":
    """classification: right on examples with x < quality (accuracy ~ quality);
    regression: predicts mass + 1000 * (1 - quality) (MAE exactly that)."""
    return save_gate_model(path, task, quality, offset=1000.0 * (1.0 - quality))


def _evaluate(executor_class, root, examples, model, baseline, eval_config) -> dict:
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(root / "evaluation"), str(root / "blessing")
    os.makedirs(blessing.uri)
    inputs = {"examples": [examples], "model": [model], "baseline_model": [baseline] if baseline else []}
    executor_class().Do(inputs, {"evaluation": [evaluation], "blessing": [blessing]},
                        {"eval_config": proto_utils.proto_to_json(eval_config), "example_splits": "null"})
    return {"evaluation": evaluation, "blessing": blessing}


def _results(outputs) -> dict:
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.writers import eval_config_writer
    from tfx.components.evaluator import constants

    uri = outputs["evaluation"].uri
    metrics = {}
    for record in tfma.load_metrics(uri):
        assert not record.slice_key.single_slice_keys  # the overall slice only
        for item in record.metric_keys_and_values:
            metrics[(item.key.name, item.key.model_name, item.key.is_diff)] = item.value.double_value.value
    blessing = outputs["blessing"]
    files = sorted(os.listdir(blessing.uri))
    config, _, _, models = eval_config_writer.load_eval_run(uri)
    return {"metrics": metrics, "validation": tfma.load_validation_result(uri), "blessing_files": files,
            "blessed": blessing.get_int_custom_property("blessed"), "config": config, "models": models,
            "baseline_uri": blessing.get_string_custom_property(constants.ARTIFACT_PROPERTY_BASELINE_MODEL_URI_KEY)}


def _both(tmp_path, task: str, candidate_quality: float, baseline_quality=None, **config) -> tuple:
    examples = _write_examples(tmp_path)
    model = _save_model(tmp_path / "candidate", task, candidate_quality)
    baseline = _save_model(tmp_path / "baseline", task, baseline_quality) if baseline_quality else None
    label = "species" if task == "classification" else "mass"
    eval_config = component.eval_config(PipelineConfig(label=label, task=task, **config))
    from tfx.components.evaluator import executor as stock

    ours = _results(_evaluate(batched.Executor, tmp_path / "ours", examples, model, baseline, eval_config))
    theirs = _results(_evaluate(stock.Executor, tmp_path / "stock", examples, model, baseline, eval_config))
    return ours, theirs


def _without_values(validation):
    """The validation result with each failing metric's value replaced by 6 digits of it."""
    validation = type(validation).FromString(validation.SerializeToString())
    for per_slice in validation.metric_validations_per_slice:
        for failure in per_slice.failures:
            value = failure.metric_value.double_value
            value.value = float(f"{value.value:.6g}")
    return validation


def _same(ours: dict, theirs: dict) -> None:
    assert ours["metrics"].keys() == theirs["metrics"].keys()
    for key, value in theirs["metrics"].items():
        assert ours["metrics"][key] == pytest.approx(value, rel=1e-6, abs=1e-6), key  # float32 sums
    assert _without_values(ours["validation"]) == _without_values(theirs["validation"])
    assert ours["config"] == theirs["config"]
    assert ours["models"] == theirs["models"]
    for key in ("blessing_files", "blessed", "baseline_uri"):
        assert ours[key] == theirs[key], key


def test_first_model_above_the_threshold_is_blessed_as_tfma_blesses_it(tmp_path):
    ours, theirs = _both(tmp_path, "classification", 0.9)
    _same(ours, theirs)
    assert list(ours["metrics"]) == [("sparse_categorical_accuracy", "", False)]
    assert ours["metrics"][("sparse_categorical_accuracy", "", False)] == pytest.approx(0.9, abs=0.05)
    assert ours["blessing_files"] == ["BLESSED"] and ours["validation"].validation_ok


def test_a_regression_against_the_baseline_is_not_blessed(tmp_path):
    ours, theirs = _both(tmp_path, "classification", 0.7, baseline_quality=0.9)
    _same(ours, theirs)
    assert ours["metrics"][("sparse_categorical_accuracy", "candidate", True)] == pytest.approx(-0.2, abs=0.05)
    failures = [f.metric_key for v in ours["validation"].metric_validations_per_slice for f in v.failures]
    assert [(k.name, k.is_diff) for k in failures] == [("sparse_categorical_accuracy", True)]
    assert ours["blessing_files"] == ["NOT_BLESSED"] and ours["baseline_uri"].endswith("baseline")


def test_regression_error_above_the_bound_is_not_blessed(tmp_path):
    ours, theirs = _both(tmp_path, "regression", 0.5, baseline_quality=0.5, eval_threshold=400.0)
    _same(ours, theirs)
    assert ours["metrics"][("mean_absolute_error", "candidate", False)] == pytest.approx(500.0, rel=1e-4)
    assert ours["metrics"][("mean_absolute_error", "candidate", True)] == pytest.approx(0.0, abs=1e-3)
    assert ours["blessing_files"] == ["NOT_BLESSED"]


def test_slices_are_handed_to_tfma(tmp_path):
    """A config the batched path does not compute (here a slice by feature) runs TFMA."""
    import tensorflow_model_analysis as tfma

    examples = _write_examples(tmp_path)
    model = _save_model(tmp_path / "candidate", "classification", 0.9)
    eval_config = component.eval_config(PipelineConfig(label="species", task="classification"))
    eval_config.slicing_specs.append(tfma.SlicingSpec(feature_keys=["species"]))
    with pytest.raises(batched.Unsupported, match="slices"):
        batched._check_config(eval_config)
    outputs = _evaluate(batched.Executor, tmp_path / "ours", examples, model, None, eval_config)
    slices = [record.slice_key for record in tfma.load_metrics(outputs["evaluation"].uri)]
    assert len(slices) == 4  # overall + one per species


def test_a_distributed_beam_runner_gets_tfma(tmp_path):
    """With --runner=DataflowRunner (Flink, Spark...) the evaluation scales out through TFMA."""
    from tfx.dsl.components.base import base_beam_executor

    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=["--runner=DataflowRunner"])
    with pytest.raises(batched.Unsupported, match="DataflowRunner"):
        batched.Executor(context)._plan({}, {})
    processes = base_beam_executor.BaseBeamExecutor.Context(
        beam_pipeline_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"])
    with pytest.raises(batched.Unsupported, match="multi_processing"):
        batched.Executor(processes)._plan({}, {})
    in_process = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=["--direct_num_workers=2"])
    with pytest.raises(batched.Unsupported, match="no eval_config"):  # past the runner check
        batched.Executor(in_process)._plan({}, {})


def test_an_empty_served_baseline_is_evaluated_as_no_baseline(tmp_path):
    """ServedBaseline with nothing served yet: same results as TFMA given no baseline."""
    from tfx.components.evaluator import executor as stock
    from tfx.types import standard_artifacts

    from kubetfx.components.evaluator import served_baseline

    examples = _write_examples(tmp_path)
    model = _save_model(tmp_path / "candidate", "classification", 0.9)
    empty = standard_artifacts.Model()
    empty.uri = str(tmp_path / "served")
    served_baseline.Executor().Do({"model": [model]}, {"baseline_model": [empty]},
                                  {"serving_dir": str(tmp_path / "nothing-served")})
    eval_config = component.eval_config(PipelineConfig(label="species", task="classification"))
    ours = _results(_evaluate(batched.Executor, tmp_path / "ours", examples, model, empty, eval_config))
    theirs = _results(_evaluate(stock.Executor, tmp_path / "stock", examples, model, None, eval_config))
    _same(ours, theirs)
    assert ours["blessing_files"] == ["BLESSED"] and ours["baseline_uri"] == ""


def test_a_moved_tfma_writer_name_hands_the_evaluation_to_tfma(tmp_path, monkeypatch, caplog):
    """An upgrade that reshapes TFMA's private eval-config writer (simulated: the same
    function under other parameter names; TFMA's own positional call still works) must not
    fail the stage: one log line, then TFMA's own evaluation, as the stock executor's."""
    from tensorflow_model_analysis.writers import eval_config_writer
    from tfx.components.evaluator import executor as stock

    original = eval_config_writer._serialize_eval_run

    def _serialize_eval_run(config, location, file_format, model_locations):
        return original(config, location, file_format, model_locations)
    monkeypatch.setattr(eval_config_writer, "_serialize_eval_run", _serialize_eval_run)
    examples = _write_examples(tmp_path)
    model = _save_model(tmp_path / "candidate", "classification", 0.9)
    eval_config = component.eval_config(PipelineConfig(label="species", task="classification"))
    with caplog.at_level("INFO"), caplog.at_level("INFO", logger="absl"):
        ours = _results(_evaluate(batched.Executor, tmp_path / "ours", examples, model, None, eval_config))
    lines = [r.getMessage() for r in caplog.records]
    seams = [line for line in lines if "upgrade changed it" in line]
    assert len(seams) == 1 and "eval_config_writer._serialize_eval_run" in seams[0], seams
    assert [line for line in lines if "general path" in line] == ["Evaluator: TFMA's general path (TFMA's writer names moved)"]
    theirs = _results(_evaluate(stock.Executor, tmp_path / "stock", examples, model, None, eval_config))
    _same(ours, theirs)


def test_rows_without_a_label_are_left_out_of_accuracy_and_error():
    """A row without a label (class id MISSING_LABEL, regression target NaN) is no example
    of the metric; before, an unlabeled row counted as a miss (accuracy) or made MAE NaN."""
    from kubetfx.components.transform.preprocessing import MISSING_LABEL
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.7, 0.3]])
    assert batched._accuracy(np.array([0, 1, MISSING_LABEL, MISSING_LABEL]), scores) == (2.0, 2)
    total, count = batched._absolute_error(np.array([1.0, np.nan, 3.0]), np.array([1.5, 9.0, 2.0]))
    assert (total, count) == (1.5, 2)
