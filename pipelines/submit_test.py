"""`kubetfx submit` against a local HTTP server speaking the KFP v2beta1 REST paths that
kfp.Client 2.9 uses: upload (new pipeline or new version), experiment, run, get run."""
from __future__ import annotations

import json
import re
import socket
import sys
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from kubetfx.pipelines import cli, submit

SPEC = "pipelineInfo:\n  name: demo-pipeline\nroot: {}\nschemaVersion: 2.1.0\n"


class FakeKfp:
    """Scripted KFP API: records every request; `existing` pipelines, `final_state` of runs."""

    def __init__(self, existing=False, final_state="SUCCEEDED", reject_upload=None):
        self.existing, self.final_state, self.reject_upload = existing, final_state, reject_upload
        self.requests, self.uploaded, self.run_body, self.polls = [], [], None, 0

    def handle(self, h: BaseHTTPRequestHandler):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        self.requests.append((h.command, h.path, h.headers, body))  # headers: case-insensitive
        path = h.path.split("?")[0]
        if path == "/apis/v2beta1/healthz":
            return 200, {"multi_user": False}
        if path == "/apis/v2beta1/pipelines" and h.command == "GET":
            return 200, {"pipelines": [{"pipeline_id": "p-1", "display_name": "demo-pipeline"}]} if self.existing else {}
        if path in ("/apis/v2beta1/pipelines/upload", "/apis/v2beta1/pipelines/upload_version"):
            if self.reject_upload:
                return 400, {"error": self.reject_upload, "message": self.reject_upload, "code": 3}
            self.uploaded.append(body)
            if path.endswith("upload"):
                return 200, {"pipeline_id": "p-new", "display_name": "demo-pipeline"}
            return 200, {"pipeline_id": "p-1", "pipeline_version_id": "v-2"}
        if re.fullmatch(r"/apis/v2beta1/pipelines/[\w-]+/versions", path):
            return 200, {"pipeline_versions": [{"pipeline_version_id": "v-1", "pipeline_id": "p-new"}]}
        if path == "/apis/v2beta1/experiments" and h.command == "GET":
            return 200, {}  # no experiment of that name yet
        if path == "/apis/v2beta1/experiments" and h.command == "POST":
            return 200, {"experiment_id": "e-1", "display_name": "kubetfx"}
        if path == "/apis/v2beta1/runs" and h.command == "POST":
            self.run_body = json.loads(body)
            return 200, {"run_id": "r-1", "state": "PENDING"}
        if path == "/apis/v2beta1/runs/r-1":
            self.polls += 1
            state = self.final_state if self.polls > 1 else "RUNNING"
            tasks = [{"display_name": "Trainer", "state": state if self.polls > 1 else "RUNNING"}]
            return 200, {"run_id": "r-1", "state": state, "run_details": {"task_details": tasks}}
        return 404, {"message": f"no route {h.command} {path}"}


@pytest.fixture
def kfp_server():
    servers = []

    def start(**behaviour):
        fake = FakeKfp(**behaviour)

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                code, payload = fake.handle(self)
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return fake, f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "demo.yaml"
    path.write_text(SPEC)
    return path


def _submit(*args):
    return cli.main(["submit", *map(str, args)])


@pytest.mark.kfp_sdk
def test_new_pipeline_is_uploaded_and_run_with_parameters_and_token(kfp_server, spec, monkeypatch, capsys):
    monkeypatch.setattr(submit, "POLL_SECONDS", 0.01)
    fake, host = kfp_server()
    code = _submit("--host", host, "--spec", spec, "--param", "data_root=/data/new", "--param", "eval_threshold=0.8",
                   "--token", "s3cret-token", "--wait")
    assert code == submit.OK
    assert len(fake.uploaded) == 1 and spec.read_bytes() in fake.uploaded[0]  # the file's exact bytes
    assert fake.run_body["pipeline_version_reference"] == {"pipeline_id": "p-new", "pipeline_version_id": "v-1"}
    assert fake.run_body["runtime_config"]["parameters"] == {"data_root": "/data/new", "eval_threshold": 0.8}
    assert all(h.get("Authorization") == "Bearer s3cret-token" for _, _, h, _ in fake.requests)
    out = capsys.readouterr()
    assert "Trainer: RUNNING" in out.out and "SUCCEEDED" in out.out
    assert "s3cret-token" not in out.out + out.err


@pytest.mark.kfp_sdk
def test_existing_pipeline_gets_a_new_version(kfp_server, spec):
    fake, host = kfp_server(existing=True)
    assert _submit("--host", host, "--spec", spec) == submit.OK
    assert any(p.startswith("/apis/v2beta1/pipelines/upload_version") for _, p, _, _ in fake.requests)
    assert fake.run_body["pipeline_version_reference"] == {"pipeline_id": "p-1", "pipeline_version_id": "v-2"}


@pytest.mark.kfp_sdk
def test_a_failed_run_exits_non_zero(kfp_server, spec, monkeypatch):
    monkeypatch.setattr(submit, "POLL_SECONDS", 0.01)
    _, host = kfp_server(final_state="FAILED")
    assert _submit("--host", host, "--spec", spec, "--wait") == submit.RUN_FAILED


@pytest.mark.kfp_sdk
def test_rejected_spec_shows_the_server_message(kfp_server, spec, capsys):
    _, host = kfp_server(reject_upload="invalid pipeline spec: unknown field foo")
    assert _submit("--host", host, "--spec", spec) == submit.UNREACHABLE_OR_REJECTED
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "invalid pipeline spec: unknown field foo" in err and "Traceback" not in err


@pytest.mark.kfp_sdk
def test_unreachable_host_is_one_clear_line(spec, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    assert _submit("--host", f"http://127.0.0.1:{port}", "--spec", spec) == submit.UNREACHABLE_OR_REJECTED
    assert "cannot reach Kubeflow Pipelines" in capsys.readouterr().err


@pytest.mark.kfp_sdk  # without the SDK, submit says that first
def test_missing_spec_and_bad_params_are_usage_errors(tmp_path, spec, capsys):
    assert _submit("--host", "http://127.0.0.1:1", "--spec", tmp_path / "none.yaml") == submit.USAGE
    assert "make compile" in capsys.readouterr().err
    assert _submit("--host", "http://127.0.0.1:1", "--spec", spec, "--param", "novalue") == submit.USAGE


def test_without_the_kfp_sdk_submit_says_which_install_has_it(spec, monkeypatch, capsys):
    # The Python 3.10 lock cannot hold kfp 2 (protobuf cap of TFX 1.16 there): no import, one line.
    monkeypatch.setitem(sys.modules, "kfp", None)
    assert _submit("--host", "http://127.0.0.1:1", "--spec", spec) == submit.USAGE
    err = capsys.readouterr().err
    assert "Python 3.11" in err and "Traceback" not in err


def test_kfp_pipeline_spec_alone_is_not_taken_for_the_sdk(spec, monkeypatch, capsys):
    # The 3.10 lock has kfp-pipeline-spec, whose kfp/pipeline_spec/ makes `kfp` an importable
    # namespace package without kfp.Client: `import kfp` succeeded and submit failed later.
    namespace = types.ModuleType("kfp")
    namespace.__path__ = []
    monkeypatch.setitem(sys.modules, "kfp", namespace)
    monkeypatch.delitem(sys.modules, "kfp.client", raising=False)
    assert _submit("--host", "http://127.0.0.1:1", "--spec", spec) == submit.USAGE
    assert "Python 3.11" in capsys.readouterr().err
