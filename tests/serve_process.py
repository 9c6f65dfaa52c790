"""`kubetfx serve --port 0` as a child process for end-to-end tests: started on a home,
waited for until its port file appears, always stopped (SIGTERM, then SIGKILL)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from conftest import REPO


class ServeProcess:
    def __init__(self, home, tmp_path, name: str, start_timeout: float = 180):
        self.port_file = tmp_path / "port"
        self.log_path = tmp_path / "serve.log"
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kubetfx.pipelines.cli", "serve", "--home", str(home), "--name", name,
             "--port", "0", "--port-file", str(self.port_file)], stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, cwd=REPO)
        deadline = time.monotonic() + start_timeout
        while not self.port_file.exists():
            assert self.process.poll() is None, self.log_path.read_text()
            assert time.monotonic() < deadline, f"kubetfx serve did not answer within {start_timeout} s"
            time.sleep(0.2)
        self.url = f"http://127.0.0.1:{self.port_file.read_text()}/v1/models/{name}"

    def post(self, payload) -> tuple[int, dict]:
        """(status, JSON answer) of a predict request, HTTP errors included."""
        request = urllib.request.Request(self.url + ":predict", json.dumps(payload).encode())
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def predict(self, instances: list) -> dict:
        body = json.dumps({"instances": instances}).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url + ":predict", body), timeout=60) as answer:
            payload = json.loads(answer.read())
            assert payload["model_version"] == answer.headers["X-Model-Version"]
            return payload

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log.close()
