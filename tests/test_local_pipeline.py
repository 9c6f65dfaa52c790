"""End to end: the nine-stage pipeline on the embedded data, run by the real CLI with real
TFX executors, then every stage's output checked on disk and in ML Metadata."""
from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest

from conftest import executions_by_stage

pytestmark = [pytest.mark.slow, pytest.mark.serving]

NINE_STAGES = {"ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
               "Trainer", "Evaluator", "InfraValidator", "Pusher"}


def _stage(states: dict, suffix: str) -> list:
    return next(v for k, v in states.items() if k.endswith(suffix))


def _stage_ids(states: dict) -> set:
    return {next((s for s in NINE_STAGES if k.endswith(s)), k) for k in states}


def _only(pattern: str) -> str:
    found = sorted(glob.glob(pattern))
    assert found, f"nothing matches {pattern}"
    return found[-1]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory, run_kubetfx):
    home = tmp_path_factory.mktemp("home")
    result = run_kubetfx("run", "--home", home)
    assert result.returncode == 0, result.stdout + result.stderr
    return home, result


@pytest.fixture(scope="module")
def root(default_run):
    return default_run[0] / "pipelines" / "kubetfx-penguin"


def test_all_nine_stages_completed_in_metadata(default_run):
    home, _ = default_run
    states = executions_by_stage(home / "metadata" / "kubetfx-penguin.sqlite")
    assert NINE_STAGES <= _stage_ids(states)
    for stage in NINE_STAGES:
        assert _stage(states, stage) == ["COMPLETE"], stage


def test_summary_names_each_stage_and_the_push(default_run):
    home, result = default_run
    for stage in ("StatisticsGen", "Evaluator", "InfraValidator", "Pusher"):
        assert stage in result.stdout
    assert "BLESSED" in result.stdout and "INFRA BLESSED" in result.stdout
    assert f"model pushed to {home}/serving/kubetfx-penguin/" in result.stdout


def test_statistics_count_every_row(root):
    from kubetfx.components import stage_outputs

    counts = stage_outputs.examples_per_split(_only(f"{root}/StatisticsGen/statistics/*"))
    assert set(counts) == {"train", "eval", "test"}
    assert sum(counts.values()) == 344  # every penguin, none lost or duplicated
    assert counts["train"] > 3 * counts["eval"] and counts["test"] > 40  # 4:1:1 hash buckets


def test_the_trainer_read_the_whole_training_split_in_epochs(root, default_run):
    """Every training example, every epoch (issue 15): not a fixed number of steps."""
    from kubetfx.components import stage_outputs

    counts = stage_outputs.examples_per_split(_only(f"{root}/StatisticsGen/statistics/*"))
    record = json.loads(Path(_only(f"{root}/Trainer/model_run/*"), "training.json").read_text())
    assert record["train_examples"] == counts["train"]
    assert 1 <= record["best_epoch"] <= record["epochs"] <= 100
    assert record["stopped"] in ("early stopping", "epoch limit")
    assert record["data"] == "memory"  # 204 rows: read once, not parsed again every epoch
    assert f"trained on {counts['train']} examples x {record['epochs']} epochs" in default_run[1].stdout


def test_schema_is_the_curated_one(root):
    from tfx.utils import io_utils

    schema = io_utils.SchemaReader().read(os.path.join(_only(f"{root}/*SchemaGen/schema/*"), "schema.pbtxt"))
    species = next(d for d in schema.string_domain if d.name == "species")
    assert list(species.value) == ["Adelie", "Chinstrap", "Gentoo"]


def test_no_anomalies_in_the_embedded_data(root):
    from kubetfx.components import stage_outputs

    found = stage_outputs.anomalies_per_split(_only(f"{root}/ExampleValidator/anomalies/*"))
    assert set(found) == {"train", "eval", "test"}
    assert all(not a.anomaly_info for a in found.values())


def test_transform_graph_has_vocabularies_and_scales(root):
    import tensorflow_transform as tft

    output = tft.TFTransformOutput(_only(f"{root}/Transform/transform_graph/*"))
    assert sorted(x.decode() for x in output.vocabulary_by_name("label")) == ["Adelie", "Chinstrap", "Gentoo"]
    assert output.vocabulary_size_by_name("vocab_island") == 3
    spec = output.transformed_feature_spec()
    assert spec["bill_length_mm"].dtype.name == "float32" and spec["island"].dtype.name == "int64"


