"""`kubetfx run --engine containers` as a user meets it: flags, one-line errors, exit codes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import message_factory

# Before the backend's import, which needs protobuf 4 (as local_backend/conftest.py): the
# Python 3.10 lock holds protobuf 3, where importing it fails at collection.
if not hasattr(message_factory, "GetMessageClass"):
    pytest.skip("the local KFP backend needs protobuf 4", allow_module_level=True)

from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.run import command as run_command
from kubetfx.pipelines.cli import build_parser
from kubetfx.pipelines.config import ConfigError, PipelineConfig
from kubetfx.pipelines.kubeflow import local_run as command
from kubetfx.pipelines.kubeflow.local_backend import backend


def _args(*flags):
    return build_parser().parse_args(["run", "--engine", "containers", *flags])


def test_flags_become_options_and_bad_values_are_config_errors():
    options = command.options_from_args(_args("--kfp-version", "2.4", "--task-timeout", "60", "--max-parallel-tasks", "3",
                                              "--retry-backoff-scale", "0.1", "--image-repo", "me"))
    assert (options.kfp_version, options.task_timeout, options.parallelism, options.backoff_scale,
            options.image_repo) == ("2.4", 60.0, 3, 0.1, "me")
    with pytest.raises(ConfigError, match="KFP version '2.3' is not emulated"):
        command.options_from_args(_args("--kfp-version", "2.3"))
    with pytest.raises(ConfigError, match="--task-timeout must be > 0"):
        command.options_from_args(_args("--task-timeout", "0"))


def test_a_timed_out_task_exits_10_with_the_reason(tmp_path, capsys):
    failure = backend.TaskTimedOutError("Trainer", tmp_path / "Trainer.log", "stopped after 5 s (the task time limit)")
    assert run_command._outcome(None, failure, None, PipelineConfig(), None, False, sys.stdout) == exit_codes.TIMED_OUT
    assert "run stopped: task Trainer failed: stopped after 5 s" in capsys.readouterr().err


@pytest.mark.slow
def test_without_a_docker_binary_the_run_says_so_in_one_line_and_exits_2(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    result = subprocess.run([sys.executable, "-m", "kubetfx.pipelines.cli", "run", "--engine", "containers",
                             "--home", str(tmp_path / "home")], capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PATH": str(empty)}, cwd=Path(__file__).resolve().parents[3])
    assert result.returncode == exit_codes.USAGE, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("kubetfx:")]
    assert errors == ["kubetfx: error: the docker command is not installed or not on PATH; "
                      "--engine containers needs the Docker engine (or use --engine local)"]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("flags", [("--task-timeout", "nan"), ("--task-timeout", "inf"),
                                   ("--retry-backoff-scale", "nan"), ("--retry-backoff-scale", "inf")])
def test_a_bound_that_is_not_finite_is_refused(flags):
    """nan passed `<= 0` (a task that never times out), inf cannot be slept (OverflowError
    at the first retry, mid-run)."""
    with pytest.raises(ConfigError, match="each a finite number"):
        command.options_from_args(_args(*flags))


@pytest.mark.parametrize("flags, message", [
    (("--image", "kubetfx/Pipeline:0.1.0"), "--image 'kubetfx/Pipeline:0.1.0' is not an image reference"),
    (("--image", ""), "--image '' is not an image reference"),
    (("--image-repo", "my registry"), "--image-repo 'my registry' is not a repository"),
])
def test_an_image_no_cluster_can_pull_is_refused(flags, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        command.options_from_args(_args(*flags))


def test_a_second_run_on_a_held_home_is_exit_5_at_once(tmp_path, capsys):
    """As a local run is refused (exit 5), before an object store boots or a spec compiles."""
    from kubetfx.pipelines import cli
    from kubetfx.pipelines.record.home_lock import exclusive_run

    home = tmp_path / "home"
    with exclusive_run(PipelineConfig(home=str(home))):
        code = cli.main(["run", "--engine", "containers", "--home", str(home)])
    err = capsys.readouterr().err
    assert code == exit_codes.BUSY, err
    assert err.startswith("kubetfx: error: pipeline 'kubetfx-penguin' is already running in"), err
    assert not (home / "object-store").exists() and not (home / "logs").exists()
