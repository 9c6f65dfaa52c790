"""Starting kubetfx's model server (model_server.py) on one candidate model in a child
process, and never leaving it behind.

A child process rather than a thread of the stage: the candidate loads in a fresh server,
from its files, as it will in production, and a model that crashes TensorFlow or exhausts
memory fails the validation instead of the run. It runs on the stage's own interpreter
(the pipeline environment: TensorFlow 2.16).

Never left behind: when validation ends the server's process group is killed (also when
SIGTERM ends it: the executor turns SIGTERM into TFX's GracefulShutdown, whose unwinding
runs the `finally` here); when the stage's process dies first without unwinding (SIGKILL,
or SIGTERM to an executor off the main thread, where no handler can be installed) the
server sees that its parent is gone and stops (`--parent_pid`).

A spare server (`start_spare`): the local runner may start one with an empty base directory
at the beginning of a small run, so that its interpreter start and TensorFlow import (2-3 s
of one core) overlap the run's own imports instead of sitting between the Trainer and the
Pusher. The next `running_server` takes it and adds the candidate as version 1, which the
server loads as it loads any new version (version_follower.py): the candidate still loads in
a fresh process that has served nothing else. A spare nobody takes is stopped at exit."""
from __future__ import annotations

import atexit
import contextlib
import dataclasses
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# The interpreter that runs the server; tests point it at a broken one.
SERVING_PYTHON_ENV = "KUBETFX_SERVING_PYTHON"
SERVER_MODULE = "kubetfx.components.serving.model_server"
CANDIDATE_MODEL_NAME = "candidate"  # the name the InfraValidator serves its candidate under


class ServerStartError(RuntimeError):
    """The model server exited or did not start answering in time."""


def serving_python() -> str:
    return os.environ.get(SERVING_PYTHON_ENV) or sys.executable


# How often a spare server looks for the candidate in its base directory.
SPARE_POLL_SECONDS = 0.05


def server_command(base_path: Path, model_name: str, port_file: Path, poll_seconds: float = 1.0) -> list[str]:
    return [serving_python(), "-m", SERVER_MODULE, "--model_base_path", str(base_path),
            "--model_name", model_name, "--port", "0", "--port_file", str(port_file),
            "--parent_pid", str(os.getpid()), "--startup_timeout_seconds", "0",
            "--file_system_poll_wait_seconds", str(poll_seconds)]


def _popen(command: list[str], log) -> subprocess.Popen:
    # A session of its own: a terminal's Ctrl-C goes to the run, which stops the server.
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env={**os.environ, "PYTHONNOUSERSITE": "1"})


@dataclasses.dataclass
class _Spare:
    process: subprocess.Popen
    workdir: Path
    model_name: str
    python: str

    @property
    def base(self) -> Path:
        return self.workdir / "model"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def discard(self) -> None:
        stop(self.process)
        shutil.rmtree(self.workdir, ignore_errors=True)


_spare: _Spare | None = None
_spare_lock = threading.Lock()


def start_spare(model_name: str) -> None:
    """Starts a server with no model yet for the next `running_server` of model_name."""
    global _spare
    with _spare_lock:
        if _spare is not None:
            return
        workdir = Path(tempfile.mkdtemp(prefix="kubetfx-serving-"))
        spare = _Spare(None, workdir, model_name, serving_python())
        spare.base.mkdir()
        with open(spare.log_path, "ab") as log:
            spare.process = _popen(server_command(spare.base, model_name, workdir / "port", SPARE_POLL_SECONDS), log)
        _spare = spare
    atexit.register(discard_spare)


def discard_spare() -> None:
    """Stops the spare server, if one is waiting (idempotent)."""
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is not None:
        spare.discard()


def _take_spare(model_name: str) -> _Spare | None:
    """The waiting spare, if it serves model_name on today's serving interpreter and is alive."""
    global _spare
    with _spare_lock:
        spare, _spare = _spare, None
    if spare is None:
        return None
    if spare.model_name == model_name and spare.python == serving_python() and spare.process.poll() is None:
        return spare
    spare.discard()
    return None


def _wait_for_port(port_file: Path, process: subprocess.Popen, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while not port_file.exists():
        if process.poll() is not None:
            raise ServerStartError(f"model server exited with code {process.returncode} before answering")
        if time.monotonic() > deadline:
            raise ServerStartError(f"model server did not start answering within {timeout:.0f} s")
        time.sleep(0.05)
    return int(port_file.read_text())


def stop(process: subprocess.Popen) -> None:
    """Kills the server and anything it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def running_server(model_dir: str, model_name: str, log_path: Path, start_timeout: float = 60):
    """Yields (base_url, process) for a server of model_dir as version 1 of model_name (TF
    Serving's layout: <base>/<integer version>/saved_model.pb); stops it on exit."""
    spare = _take_spare(model_name)
    if spare is not None:
        (spare.base / "1").symlink_to(os.path.abspath(model_dir))  # one atomic step: loaded whole
        try:
            port = _wait_for_port(spare.workdir / "port", spare.process, start_timeout)
            yield f"http://127.0.0.1:{port}", spare.process
        finally:
            stop(spare.process)
            with open(log_path, "ab") as log, open(spare.log_path, "rb") as spare_log:
                shutil.copyfileobj(spare_log, log)  # the stage's server log, as without a spare
            shutil.rmtree(spare.workdir, ignore_errors=True)
        return
    with tempfile.TemporaryDirectory(prefix="kubetfx-serving-") as workdir, open(log_path, "ab") as log:
        base = Path(workdir) / "model"
        base.mkdir()
        (base / "1").symlink_to(os.path.abspath(model_dir))
        port_file = Path(workdir) / "port"
        process = _popen(server_command(base, model_name, port_file), log)
        try:
            port = _wait_for_port(port_file, process, start_timeout)
            yield f"http://127.0.0.1:{port}", process
        finally:
            stop(process)
