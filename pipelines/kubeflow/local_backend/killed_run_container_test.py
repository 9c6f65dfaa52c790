"""A run killed by SIGKILL runs no cleanup: its task containers stay (running, then stopped,
never removed). The next run of the same pipeline on the same home removes them."""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from kubetfx.pipelines.kubeflow.local_backend.backend_container_test import (IMAGE, _data, _run, engine_and_images,  # noqa: F401
                                                                              home, tiny_spec)

pytestmark = [pytest.mark.container, pytest.mark.slow]

RUN = r"""
import json, sys
from pathlib import Path
from kubetfx.pipelines.kubeflow.local_backend import backend
from kubetfx.pipelines.kubeflow.local_backend.options import Options
spec, platform, home, data = json.load(open(sys.argv[1]))
backend.run_spec(spec, platform, backend.RunRequest(pipeline="tiny", home=Path(home), data=Path(data)), Options())
"""


def _containers(*filters: str) -> list:
    return subprocess.run(["docker", "ps", "-a", "-q", *[f"--filter={f}" for f in filters]],
                          capture_output=True, text=True, timeout=60).stdout.split()


def test_the_containers_of_a_killed_run_are_removed_by_the_next_run_on_its_home(tmp_path, home):
    spec, platform = tiny_spec()
    hanging = json.loads(json.dumps(spec))
    hanging["deploymentSpec"]["executors"]["exec-use"]["container"].update(command=["sleep", "600"], args=[])
    home.mkdir(parents=True)
    (tmp_path / "run.json").write_text(json.dumps([hanging, platform, str(home), str(_data(tmp_path))]))
    run = subprocess.Popen([sys.executable, "-c", RUN, str(tmp_path / "run.json")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    before = set(_containers("label=kubetfx.task=use"))
    left = []
    try:
        deadline = time.monotonic() + 300
        while not left:
            assert run.poll() is None and time.monotonic() < deadline, "the hanging task never started"
            time.sleep(0.5)
            left = [c for c in _containers("label=kubetfx.task=use", "status=running") if c not in before]
    finally:
        os.kill(run.pid, signal.SIGKILL)  # the run only: its `docker start -a` lives on, as after a real SIGKILL
        run.wait(timeout=30)
    try:
        assert set(left) <= set(_containers("status=running")), "the killed run's container is gone already"
        summary = _run(spec, platform, home, _data(tmp_path))  # the next run, on the same home
        assert [s.stage for s in summary.stages][-1] == "use"
        assert not set(left) & set(_containers()), "the killed run's container is still there"
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", *left], capture_output=True, timeout=120)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.pid, signal.SIGKILL)  # the orphaned docker CLI
