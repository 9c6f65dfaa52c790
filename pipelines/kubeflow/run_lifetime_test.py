"""What `kubetfx run --engine containers` starts ends with it, even when the run is killed
by SIGKILL (which runs no cleanup): its object-store server, and its stage containers."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from kubetfx.pipelines.kubeflow import object_store_server

KUBETFX = Path(sys.executable).parent / "kubetfx"


def _descendants_named(pid: int, word: str, timeout: float) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = [p for p in psutil.Process(pid).children(recursive=True)
                     if any(word in part for part in p.cmdline())]
        except psutil.NoSuchProcess:
            return []
        if found:
            return found
        time.sleep(0.2)
    return []


# run --engine containers compiles the spec with the kfp SDK (protobuf 4): the Python 3.10
# lock cannot hold it, and there the run refuses before any server starts.
@pytest.mark.kfp_sdk
def test_the_object_store_server_ends_when_its_run_is_killed(tmp_path):
    try:
        object_store_server.server_binary()
    except object_store_server.ObjectStoreUnavailable as err:
        pytest.skip(str(err))
    run = subprocess.Popen([str(KUBETFX), "run", "--engine", "containers", "--home", str(tmp_path / "home")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        servers = _descendants_named(run.pid, "moto_server", timeout=120)
        assert servers, "the run started no object-store server"
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=30)
    _, alive = psutil.wait_procs(servers, timeout=30)
    for process in alive:  # do not leave the orphan to the next test
        with contextlib.suppress(psutil.Error):
            process.kill()
    assert alive == [], f"left running after the run's SIGKILL: pids {[p.pid for p in alive]}"
