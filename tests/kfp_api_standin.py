"""A local stand-in of the Kubeflow Pipelines REST API (v2beta1), on loopback, for testing
`kubetfx submit` with the real kfp.Client 2.9: the endpoints it calls to upload a pipeline
or a version, find or create an experiment, create a run or a recurring run, and read a run.

It keeps what it is sent and applies the backend's own rules (backend_rules.py) where the
apiserver does (KFP 2.5.0 backend/src/apiserver): the upload checks of
template/v2_template.go NewV2SpecTemplate on upload (HTTP 400 with the apiserver's message),
the run checks (validatePipelineJobInputs, then the v2 compiler) on run and recurring-run
creation, and the driver's checks when the run "starts". It executes nothing: a run's
states are scripted (`final_state`), and faults can be injected (`fail_get_run`,
`stall_seconds`) to test submit's bounded waits; `tag_name` is the version healthz reports
and `required_token` makes it refuse requests without that bearer token (401).

    with kfp_api_standin.running(final_state="SUCCEEDED") as api:
        kfp.Client(host=api.host) ...
"""
from __future__ import annotations

import contextlib
import dataclasses
import email.parser
import email.policy
import itertools
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator, Optional

from kubetfx.pipelines.kubeflow import backend_rules

API = "/apis/v2beta1"


