"""A real S3-protocol object store on loopback, where KFP has MinIO or SeaweedFS: moto in
server mode, from its own environment (`make object-store-env` -> .venv-objectstore).

    with object_store_server.running() as store:
        s3 = object_store.client(store.endpoint, store.access_key, store.secret_key)

Started on 127.0.0.1 only, on a free port, with a bounded wait for it to answer, and
stopped (its whole process group) when the block ends. It runs in its own session (a ^C
at the terminal is the run's to handle), so a run killed by SIGKILL, which ends no block,
would leave it behind holding its port and memory: it is started under a small watchdog
that holds a pipe from the run and stops the server when the pipe closes, which happens
when the run's process is gone, however it ended. Data lives in the server's memory:
a run's artifacts last as long as the server (the local backend keeps one per run home).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator, Optional

ENV_DIR = ".venv-objectstore"
START_TIMEOUT_SECONDS = 30.0
# moto accepts any credentials; KFP's MinIO default pair keeps the emulation recognisable.
ACCESS_KEY, SECRET_KEY = "minio", "minio123"


class ObjectStoreUnavailable(RuntimeError):
    """No object-store server could be started; the message says how to get one."""


@dataclasses.dataclass(frozen=True)
class RunningStore:
    endpoint: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY


def server_binary(search_from: Optional[Path] = None) -> Path:
    """`moto_server` of .venv-objectstore (beside the running venv, or in the checkout),
    or $KUBETFX_MOTO_SERVER."""
    if os.environ.get("KUBETFX_MOTO_SERVER"):
        return Path(os.environ["KUBETFX_MOTO_SERVER"])
    candidates = [Path(sys.prefix).parent / ENV_DIR, Path.cwd() / ENV_DIR]
    if search_from:
        candidates.insert(0, Path(search_from) / ENV_DIR)
    for env in candidates:
        binary = env / "bin" / "moto_server"
        if binary.exists():
            return binary
    raise ObjectStoreUnavailable(
        f"no object-store server: {ENV_DIR}/bin/moto_server not found; run 'make object-store-env'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_answering(endpoint: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ObjectStoreUnavailable(f"object-store server exited at start (code {process.returncode})")
        try:
            with urllib.request.urlopen(endpoint + "/", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise ObjectStoreUnavailable(f"object-store server at {endpoint} did not answer within {timeout:.0f} s")


# Runs moto_server (argv[1:]) and waits for EOF on stdin: the write end is held by the
# process that started it only (pipes are not inherited by its other children), so EOF means
# that process is gone. The server ends then, or when it ends by itself.
_WATCHDOG = r"""
import os, signal, subprocess, sys, threading
server = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
signal.signal(signal.SIGTERM, lambda *_: server.terminate())  # the thread below exits with it
threading.Thread(target=lambda: os._exit(server.wait()), daemon=True).start()
while sys.stdin.buffer.read(4096):
    pass
server.terminate()
try:
    server.wait(10)
except subprocess.TimeoutExpired:
    server.kill()
os._exit(0)
"""


@contextlib.contextmanager
def running(port: Optional[int] = None, log: Optional[Path] = None,
            timeout: float = START_TIMEOUT_SECONDS) -> Iterator[RunningStore]:
    port = port or _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    out = open(log, "ab") if log else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, "-S", "-c", _WATCHDOG,
                                str(server_binary()), "-H", "127.0.0.1", "-p", str(port)],
                               stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_answering(endpoint, process, timeout)
        yield RunningStore(endpoint)
    finally:
        process.stdin.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if log:
            out.close()


@contextlib.contextmanager
def running_with_bucket(bucket: str = "mlpipeline") -> Iterator[tuple]:
    """(server, boto3 client) with `bucket` created: the store KFP's MinIO is to a cluster."""
    from kubetfx.pipelines.kubeflow import object_store

    with running() as server:
        s3 = object_store.client(server.endpoint, server.access_key, server.secret_key)
        s3.create_bucket(Bucket=bucket)
        yield server, s3
