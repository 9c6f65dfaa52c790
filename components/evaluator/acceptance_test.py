"""The acceptance test: the Evaluator blesses on the eval split alone, then measures a
blessed model once on the held-out test split, records it on the blessing, and with a
threshold refuses the push of a model below it.

Real executor, real SavedModels and TFRecords. The model is right exactly on examples with
x < QUALITY; the test split draws x from a higher range than eval, so the two splits give
different, known accuracies and each number shows which split it came from."""
from __future__ import annotations

import os

import numpy as np
import pytest

from kubetfx.components.evaluator import acceptance, component, executor
from testing_models import PENGUIN_CLASSES, save_gate_model, write_gate_examples
from kubetfx.pipelines.config import PipelineConfig

pytestmark = pytest.mark.slow

CLASSES = PENGUIN_CLASSES
QUALITY = 0.8
ROWS = 400
# (low, high) of x per split: eval accuracy ~0.8, test accuracy ~0.6.
X_RANGE = {"train": (0.0, 1.0), "eval": (0.0, 1.0), "test": (0.5, 1.0)}


def _write_examples(root, splits=("train", "eval", "test")):
    rng = np.random.default_rng(11)
    xs, rows = {}, {}
    for split in splits:
        xs[split] = rng.uniform(*X_RANGE[split], ROWS).astype(np.float32)
        rows[split] = [(x, 4000.0 + 1000.0 * x, CLASSES[rng.integers(3)]) for x in xs[split]]
    return write_gate_examples(root, rows), xs


