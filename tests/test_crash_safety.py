"""A run killed mid-stage loses nothing: the re-run reuses what completed, never uses what
the killed execution left, and pushes exactly one complete model. A second run on the same
home while one is running is refused, not interleaved."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, executions_by_stage

pytestmark = [pytest.mark.slow, pytest.mark.serving]


# The built-in Transform finishes in well under a second now (its fast path), before the
# test can freeze it; a module file's Transform runs TFX's Beam executor, seconds long, so
# the kill lands mid-stage as it does for the Trainer.
SLOW_STAGE_ARGS = {"Transform": ["--module-file", str(REPO / "tests" / "module_file_example.py")], "Trainer": []}


def _start(home, args=()):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.Popen([sys.executable, "-m", "kubetfx.pipelines.cli", "run", "--home", str(home), *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def _wait_for(path, proc, timeout=600):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, f"run ended before {path} appeared:\n{proc.stdout.read()}"
        assert time.time() < deadline, f"{path} did not appear"
        time.sleep(0.2)


@pytest.mark.parametrize("stage", ["Transform", "Trainer"])
def test_kill_mid_stage_then_rerun_pushes_exactly_one_model(tmp_path, run_kubetfx, stage):
    home = tmp_path / "home"
    args = SLOW_STAGE_ARGS[stage]
    first = _start(home, args)
    _wait_for(home / "pipelines" / "kubetfx-penguin" / stage, first)
    time.sleep(1)  # let the stage get going, then freeze the run right there
    os.killpg(first.pid, signal.SIGSTOP)

    # While it runs, a second run on the same home is refused with a clear message.
    second = run_kubetfx("run", "--home", home, *args)
    assert second.returncode == 5, second.stdout + second.stderr
    assert "already running" in second.stderr

    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    store = home / "metadata" / "kubetfx-penguin.sqlite"
    assert executions_by_stage(store)[stage] == ["RUNNING"]  # what the kill left behind

    rerun = run_kubetfx("run", "--home", home, *args)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    states = executions_by_stage(store)
    assert states[stage] == ["CANCELED", "COMPLETE"]  # the killed one is never reused
    assert states["StatisticsGen"] == ["COMPLETE", "CACHED"]  # completed work is reused
    if stage == "Trainer":
        assert states["Transform"] == ["COMPLETE", "CACHED"]
    versions = os.listdir(home / "serving" / "kubetfx-penguin")
    assert len(versions) == 1 and versions[0].isdigit()
    assert (home / "serving" / "kubetfx-penguin" / versions[0] / "saved_model.pb").exists()
