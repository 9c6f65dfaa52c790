"""`kubetfx run --tune`: TFX's Tuner (KerasTuner) searches before the Trainer, its trials
are artifacts in ML Metadata, and the Trainer trains the best hyperparameters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import executions_by_stage


@pytest.mark.slow
def test_tune_searches_records_the_trials_and_trains_the_best(tmp_path, run_kubetfx):
    config = tmp_path / "tune.yaml"
    config.write_text("tune_trials: 2\ntune_epochs: 3\n")
    home = tmp_path / "home"
    result = run_kubetfx("run", "--tune", "--config", config, "--home", home)
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert executions_by_stage(home / "metadata" / "kubetfx-penguin.sqlite")["Tuner"] == ["COMPLETE"]

    from kubetfx.pipelines.record import mlmd

    store = mlmd.open_store(home / "metadata" / "kubetfx-penguin.sqlite")
    (best,) = store.get_artifacts_by_type("HyperParameters")
    (results,) = store.get_artifacts_by_type("TunerResults")
    best_values = json.loads((Path(best.uri) / "best_hyperparameters.txt").read_text())["values"]
    trials = json.loads((Path(results.uri) / "tuner_results.json").read_text())
    assert len(trials) == 2 and {"learning_rate", "units", "layers"} <= set(trials[0])
    assert trials[0]["score"] <= trials[1]["score"]  # best first
    (model_run,) = store.get_artifacts_by_type("ModelRun")
    training = json.loads((Path(model_run.uri) / "training.json").read_text())
    assert training["tuned"] == best_values  # the Trainer trained what the Tuner found best
    assert training["hidden"][0] == best_values["units"] and len(training["hidden"]) == best_values["layers"]
    assert "tuned: 2 trials, best val_loss " in result.stdout
    assert "tuned hyperparameters layers=" in result.stdout


def test_a_bad_tune_budget_is_one_line_and_exit_2(tmp_path, run_kubetfx):
    config = tmp_path / "tune.yaml"
    config.write_text("tune_trials: many\n")
    result = run_kubetfx("run", "--tune", "--config", config, "--home", tmp_path / "home")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "tune_trials" in line
