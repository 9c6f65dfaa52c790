"""Follow-up commands look at the pipeline of the latest run in the home (or the only one),
and a "not found" error lists the pipelines the home holds; through the real CLI."""
from __future__ import annotations

import json
import os

import pytest

from kubetfx.pipelines import cli, exit_codes


def _pipeline(home, name: str, version: str, run_log_time: float) -> None:
    """What a run leaves that these commands read: a pushed version and the run's log."""
    version_dir = home / "serving" / name / version
    version_dir.mkdir(parents=True)
    (version_dir / "saved_model.pb").write_bytes(b"a graph without weights")
    log = home / "logs" / name / "2026-12-01T10:00:00.000000.log"
    log.parent.mkdir(parents=True)
    log.write_text("run\n")
    os.utime(log, (run_log_time, run_log_time))


@pytest.fixture
def home(tmp_path):
    _pipeline(tmp_path, "kubetfx-penguin", "1700000000", run_log_time=1_000)
    _pipeline(tmp_path, "kubetfx-diabetes", "1700000500", run_log_time=2_000)  # ran last
    return tmp_path


def _models(capsys, home, *flags) -> dict:
    assert cli.main(["models", "--home", str(home), "--json", *flags]) == exit_codes.OK
    return json.loads(capsys.readouterr().out)


def test_models_defaults_to_the_pipeline_of_the_latest_run(home, capsys):
    assert _models(capsys, home)["pipeline"] == "kubetfx-diabetes"
    assert _models(capsys, home, "--name", "kubetfx-penguin")["pipeline"] == "kubetfx-penguin"  # --name decides


def test_the_only_pipeline_is_the_default(tmp_path, capsys):
    _pipeline(tmp_path, "kubetfx-trips", "1700000000", run_log_time=1_000)
    assert _models(capsys, tmp_path)["pipeline"] == "kubetfx-trips"


@pytest.mark.parametrize("command", [["report"], ["rollback", "1700000000"], ["serve", "--port", "0"],
                                     ["monitor", "--data", "unused.csv"]])
def test_not_found_lists_the_pipelines_of_the_home(home, command, capsys):
    assert cli.main([*command, "--home", str(home), "--name", "kubetfx-nope"]) == exit_codes.USAGE
    err = capsys.readouterr().err
    assert f"pipelines in {home}: kubetfx-diabetes, kubetfx-penguin" in err, err
    assert "kubetfx-nope" in err, err  # the pipeline it looked in


def test_models_of_an_unknown_pipeline_lists_the_pipelines(home, capsys):
    assert cli.main(["models", "--home", str(home), "--name", "kubetfx-nope"]) == exit_codes.OK
    assert "kubetfx-diabetes, kubetfx-penguin" in capsys.readouterr().out
