"""`kubetfx rollout` on real files: a serving directory of versions, rollout.json, a real
inference log and labels; --auto advances a good candidate, aborts a bad one, promotes at
the last step below 100%; every decision lands in the history; the run's staged hook."""
import json
import time

import pytest

from rollout_traffic import labels, write_log
from kubetfx.components.serving import rollout_state
from kubetfx.pipelines import cli
from kubetfx.pipelines.config import PipelineConfig, RolloutConfig
from kubetfx.pipelines.record import rollout_history
from kubetfx.pipelines.serving import inference_log, rollout_command


def config_file(tmp_path, home, **rollout):
    path = tmp_path / "config.yaml"
    path.write_text(json.dumps({"home": str(home), "task": "classification",
                                "rollout": {"plan": [10, 50, 100], "min_samples": 40, "max_metric_loss": 0.1, **rollout}}))
    return path


def versions(config, *numbers):
    for n in numbers:
        (config.serving_dir / str(n)).mkdir(parents=True)
        (config.serving_dir / str(n) / "saved_model.pb").write_bytes(b"a graph without weights")


@pytest.fixture
def setup(tmp_path):
    path = config_file(tmp_path, tmp_path / "home")
    config = PipelineConfig.from_yaml(str(path))
    versions(config, 1, 2)
    return config, path


def rollout(path, *args):
    return cli.main(["rollout", *args, "--config", str(path), "--json"])


def traffic(config, candidate_right: bool, n: int = 50):
    """n labelled requests per track since now; stable always right."""
    stamp = time.time() + 1
    rows = [(f"s{i}-{stamp}", 1, "stable", "yes", i, stamp) for i in range(n)]
    rows += [(f"c{i}-{stamp}", 2, "candidate", "yes" if candidate_right else "no", i, stamp) for i in range(n)]
    write_log(inference_log.log_dir(config), rows)
    return [f"{r[0]},yes" for r in rows]


def test_start_advance_abort_and_the_history(setup, capsys):
    config, path = setup
    assert rollout(path, "start") == 0
    state = rollout_state.load(config.serving_dir)
    assert (state.stable, state.candidate, state.candidate_percent, state.status) == (1, 2, 10.0, "running")
    assert rollout(path, "start") == 2  # one at a time
    assert rollout(path, "abort", "--auto") == 2
    assert rollout(path, "status", "--auto") == 0  # the rule applied: no labels yet, wait
    assert rollout_history.from_file(config.serving_dir)[-1]["decision"] == "wait"
    assert rollout(path, "advance") == 0
    assert rollout_state.load(config.serving_dir).candidate_percent == 50.0
    assert rollout(path, "abort") == 0
    state = rollout_state.load(config.serving_dir)
    assert (state.status, state.candidate_percent, state.stable) == ("aborted", 0.0, 1)
    assert rollout_state.read(config.serving_dir) is None  # the server serves stable only
    assert rollout(path, "abort") == 2
    capsys.readouterr()
    assert rollout(path, "status") == 0
    doc = json.loads(capsys.readouterr().out)
    assert [h["decision"] for h in doc["history"]] == ["start", "wait", "advance", "abort"]
    assert rollout_history.by_candidate(doc["history"]) == {"2": "10% start, 10% wait, 50% advance, 50% abort"}
    assert cli.main(["models", "--home", config.home]) == 0
    out = capsys.readouterr().out
    assert "rollout: 10% start, 10% wait, 50% advance, 50% abort" in out
    assert "rollout: aborted; version 1 serves everybody" in out


def test_auto_aborts_a_candidate_worse_on_live_outcomes(setup, tmp_path, capsys):
    config, path = setup
    assert rollout(path, "start") == 0
    assert rollout(path, "--auto") == 0
    capsys.readouterr()
    assert rollout_state.load(config.serving_dir).status == "running"  # no labels yet: wait
    lines = traffic(config, candidate_right=False)
    assert cli.main(["feedback", str(labels(tmp_path / "l.csv", lines)), "--home", config.home]) == 0
    capsys.readouterr()
    assert rollout(path, "--auto") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "abort"
    assert out["evidence"]["candidate"]["labelled"] == 50 and out["evidence"]["candidate"]["metric"] == 0.0
    state = rollout_state.load(config.serving_dir)
    assert (state.status, state.candidate_percent) == ("aborted", 0.0)