def _save_model(path, task: str):
    """classification: right exactly where x < QUALITY; regression: predicts 4000 (error 1000 x)."""
    return save_gate_model(path, task, QUALITY, mass_weight=0.0, offset=4000.0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("acceptance")
    examples, xs = _write_examples(root)
    return {"root": root, "examples": examples, "xs": xs,
            "classifier": _save_model(root / "classifier", "classification"),
            "regressor": _save_model(root / "regressor", "regression")}


def _evaluate(root, examples, model, task: str, **config):
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    label = "species" if task == "classification" else "mass"
    config = PipelineConfig(label=label, task=task, **config)
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(root / "evaluation"), str(root / "blessing")
    os.makedirs(blessing.uri)
    properties = {"eval_config": proto_utils.proto_to_json(component.eval_config(config)),
                  "example_splits": '["eval"]'}
    if config.acceptance_threshold is not None:
        properties[acceptance.THRESHOLD_KEY] = config.acceptance_threshold
    executor.Executor().Do({"examples": [examples], "model": [model], "baseline_model": []},
                           {"evaluation": [evaluation], "blessing": [blessing]}, properties)
    return evaluation, blessing


def _eval_metric(evaluation) -> float:
    import tensorflow_model_analysis as tfma

    (record,) = tfma.load_metrics(evaluation.uri)
    (item,) = record.metric_keys_and_values
    return item.value.double_value.value


def test_blessed_on_eval_then_measured_once_on_the_held_out_test_split(data, tmp_path):
    xs = data["xs"]
    evaluation, blessing = _evaluate(tmp_path, data["examples"], data["classifier"], "classification",
                                     eval_threshold=0.5)
    # The blessing's metric is the eval split's alone; the acceptance test's the test split's.
    assert _eval_metric(evaluation) == pytest.approx(np.mean(xs["eval"] < QUALITY), abs=1e-6)
    result = acceptance.read(blessing)
    assert result.metric == "sparse_categorical_accuracy" and result.examples == ROWS
    assert result.value == pytest.approx(np.mean(xs["test"] < QUALITY), abs=1e-6)
    assert abs(result.value - _eval_metric(evaluation)) > 0.1
    assert result.threshold is None and result.passed is None and result.refusal() is None
    assert blessing.get_int_custom_property("blessed") == 1 and os.listdir(blessing.uri) == ["BLESSED"]
    assert result.line().startswith(f"test split sparse_categorical_accuracy {result.value:.3f} ({ROWS} held-out")


def test_a_model_below_the_acceptance_threshold_is_not_blessed(data, tmp_path):
    """Eval accuracy ~0.8 blesses it (bound 0.5); test accuracy ~0.6 is below 0.7."""
    evaluation, blessing = _evaluate(tmp_path, data["examples"], data["classifier"], "classification",
                                     eval_threshold=0.5, acceptance_threshold=0.7)
    import tensorflow_model_analysis as tfma

    assert tfma.load_validation_result(evaluation.uri).validation_ok  # the eval split passed
    result = acceptance.read(blessing)
    assert result.threshold == 0.7 and result.passed is False
    assert blessing.get_int_custom_property("blessed") == 0 and os.listdir(blessing.uri) == ["NOT_BLESSED"]
    assert result.refusal() == (f"model NOT pushed: acceptance test sparse_categorical_accuracy "
                                f"{result.value:.4g} on the held-out test split is below acceptance_threshold 0.7")


def test_regression_is_judged_by_its_error_as_an_upper_bound(data, tmp_path):
    xs = data["xs"]
    _, blessing = _evaluate(tmp_path / "pass", data["examples"], data["regressor"], "regression",
                            acceptance_threshold=800.0)
    result = acceptance.read(blessing)
    assert result.metric == "mean_absolute_error"
    assert result.value == pytest.approx(1000.0 * np.mean(xs["test"]), rel=1e-4)  # ~750
    assert result.passed is True and blessing.get_int_custom_property("blessed") == 1
    _, blessing = _evaluate(tmp_path / "fail", data["examples"], data["regressor"], "regression",
                            acceptance_threshold=700.0)
    assert acceptance.read(blessing).passed is False and blessing.get_int_custom_property("blessed") == 0
    assert "is above acceptance_threshold 700" in acceptance.read(blessing).refusal()


def test_a_model_the_eval_split_does_not_bless_is_not_measured(data, tmp_path):
    _, blessing = _evaluate(tmp_path, data["examples"], data["classifier"], "classification", eval_threshold=0.95)
    assert blessing.get_int_custom_property("blessed") == 0
    assert acceptance.read(blessing) is None


def test_examples_without_a_test_split_are_blessed_as_before_unless_a_threshold_asks(data, tmp_path):
    examples, _ = _write_examples(tmp_path, splits=("train", "eval"))
    _, blessing = _evaluate(tmp_path / "no-gate", examples, data["classifier"], "classification", eval_threshold=0.5)
    assert blessing.get_int_custom_property("blessed") == 1
    assert acceptance.read(blessing) is None
    _, blessing = _evaluate(tmp_path / "gate", examples, data["classifier"], "classification",
                            eval_threshold=0.5, acceptance_threshold=0.1)
    assert blessing.get_int_custom_property("blessed") == 0
    assert acceptance.read(blessing).refusal() == ("model NOT pushed: the acceptance test could not be computed "
                                                   "(the examples have no 'test' split)")


def test_the_record_reads_back_from_ml_metadata_and_from_text_properties():
    """As `models` and the report read it (an MLMD artifact), and as the local KFP backend
    hands properties over (numbers that are not whole as text)."""
    from ml_metadata.proto import metadata_store_pb2

    proto = metadata_store_pb2.Artifact()
    for key, value in {acceptance.METRIC: "mean_absolute_error", acceptance.VALUE: "2.5",
                       acceptance.BOUND: "1.5"}.items():
        proto.custom_properties[key].string_value = value
    for key, value in {acceptance.EXAMPLES: 58, acceptance.PASSED: 0}.items():
        proto.custom_properties[key].int_value = value
    result = acceptance.read(proto)
    assert (result.value, result.threshold, result.passed, result.examples) == (2.5, 1.5, False, 58)
    assert result.line() == ("test split mean_absolute_error 2.500 (58 held-out examples), needs <= 1.5: FAILED")
    assert acceptance.read(metadata_store_pb2.Artifact()) is None


def test_after_tfmas_general_path_the_model_is_loaded_for_the_acceptance_test(data, tmp_path):
    """When the stock executor blessed (a config the batched path hands over), `_accept`
    has no loaded model: it loads the candidate itself and measures the same number."""
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    config = PipelineConfig(label="species", task="classification", eval_threshold=0.5)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    os.makedirs(blessing.uri)
    open(os.path.join(blessing.uri, "BLESSED"), "w").close()
    blessing.set_int_custom_property("blessed", 1)  # as TFX's executor leaves it
    executor.Executor._accept({"examples": [data["examples"]], "model": [data["classifier"]]},
                              {"blessing": [blessing]},
                              {"eval_config": proto_utils.proto_to_json(component.eval_config(config))}, [])
    result = acceptance.read(blessing)
    assert result.value == pytest.approx(np.mean(data["xs"]["test"] < QUALITY), abs=1e-6) and result.examples == ROWS
