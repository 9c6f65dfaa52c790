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
server sees that its parent is gone and stops (`--parent_pid`)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The interpreter that runs the server; tests point it at a broken one.
SERVING_PYTHON_ENV = "KUBETFX_SERVING_PYTHON"
SERVER_MODULE = "kubetfx.components.infra_validator.model_server"


class ServerStartError(RuntimeError):
    """The model server exited or did not start answering in time."""


def serving_python() -> str:
    return os.environ.get(SERVING_PYTHON_ENV) or sys.executable


def server_command(base_path: Path, model_name: str, port_file: Path) -> list[str]:
    return [serving_python(), "-m", SERVER_MODULE, "--model_base_path", str(base_path),
            "--model_name", model_name, "--port", "0", "--port_file", str(port_file),
            "--parent_pid", str(os.getpid()), "--startup_timeout_seconds", "0"]


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
    with tempfile.TemporaryDirectory(prefix="kubetfx-serving-") as workdir, open(log_path, "ab") as log:
        base = Path(workdir) / "model"
        base.mkdir()
        (base / "1").symlink_to(os.path.abspath(model_dir))
        port_file = Path(workdir) / "port"
        # A session of its own: a terminal's Ctrl-C goes to the run, which stops the server.
        process = subprocess.Popen(server_command(base, model_name, port_file), stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, "PYTHONNOUSERSITE": "1"})
        try:
            port = _wait_for_port(port_file, process, start_timeout)
            yield f"http://127.0.0.1:{port}", process
        finally:
            stop(process)
