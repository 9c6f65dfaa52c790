"""The gate against the served model on a small eval split (gate.py): a candidate one
labelled eval example worse than the baseline is blessed (accuracy moves in steps of 1/47,
coarser than change_tolerance 0.01), five examples worse is not, and on a large split the
configured tolerance holds. The batched path and TFMA's general path bless alike, and
neither counts an eval row without a label.

Real executor, real SavedModels and TFRecords (tests/testing_models.py). The eval split has
47 labelled rows at x = (i + 0.5) / 47 and 3 rows with an empty label; a model of quality
k / 47 is right on exactly k labelled rows."""
from __future__ import annotations

import os

import pytest

from kubetfx.components.evaluator import component, executor, gate
from kubetfx.pipelines.config import PipelineConfig
from testing_models import PENGUIN_CLASSES, save_gate_model, write_gate_examples

pytestmark = pytest.mark.slow

LABELLED = 47


def _rows(labelled: int, unlabeled: int) -> list:
    rows = [((i + 0.5) / labelled, 4000.0, PENGUIN_CLASSES[i % 3]) for i in range(labelled)]
    return rows + [(0.5, 4000.0, None)] * unlabeled


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """47 labelled eval rows and 3 without a label; models right on 40, 39 and 35 of them."""
    root = tmp_path_factory.mktemp("gate")
    examples = write_gate_examples(root, {"train": _rows(10, 0), "eval": _rows(LABELLED, 3)})
    models = {k: save_gate_model(root / f"right-on-{k}", "classification", k / LABELLED) for k in (40, 39, 35)}
    # An empty module file: TFX's executor finds no custom eval model or extractors in it,
    # and the batched path hands any module file to TFMA's general path.
    module_file = root / "empty_module.py"
    module_file.write_text("")
    return {"root": root, "examples": examples, "models": models, "module_file": str(module_file)}


def _evaluate(root, examples, model, baseline, module_file=None) -> dict:
    import tensorflow_model_analysis as tfma
    from tfx.types import standard_artifacts
    from tfx.utils import proto_utils

    config = PipelineConfig(label="species", task="classification")  # change_tolerance 0.01
    evaluation, blessing = standard_artifacts.ModelEvaluation(), standard_artifacts.ModelBlessing()
    evaluation.uri, blessing.uri = str(root / "evaluation"), str(root / "blessing")
    os.makedirs(blessing.uri)
    properties = {"eval_config": proto_utils.proto_to_json(component.eval_config(config)), "example_splits": '["eval"]'}
    if module_file:
        properties["module_file"] = module_file
    executor.Executor().Do({"examples": [examples], "model": [model], "baseline_model": [baseline]},
                           {"evaluation": [evaluation], "blessing": [blessing]}, properties)
    metrics = {(item.key.name, item.key.model_name, item.key.is_diff): item.value.double_value.value
               for record in tfma.load_metrics(evaluation.uri) if not record.slice_key.single_slice_keys
               for item in record.metric_keys_and_values}
    return {"metrics": metrics, "blessed": blessing.get_int_custom_property("blessed"),
            "files": sorted(os.listdir(blessing.uri)), "tolerance": gate.read(blessing),
            "validation_ok": tfma.load_validation_result(evaluation.uri).validation_ok,
            "evaluation": evaluation, "blessing": blessing}


def _both_paths(small, name: str, candidate: int) -> tuple:
    args = (small["examples"], small["models"][candidate], small["models"][40])
    batched = _evaluate(small["root"] / name / "batched", *args)
    general = _evaluate(small["root"] / name / "tfma", *args, module_file=small["module_file"])
    return batched, general


def _accuracy(result, model: str) -> float:
    return result["metrics"][("sparse_categorical_accuracy", model, False)]


@pytest.fixture(scope="module")
def one_worse(small) -> tuple:
    """(batched, general) of a candidate one labelled eval example worse than the served model."""
    return _both_paths(small, "one-worse", 39)


