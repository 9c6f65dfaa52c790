"""`run --engine containers` where the local backend cannot work (the Python 3.10 lock's
protobuf 3): one line, exit 2, before anything is compiled or started. Collected on both
locks: the CLI case runs on Python 3.10 in CI (its fast tests), the rule's case everywhere."""
from __future__ import annotations

import subprocess
import sys
import types

import pytest
from google.protobuf import message_factory

from kubetfx.pipelines.kubeflow import local_run


def test_a_protobuf_without_get_message_class_is_refused_in_one_line():
    with pytest.raises(local_run.BackendUnavailable, match="--engine containers needs protobuf 4"):
        local_run.check_protobuf(types.SimpleNamespace())
    local_run.check_protobuf(types.SimpleNamespace(GetMessageClass=None))  # protobuf 4: no error


@pytest.mark.skipif(hasattr(message_factory, "GetMessageClass"),
                    reason="protobuf 4 here: the local backend runs (its own tests cover it)")
def test_run_engine_containers_on_protobuf_3_is_exit_2_and_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "kubetfx.pipelines.cli", "run", "--engine", "containers",
                             "--home", str(tmp_path / "home")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if "needs protobuf 4" in line]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