@dataclasses.dataclass
class StandIn:
    """The API's state and behaviour; `host` once running."""
    final_state: str = "SUCCEEDED"
    polls_before_final: int = 1          # get_run answers RUNNING this many times first
    fail_get_run: Optional[int] = None   # HTTP status every get_run answers with
    stall_seconds: float = 0.0           # every request waits this long before answering
    # healthz's `tag_name`: the apiserver image's TAG_NAME, "unknown" when built without it
    # (KFP 2.2.0-2.5.0 backend/src/apiserver/main.go, backend/Dockerfile)
    tag_name: str = "2.5.0"
    required_token: Optional[str] = None  # every request without `Bearer <it>` answers 401
    host: str = ""
    pipelines: dict = dataclasses.field(default_factory=dict)   # id -> {display_name, versions: {id: spec text}}
    experiments: dict = dataclasses.field(default_factory=dict)  # id -> display name
    runs: dict = dataclasses.field(default_factory=dict)         # id -> request body
    recurring_runs: dict = dataclasses.field(default_factory=dict)
    requests: list = dataclasses.field(default_factory=list)     # (method, path, headers)
    _ids: Iterator = dataclasses.field(default_factory=lambda: itertools.count(1))
    _polls: dict = dataclasses.field(default_factory=dict)

    def _id(self, kind: str) -> str:
        return f"{kind}-{next(self._ids)}"

    # ---- pipelines ---------------------------------------------------------------------
    def upload(self, query: dict, spec_text: str, pipeline_id: Optional[str] = None) -> tuple:
        try:
            backend_rules.check_upload(spec_text)
        except backend_rules.Rejected as err:
            return 400, _error(f"Failed to upload a pipeline: Invalid input error: {err}")
        version_id = self._id("version")
        name = query.get("name") or query.get("display_name") or ""
        if pipeline_id is None:
            pipeline_id = self._id("pipeline")
            self.pipelines[pipeline_id] = {"display_name": name, "versions": {}}
            self.pipelines[pipeline_id]["versions"][version_id] = spec_text
            return 200, {"pipeline_id": pipeline_id, "display_name": name}
        if pipeline_id not in self.pipelines:
            return 404, _error(f"Pipeline {pipeline_id} not found")
        self.pipelines[pipeline_id]["versions"][version_id] = spec_text
        return 200, {"pipeline_id": pipeline_id, "pipeline_version_id": version_id, "display_name": name}

    def list_pipelines(self, query: dict) -> tuple:
        wanted = _filter_value(query.get("filter"), "display_name")
        found = [{"pipeline_id": pid, "display_name": p["display_name"]} for pid, p in self.pipelines.items()
                 if wanted is None or p["display_name"] == wanted]
        return 200, ({"pipelines": found, "total_size": len(found)} if found else {})

    def list_versions(self, pipeline_id: str) -> tuple:
        if pipeline_id not in self.pipelines:
            return 404, _error(f"Pipeline {pipeline_id} not found")
        versions = [{"pipeline_id": pipeline_id, "pipeline_version_id": v}
                    for v in self.pipelines[pipeline_id]["versions"]]
        return 200, {"pipeline_versions": versions, "total_size": len(versions)}

    # ---- experiments -------------------------------------------------------------------
    def list_experiments(self, query: dict) -> tuple:
        wanted = _filter_value(query.get("filter"), "display_name")
        found = [{"experiment_id": e, "display_name": n} for e, n in self.experiments.items() if n == wanted]
        return 200, ({"experiments": found} if found else {})

    def create_experiment(self, body: dict) -> tuple:
        experiment_id = self._id("experiment")
        self.experiments[experiment_id] = body.get("display_name", "")
        return 200, {"experiment_id": experiment_id, "display_name": self.experiments[experiment_id]}

    # ---- runs --------------------------------------------------------------------------
    def _checked(self, body: dict, what: str):
        reference = body.get("pipeline_version_reference") or {}
        pipeline = self.pipelines.get(reference.get("pipeline_id"), {})
        spec_text = pipeline.get("versions", {}).get(reference.get("pipeline_version_id"))
        if spec_text is None:
            return 404, _error(f"Failed to create a {what}: pipeline version {reference} not found")
        spec, platform = backend_rules.check_upload(spec_text)
        runtime_config = body.get("runtime_config")
        parameters = None if runtime_config is None else runtime_config.get("parameters") or {}
        try:
            backend_rules.check_run(spec, platform, parameters)
        except backend_rules.Rejected as err:
            return 400, _error(f"Failed to create a {what}: {err}")
        return None

    def _create(self, body: dict, what: str, kept: dict, answer) -> tuple:
        """A run or recurring run, kept if the backend's run checks pass."""
        refused = self._checked(body, what)
        if refused:
            return refused
        run_id = self._id(what.replace(" ", ""))
        kept[run_id] = body
        return 200, {**answer(run_id), "display_name": body.get("display_name")}

    def create_run(self, body: dict) -> tuple:
        return self._create(body, "run", self.runs, lambda i: {"run_id": i, "state": "PENDING"})

    def get_run(self, run_id: str) -> tuple:
        if self.fail_get_run:
            return self.fail_get_run, _error("Internal error: failed to get run: database is locked")
        if run_id not in self.runs:
            return 404, _error(f"Run {run_id} not found")
        polls = self._polls[run_id] = self._polls.get(run_id, 0) + 1
        state = self.final_state if polls > self.polls_before_final else "RUNNING"
        tasks = [{"display_name": "Trainer", "state": state}]
        return 200, {"run_id": run_id, "state": state, "run_details": {"task_details": tasks}}

    def create_recurring_run(self, body: dict) -> tuple:
        return self._create(body, "recurring run", self.recurring_runs,
                            lambda i: {"recurring_run_id": i, "status": "ENABLED"})

    def list_recurring_runs(self, query: dict) -> tuple:
        """By experiment and the `display_name` filter (apiserver/model/job.go field map)."""
        name = _filter_value(query.get("filter"), "display_name")
        found = [{"recurring_run_id": i, "display_name": b.get("display_name"), "status": b.get("status", "ENABLED")}
                 for i, b in self.recurring_runs.items()
                 if (not query.get("experiment_id") or b.get("experiment_id") == query["experiment_id"])
                 and (name is None or b.get("display_name") == name)]
        # `recurringRuns`: the proto field's own name (backend/api/v2beta1/recurring_run.proto)
        return 200, {"recurringRuns": found, "total_size": len(found)}

    def change_recurring_run(self, method: str, recurring_run_id: str, action: Optional[str]) -> tuple:
        if recurring_run_id not in self.recurring_runs:
            return 404, _error(f"RecurringRun {recurring_run_id} not found")
        if method == "DELETE":
            del self.recurring_runs[recurring_run_id]
        else:
            self.recurring_runs[recurring_run_id]["status"] = "ENABLED" if action == "enable" else "DISABLED"
        return 200, {}

    # ---- routing -----------------------------------------------------------------------
    def handle(self, method: str, path: str, query: dict, headers, body: bytes) -> tuple:
        self.requests.append((method, path, headers))
        if self.stall_seconds:
            time.sleep(self.stall_seconds)
        if self.required_token and headers.get("Authorization") != f"Bearer {self.required_token}":
            return 401, _error("Unauthorized: no or wrong bearer token")
        routes = [
            ("GET", f"{API}/healthz",
             lambda: (200, {"commit_sha": "0" * 40, "tag_name": self.tag_name, "multi_user": False})),
            ("GET", f"{API}/pipelines", lambda: self.list_pipelines(query)),
            ("POST", f"{API}/pipelines/upload", lambda: self.upload(query, _uploaded_file(headers, body))),
            ("POST", f"{API}/pipelines/upload_version",
             lambda: self.upload(query, _uploaded_file(headers, body), query.get("pipelineid", ""))),
            ("GET", f"{API}/experiments", lambda: self.list_experiments(query)),
            ("POST", f"{API}/experiments", lambda: self.create_experiment(json.loads(body))),
            ("POST", f"{API}/runs", lambda: self.create_run(json.loads(body))),
            ("POST", f"{API}/recurringruns", lambda: self.create_recurring_run(json.loads(body))),
        ]
        for route_method, route_path, answer in routes:
            if method == route_method and path == route_path:
                return answer()
        versions = re.fullmatch(f"{API}/pipelines/([\\w-]+)/versions", path)
        if method == "GET" and versions:
            return self.list_versions(versions.group(1))
        recurring = re.fullmatch(f"{API}/recurringruns/([\\w-]+)(?::(enable|disable))?", path)
        if recurring and (method, bool(recurring.group(2))) in (("DELETE", False), ("POST", True)):
            return self.change_recurring_run(method, recurring.group(1), recurring.group(2))
        if method == "GET" and path == f"{API}/recurringruns":
            return self.list_recurring_runs(query)
        run = re.fullmatch(f"{API}/runs/([\\w-]+)", path)
        if method == "GET" and run:
            return self.get_run(run.group(1))
        return 404, _error(f"no route {method} {path}")


def _error(message: str) -> dict:
    return {"error": message, "message": message, "code": 3, "details": []}


def _filter_value(filter_json: Optional[str], key: str) -> Optional[str]:
    if not filter_json:
        return None
    for predicate in json.loads(filter_json).get("predicates", []):
        if predicate.get("key") == key:
            return predicate.get("stringValue") or predicate.get("string_value")
    return None


def _uploaded_file(headers, body: bytes) -> str:
    """The `uploadfile` part of the multipart upload, as the apiserver reads it."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {headers.get('Content-Type')}\r\n\r\n".encode() + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == "uploadfile":
            return part.get_payload(decode=True).decode("utf-8", errors="replace")
    return ""


@contextlib.contextmanager
def running(**behaviour) -> Iterator[StandIn]:
    """The stand-in on 127.0.0.1 (a free port) until the block ends."""
    api = StandIn(**behaviour)

    class Handler(BaseHTTPRequestHandler):
        def _serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            try:
                code, payload = api.handle(self.command, url.path, query, self.headers, body)
            except (BrokenPipeError, ConnectionResetError):
                return
            data = json.dumps(payload).encode()
            try:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                pass
        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="kfp-api-standin", daemon=True)
    thread.start()
    api.host = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