def test_one_eval_example_worse_than_the_served_model_is_blessed_on_both_paths(one_worse):
    batched, general = one_worse
    for result in (general, batched):
        # The rows without a label are no example: 39 / 47 and 40 / 47, not 39 / 50 (TFMA's before).
        assert _accuracy(result, "candidate") == pytest.approx(39 / LABELLED, abs=1e-6)
        assert _accuracy(result, "baseline") == pytest.approx(40 / LABELLED, abs=1e-6)
    for result in (batched, general):
        assert result["blessed"] == 1 and result["files"] == ["BLESSED"] and result["validation_ok"]
        tolerance = result["tolerance"]
        assert (tolerance.configured, tolerance.examples) == (0.01, LABELLED)
        assert tolerance.applied == pytest.approx(1 / LABELLED, abs=1e-5)
        assert tolerance.line() == ("change tolerance 0.02128: one of 47 labelled eval examples "
                                    "(change_tolerance 0.01 is finer than the eval split resolves)")
    assert batched["metrics"].keys() == general["metrics"].keys()


def test_five_eval_examples_worse_is_refused_on_both_paths(small):
    batched, general = _both_paths(small, "five-worse", 35)
    for result in (batched, general):
        assert _accuracy(result, "candidate") == pytest.approx(35 / LABELLED, abs=1e-6)
        assert result["blessed"] == 0 and result["files"] == ["NOT_BLESSED"] and not result["validation_ok"]
        assert result["tolerance"].applied == pytest.approx(1 / LABELLED, abs=1e-5)


def test_on_a_large_split_change_tolerance_applies_as_configured(tmp_path):
    """1,000 labelled eval rows resolve 0.001: change_tolerance 0.01 is kept, and a
    candidate 0.02 worse (20 examples, one example's worth on 47 rows) is refused."""
    examples = write_gate_examples(tmp_path, {"train": _rows(10, 0), "eval": _rows(1000, 0)})
    baseline = save_gate_model(tmp_path / "baseline", "classification", 0.9)
    candidate = save_gate_model(tmp_path / "candidate", "classification", 0.88)
    result = _evaluate(tmp_path, examples, candidate, baseline)
    assert result["metrics"][("sparse_categorical_accuracy", "candidate", True)] == pytest.approx(-0.02, abs=1e-6)
    assert result["blessed"] == 0 and result["files"] == ["NOT_BLESSED"]
    assert (result["tolerance"].applied, result["tolerance"].configured) == (0.01, 0.01)
    assert result["tolerance"].line() == "change tolerance 0.01 (change_tolerance)"


def test_the_summary_line_says_which_tolerance_and_why(small):
    """As the run summary reads it from ML Metadata (the artifacts' MLMD protos)."""
    from kubetfx.components import stage_outputs

    result = _evaluate(small["root"] / "summary", small["examples"], small["models"][39], small["models"][40])
    line = stage_outputs.describe("Evaluator", {"ModelEvaluation": result["evaluation"].mlmd_artifact,
                                                "ModelBlessing": result["blessing"].mlmd_artifact})
    assert line.endswith("passed; BLESSED; change tolerance 0.02128: one of 47 labelled eval examples "
                         "(change_tolerance 0.01 is finer than the eval split resolves)"), line


def test_the_evaluation_names_the_eval_split_it_read_and_counts_the_rows_left_out(small, one_worse):
    """TFMA's general path reads a labelled-only copy of the eval split, removed after the
    evaluation; the eval_config.json beside the evaluation named no file a reader could
    open (before: "<user provided PCollection>"). On both paths it names the eval split's
    own files, as tfma.load_eval_result reads them, and the ModelEvaluation counts the 3
    rows without a label that no metric counted."""
    import glob

    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.writers import eval_config_writer

    eval_files = sorted(glob.glob(os.path.join(small["examples"].uri, "Split-eval", "*")))
    for result in one_worse:
        uri = result["evaluation"].uri
        loaded = tfma.load_eval_result(uri, model_name="candidate")
        assert loaded.data_location.split(",") == eval_files and loaded.file_format == "tfrecords"
        assert os.path.isdir(loaded.model_location)
        _, _, _, models = eval_config_writer.load_eval_run(uri)
        assert sorted(models) == ["baseline", "candidate"] and all(os.path.isdir(p) for p in models.values())
        assert result["evaluation"].get_int_custom_property(gate.ROWS_WITHOUT_LABEL) == 3
        assert not glob.glob(uri.rstrip("/") + "-*")  # the labelled-only copy is gone
