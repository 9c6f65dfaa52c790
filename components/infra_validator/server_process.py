"""Starting a model server for one model on a free loopback port, and always stopping it.

TF Serving's own binary when it is on PATH (what production serves with); otherwise
KServe's Python ModelServer (`model_server.py`) in the serving environment. Both answer
the same REST API, checked by `canary`."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

MODEL_SERVER_SCRIPT = Path(__file__).resolve().with_name("model_server.py")
IMAGE_SERVING_PYTHON = Path("/opt/kubetfx-serving/bin/python")
REPO_SERVING_PYTHON = Path(__file__).resolve().parents[2] / ".venv-serving" / "bin" / "python"


class ServerUnavailableError(RuntimeError):
    """No model server can be started here; the message says how to get one."""


def serving_python() -> Path:
    """$KUBETFX_SERVING_PYTHON, the image's serving env, or the repo's .venv-serving."""
    candidates = [os.environ.get("KUBETFX_SERVING_PYTHON"), IMAGE_SERVING_PYTHON, REPO_SERVING_PYTHON]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return Path(candidate)
    raise ServerUnavailableError(
        "no model server: install TF Serving (tensorflow_model_server on PATH) or the KServe "
        "environment with `make serving-env` (or set KUBETFX_SERVING_PYTHON)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_command(model_dir: str, model_name: str, port: int, workdir: Path) -> list[str]:
    binary = shutil.which("tensorflow_model_server")
    if binary and not os.environ.get("KUBETFX_SERVING_PYTHON"):
        # TF Serving wants <base>/<integer version>/saved_model.pb.
        (workdir / "1").symlink_to(model_dir)
        return [binary, f"--rest_api_port={port}", f"--port={free_port()}", f"--model_name={model_name}",
                f"--model_base_path={workdir}"]
    return [str(serving_python()), str(MODEL_SERVER_SCRIPT), "--model_dir", model_dir,
            "--model_name", model_name, "--http_port", str(port)]


@contextlib.contextmanager
def running_server(model_dir: str, model_name: str, log_path: Path):
    """Yields (base_url, process); the server and its children are killed on exit."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="kubetfx-serving-") as workdir, open(log_path, "ab") as log:
        command = server_command(model_dir, model_name, port, Path(workdir))
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "PYTHONNOUSERSITE": "1"})
        try:
            yield f"http://127.0.0.1:{port}", process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