def test_transform_made_one_analysis_pass(root):
    # The built-in Trainer transforms raw examples as it reads: nothing materialized, and no
    # pre/post-transform statistics repeating StatisticsGen's pass.
    assert glob.glob(f"{root}/Transform/transform_graph/*")
    for output in ("transformed_examples", "pre_transform_stats", "post_transform_stats"):
        assert not any(os.listdir(d) for d in glob.glob(f"{root}/Transform/{output}/*")), output


def test_model_serves_raw_examples_with_class_names(root):
    import tensorflow as tf

    model = tf.saved_model.load(os.path.join(_only(f"{root}/Trainer/model/*"), "Format-Serving"))
    assert {"serving_default", "transform_features"} <= set(model.signatures)
    example = tf.train.Example()
    for key, value in {"island": b"Biscoe", "sex": b"male"}.items():
        example.features.feature[key].bytes_list.value.append(value)
    for key, value in {"bill_length_mm": 47.5, "bill_depth_mm": 15.0}.items():
        example.features.feature[key].float_list.value.append(value)
    for key, value in {"flipper_length_mm": 218, "body_mass_g": 5200, "year": 2008}.items():
        example.features.feature[key].int64_list.value.append(value)
    out = model.signatures["serving_default"](examples=tf.constant([example.SerializeToString()]))
    assert out["probabilities"].shape == (1, 3)
    assert out["classes"].numpy()[0] == b"Gentoo"  # a large Biscoe penguin


def test_evaluation_meets_the_threshold_and_blesses(root):
    import tensorflow_model_analysis as tfma
    from kubetfx.components import stage_outputs

    evaluation = _only(f"{root}/Evaluator/evaluation/*")
    assert tfma.load_validation_result(evaluation).validation_ok
    value, bound = stage_outputs.gated_metrics(evaluation)["sparse_categorical_accuracy"]
    assert value >= 0.9 and bound == ">= 0.6"
    assert os.path.exists(os.path.join(_only(f"{root}/Evaluator/blessing/*"), "BLESSED"))


def test_the_test_split_is_held_out_from_transform_training_and_blessing(root):
    """Transform's analysis saw the train split only (a z-score's mean and deviation are the
    train split's statistics), the Trainer trained on the train split, the blessing's
    metrics read the eval split's files only; the test split went to the acceptance test."""
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    from kubetfx.components import stage_outputs
    from kubetfx.components.evaluator import acceptance

    statistics = _only(f"{root}/StatisticsGen/statistics/*")
    counts = stage_outputs.examples_per_split(statistics)
    numeric = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")
    stats = {}
    for split in counts:
        features = tfdv.load_stats_binary(os.path.join(statistics, f"Split-{split}", "FeatureStats.pb")).datasets[0]
        stats[split] = {f.path.step[0]: f.num_stats for f in features.features if f.path.step[0] in numeric}
    model = tf.saved_model.load(os.path.join(_only(f"{root}/Trainer/model/*"), "Format-Serving"))
    examples = []
    for x in (0.0, 1000.0):  # far apart: float32 z-scores keep the mean and deviation precise
        example = tf.train.Example()
        for name in numeric:
            kind = "float_list" if name.startswith("bill") else "int64_list"
            getattr(example.features.feature[name], kind).value.append(int(x) if kind == "int64_list" else x)
        examples.append(example.SerializeToString())
    z = model.signatures["transform_features"](examples=tf.constant(examples))
    leaks = []
    for name in numeric:
        std = 1000.0 / float(z[name][1] - z[name][0])
        mean = -float(z[name][0]) * std
        train = stats["train"][name]
        assert mean == pytest.approx(train.mean, rel=1e-5) and std == pytest.approx(train.std_dev, rel=1e-3), name
        pooled = sum(counts[s] * stats[s][name].mean for s in ("train", "test")) / (counts["train"] + counts["test"])
        leaks.append(abs(pooled - train.mean) / train.mean)
    assert max(leaks) > 1e-3  # the train and test splits differ: the test split's rows would show

    record = json.loads(Path(_only(f"{root}/Trainer/model_run/*"), "training.json").read_text())
    assert record["train_examples"] == counts["train"]
    evaluation = _only(f"{root}/Evaluator/evaluation/*")
    location = json.loads(Path(evaluation, "eval_config.json").read_text())["dataLocation"]
    assert location and all("/Split-eval/" in f for f in location.split(","))
    from kubetfx.pipelines.record import mlmd

    store = mlmd.open_store(root.parent.parent / "metadata" / "kubetfx-penguin.sqlite")
    blessing = min(store.get_artifacts_by_type("ModelBlessing"), key=lambda a: a.id)  # the first run's
    result = acceptance.read(blessing)
    assert result.examples == counts["test"] and result.metric == "sparse_categorical_accuracy"
    assert 0.8 <= result.value <= 1.0