def test_auto_advances_a_good_candidate_and_promotes_below_100(setup, tmp_path, capsys):
    config, path = setup
    assert rollout(path, "start") == 0
    for expected, percent in (("advance", 50.0), ("promote", 0.0)):
        lines = traffic(config, candidate_right=True)
        assert cli.main(["feedback", str(labels(tmp_path / "l.csv", lines)), "--home", config.home]) == 0
        capsys.readouterr()
        assert rollout(path, "--auto") == 0
        out = json.loads(capsys.readouterr().out)
        assert out["decision"] == expected, out["evidence"]
        assert out["state"]["candidate_percent"] == percent
    state = rollout_state.load(config.serving_dir)
    assert (state.status, state.stable, state.candidate) == ("promoted", 2, None)


def test_a_staged_push_pins_what_is_served_and_becomes_the_candidate(tmp_path):
    config = PipelineConfig(home=str(tmp_path / "h"), rollout=RolloutConfig(mode="staged")).validate()
    versions(config, 1)
    pin = rollout_command.pin_for_push(config)
    state = rollout_state.read(config.serving_dir)
    assert (state.stable, state.candidate) == (1, None)  # the push of 2 below is not served yet
    versions(config, 2)
    rollout_command.after_run(config, pin, str(config.serving_dir / "2"))
    state = rollout_state.load(config.serving_dir)
    assert (state.stable, state.candidate, state.candidate_percent) == (1, 2, 5.0)
    # a run that pushes nothing lifts its pin and leaves the running rollout as it was
    pin = rollout_command.pin_for_push(config)
    rollout_command.after_run(config, pin, None)
    assert rollout_state.load(config.serving_dir) == state


def test_a_run_without_a_push_removes_its_pin_and_replace_mode_writes_nothing(tmp_path):
    config = PipelineConfig(home=str(tmp_path / "h"), rollout=RolloutConfig(mode="staged")).validate()
    versions(config, 1)
    rollout_command.after_run(config, rollout_command.pin_for_push(config), None)
    assert not (config.serving_dir / rollout_state.FILE_NAME).exists()
    assert rollout_command.pin_for_push(config.replace(rollout=RolloutConfig())) is None


@pytest.mark.parametrize("yaml_text, message", [
    ("rollout: {plan: [20, 10]}", "each above the one before"),
    ("rollout: {key: cookie}", "feature:<name>"),
    ("rollout: {mode: canary}", "rollout.mode"),
    ("rollout: {max_metric_loss: -1}", "rollout.max_metric_loss"),
])
def test_a_bad_rollout_section_is_one_line(tmp_path, capsys, yaml_text, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    assert cli.main(["rollout", "status", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_auto_aborts_a_regression_candidate_that_answers_nan(tmp_path, capsys):
    """A regression candidate whose every prediction is NaN (a model call that succeeds with
    nothing usable). SQLite reads the logged 'nan' as 0.0: with outcomes near 0 the
    candidate looked better than stable and was advanced. Its NaNs are failed answers: the
    error budget aborts it, and the MAE is computed on real predictions only."""
    import numpy as np

    from kubetfx.components.serving.model_server import InferenceRecord

    path = config_file(tmp_path, tmp_path / "home", max_metric_loss=0.5)
    path.write_text(path.read_text().replace('"classification"', '"regression"'))
    config = PipelineConfig.from_yaml(str(path))
    versions(config, 1, 2)
    assert rollout(path, "start") == 0
    log = inference_log.InferenceLog(inference_log.log_dir(config), features=None)
    stamp = time.time() + 1
    for i in range(50):
        for version, track, value in ((1, "stable", 0.25), (2, "candidate", float("nan"))):
            log(InferenceRecord("m", version, stamp, "serving_default", [b""],
                                {"value": np.array([[value]], np.float32)}, f"{track}-{i}", track, 3.0))
    log.close()
    lines = [f"{track}-{i},0.0" for i in range(50) for track in ("stable", "candidate")]
    assert cli.main(["feedback", str(labels(tmp_path / "l.csv", lines)), "--home", config.home]) == 0
    capsys.readouterr()
    assert rollout(path, "--auto") == 0
    out = json.loads(capsys.readouterr().out)
    candidate = out["evidence"]["candidate"]
    assert (candidate["errors"], candidate["requests"], candidate["labelled"], candidate["metric"]) == (50, 0, 0, None)
    assert out["evidence"]["stable"]["metric"] == pytest.approx(0.25)
    assert out["decision"] == "abort" and "error rate 100.000%" in out["evidence"]["decision"]["reasons"][0]
