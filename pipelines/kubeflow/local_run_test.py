"""`kubetfx run --engine containers` as a user meets it: flags, one-line errors, exit codes."""
from __future__ import annotations

import os
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