def test_the_acceptance_test_is_in_the_summary_models_and_the_report(default_run, tmp_path, capsys):
    import re
    from kubetfx.pipelines import cli  # in process: the commands' own start-up is not what is tested here

    home, result = default_run
    line = re.search(r"test split sparse_categorical_accuracy (\d\.\d{3}) \((\d+) held-out examples\)", result.stdout)
    assert line, result.stdout
    value, examples = float(line.group(1)), int(line.group(2))
    capsys.readouterr()
    assert cli.main(["models", "--home", str(home), "--json"]) == 0
    (version,) = json.loads(capsys.readouterr().out)["versions"]
    assert version["acceptance"]["metric"] == "sparse_categorical_accuracy"
    assert round(version["acceptance"]["value"], 3) == value and version["acceptance"]["examples"] == examples
    assert cli.main(["models", "--home", str(home)]) == 0
    table = capsys.readouterr().out
    assert "test split" in table.splitlines()[0] and f" {value:.3f} " in table.splitlines()[1], table
    page = tmp_path / "report.html"
    assert cli.main(["report", "--home", str(home), "--output", str(page)]) == 0
    html = page.read_text()
    assert (f"Acceptance test: test split sparse_categorical_accuracy {value:.3f} ({examples} held-out examples)"
            in html)
    assert "<td>Acceptance test</td><td><span class=\"pill new\">measured</span>" in html


def test_infra_validator_blessed_the_model(root):
    assert os.path.exists(os.path.join(_only(f"{root}/InfraValidator/blessing/*"), "INFRA_BLESSED"))


def test_pushed_model_is_a_complete_versioned_saved_model(default_run):
    import tensorflow as tf

    home, _ = default_run
    versions = os.listdir(home / "serving" / "kubetfx-penguin")
    assert len(versions) == 1 and versions[0].isdigit()  # no staging leftovers
    pushed = home / "serving" / "kubetfx-penguin" / versions[0]
    assert (pushed / "saved_model.pb").exists()
    assert "serving_default" in tf.saved_model.load(str(pushed)).signatures


def test_the_pushed_version_has_an_onnx_copy_that_predicts_as_the_saved_model(default_run, root):
    """The ONNX copy (onnxruntime, CPU) and the SavedModel (TensorFlow) on the whole eval
    split: the same class ids and names, probabilities within 1e-5 absolute (float32
    round-off; measured 1.2e-7). The ONNX inputs are the network's, after the transform
    (onnx_export's input contract: transform_features, packed as the Trainer packs them);
    the outcome is on the PushedModel in ML Metadata."""
    import numpy as np
    import onnxruntime
    import tensorflow as tf
    import tensorflow_transform as tft
    from kubetfx.components.pusher import onnx_export
    from kubetfx.components.trainer import model
    from kubetfx.pipelines.record import mlmd

    home, _ = default_run
    serving = home / "serving" / "kubetfx-penguin"
    version = serving / min(os.listdir(serving), key=int)
    records = glob.glob(os.path.join(_only(f"{root}/*ExampleGen/examples/*"), "Split-eval", "*"))
    examples = tf.constant([r.numpy() for r in tf.data.TFRecordDataset(records, compression_type="GZIP")])
    saved = tf.saved_model.load(str(version))
    expected = {k: v.numpy() for k, v in saved.signatures["serving_default"](examples=examples).items()}
    layout = model.feature_layout(tft.TFTransformOutput(_only(f"{root}/Transform/transform_graph/*")), "species")
    inputs = model.pack(saved.signatures["transform_features"](examples=examples), layout)
    session = onnxruntime.InferenceSession(str(version / onnx_export.ONNX_FILE), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()],
                   session.run(None, {name: tensor.numpy() for name, tensor in inputs.items()})))
    assert len(expected["class_ids"]) == examples.shape[0] > 20
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=0, atol=1e-5)
    assert (got["class_ids"] == expected["class_ids"]).all()
    assert [c.encode() for c in got["classes"]] == list(expected["classes"])
    store = mlmd.open_store(root.parent.parent / "metadata" / "kubetfx-penguin.sqlite")
    pushed = min(store.get_artifacts_by_type("PushedModel"), key=lambda a: a.id)
    assert pushed.custom_properties[onnx_export.OUTCOME_PROPERTY].string_value.startswith("exported in ")


def test_rerun_reuses_the_cache_and_pushes_nothing_new(default_run, run_kubetfx):
    home, _ = default_run
    result = run_kubetfx("run", "--home", home)
    assert result.returncode == 0, result.stdout + result.stderr
    states = executions_by_stage(home / "metadata" / "kubetfx-penguin.sqlite")
    for stage in ("StatisticsGen", "Transform", "Trainer"):
        assert _stage(states, stage) == ["COMPLETE", "CACHED"], stage
    # The same model is already served: the re-run keeps one version, though the version
    # holds the training summary beside the model (assets.extra/kubetfx/) and the
    # Pusher's input model does not.
    (version,) = os.listdir(home / "serving" / "kubetfx-penguin")
    summary = home / "serving" / "kubetfx-penguin" / version / "assets.extra" / "kubetfx"
    assert (summary / "schema.pbtxt").exists() and (summary / "statistics" / "Split-train" / "FeatureStats.pb").exists()


def test_retraining_pushes_a_second_version_with_the_new_weights(default_run, run_kubetfx, tmp_path):
    home, _ = default_run
    serving = home / "serving" / "kubetfx-penguin"
    # Another learning rate: the Trainer runs again (new weights; the same data and seed alone
    # would give the same model, which the Pusher does not publish twice). The default gate:
    # both models are right on every eval row, and its floor allows one row worse.
    config = tmp_path / "retrain.yaml"
    config.write_text("learning_rate: 0.02\n")
    result = run_kubetfx("run", "--home", home, "--config", config)
    assert result.returncode == 0, result.stdout + result.stderr
    first, second = sorted(os.listdir(serving), key=int)
    assert f"pushed to {serving / second}" in result.stdout
    weights = [(serving / v / "variables" / "variables.data-00000-of-00001").read_bytes() for v in (first, second)]
    assert weights[0] != weights[1]


def test_a_model_below_the_acceptance_threshold_is_not_pushed(default_run, run_kubetfx, tmp_path):
    """Last: the Trainer's output is reused (cache); the Evaluator blesses it on the eval split
    (no worse than the served model there, under the default gate), then its acceptance test
    on the test split cannot reach 1.01: NOT_BLESSED, nothing pushed, one line, exit 4, and
    the report says why."""
    home, _ = default_run
    serving = home / "serving" / "kubetfx-penguin"
    before = sorted(os.listdir(serving))
    result = run_kubetfx("run", "--home", home, "--acceptance-threshold", "1.01")
    assert result.returncode == 4, result.stdout + result.stderr
    assert _stage(executions_by_stage(home / "metadata" / "kubetfx-penguin.sqlite"), "Trainer")[-1] == "CACHED"
    assert "needs >= 1.01: FAILED" in result.stdout and "NOT blessed" in result.stdout
    refusal = [line for line in result.stderr.splitlines() if "NOT pushed" in line]
    assert len(refusal) == 1 and refusal[0].startswith(
        "kubetfx: model NOT pushed: acceptance test sparse_categorical_accuracy "), result.stderr
    assert refusal[0].endswith("on the held-out test split is below acceptance_threshold 1.01")
    assert sorted(os.listdir(serving)) == before
    from kubetfx.pipelines import cli

    page = tmp_path / "report.html"
    assert cli.main(["report", "--home", str(home), "--output", str(page)]) == 0
    assert "below acceptance_threshold 1.01" in page.read_text()
