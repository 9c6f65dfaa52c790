"""An inference-logging proxy in front of TF Serving's REST API: TF Serving has no request
hook, so in the cluster the requests pass through this proxy, which forwards each one to
the upstream server, returns its answer unchanged, and writes every answered predict to
the inference log (inference_log.py: the features, the prediction, the model version and
the time, as tf.Examples in TFRecord shards) that `kubetfx monitor --logs` reads.

Shards are written to a local spool folder, closed by size or age, and shipped to the
object store (`minio://bucket/prefix`, `s3://...`) by a background thread: uploaded, then
deleted from the spool. The spool keeps at most `max_shards` (the oldest are dropped when
the store is down for long), the store at most `store_shards` (the oldest are deleted).

Only answers with HTTP 200 to `POST /v1/models/NAME[/versions/V]:predict` are logged. The
HTTP side is the model server's (components/serving/http_server.py: backlog, body limit
16 MiB -> 413, read timeouts, graceful stop); each forward runs in its thread pool.
Every upstream call has a timeout; an upstream that refuses or cannot be reached is a 502,
one that does not answer in time a 504, both with TF Serving's {"error": "..."} body.

The model version: the kubetfx model server puts it in every answer (`X-Model-Version`);
TF Serving 2.16's REST predict answer does not (tensorflow_serving/model_servers/
http_rest_api_handler.cc ProcessPredictRequest writes only "predictions"/"outputs"), so it
is the request's `/versions/V`, else the AVAILABLE version of the model's status, asked at
most every STATUS_SECONDS: a request answered in the seconds around a version switch may
be logged with the previous version."""
from __future__ import annotations

import base64
import http.client
import json
import logging
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np

from kubetfx.components.serving import http_server

log = logging.getLogger("kubetfx.logging_proxy")
PREDICT = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?:predict\Z")
MAX_BODY_BYTES = 16 << 20   # the model server's bound: a larger body is a 413 here already
FORWARDING_THREADS = 32     # each waits on the upstream, up to its timeout
STATUS_SECONDS = 5.0


class UpstreamError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Upstream:
    """The model server behind the proxy; every call bounded by `timeout` seconds."""

    def __init__(self, url: str, timeout: float):
        if timeout <= 0:
            raise ValueError("the upstream timeout must be positive")
        self.url, self.timeout = url.rstrip("/"), timeout
        self._versions: dict = {}  # {model name: (version, monotonic time asked)}
        self._lock = threading.Lock()

    def call(self, method: str, path: str, body: bytes | None, content_type: str | None,
             request_id: str | None = None):
        """(status, headers, body) of the upstream's answer, HTTP errors included."""
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if content_type:
            request.add_header("Content-Type", content_type)
        if request_id:  # the upstream (a kubetfx model server) answers and logs the same id
            request.add_header("X-Request-Id", request_id)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return answer.status, answer.headers, answer.read()
        except urllib.error.HTTPError as err:  # the upstream answered: its answer, unchanged
            return err.code, err.headers, err.read()
        except (socket.timeout, TimeoutError) as err:
            raise UpstreamError(504, f"model server {self.url} did not answer within {self.timeout:g} s") from err
        except urllib.error.URLError as err:
            if isinstance(err.reason, (socket.timeout, TimeoutError)):
                raise UpstreamError(504, f"model server {self.url} did not answer within {self.timeout:g} s") from err
            raise UpstreamError(502, f"model server {self.url} unreachable: {err.reason}") from err
        except (ConnectionError, http.client.HTTPException) as err:
            raise UpstreamError(502, f"model server {self.url} failed: {err}") from err

    def available_version(self, name: str) -> int | None:
        """The version TF Serving reports AVAILABLE (the highest), asked at most every STATUS_SECONDS."""
        with self._lock:
            cached = self._versions.get(name)
            if cached and time.monotonic() - cached[1] < STATUS_SECONDS:
                return cached[0]
        try:
            status, _, body = self.call("GET", f"/v1/models/{name}", None, None)
            states = json.loads(body).get("model_version_status", []) if status == 200 else []
            versions = [int(s["version"]) for s in states if s.get("state") == "AVAILABLE"]
        except (UpstreamError, ValueError, KeyError, TypeError):
            versions = []
        version = max(versions) if versions else None
        with self._lock:
            self._versions[name] = (version, time.monotonic())
        return version


def _instance(value):
    """A logged instance: serialized tf.Example bytes ({"b64": ...}) or a feature dict."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, dict):
        return {k: (base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v) for k, v in value.items()}
    return {"input": value}


def _rows(request: dict, answer: dict):
    """(instances, {output name: array}) of a predict in TF Serving's row or columnar form."""
    if "instances" in request:
        instances = [_instance(i) for i in request["instances"]]
    elif isinstance(request.get("inputs"), dict):
        columns = request["inputs"]
        n = len(next(iter(columns.values()))) if columns else 0
        instances = [{k: v[i] for k, v in columns.items()} for i in range(n)]
    else:
        raise ValueError("no instances")
    predictions = answer.get("predictions", answer.get("outputs"))
    if isinstance(predictions, dict):
        outputs = {k: np.asarray(v) for k, v in predictions.items()}
    elif predictions and all(isinstance(p, dict) for p in predictions):
        outputs = {k: np.asarray([p[k] for p in predictions]) for k in predictions[0]}
    else:
        outputs = {"prediction": np.asarray(predictions)}
    if any(len(v) != len(instances) for v in outputs.values()):
        raise ValueError(f"{len(instances)} instances, predictions of another length")
    return instances, outputs


class LoggingProxy:
    """Forwards to `upstream`; calls `on_request` (an InferenceLog) with an InferenceRecord
    for each answered predict. An exception in it is logged, the answer still returned."""

    def __init__(self, upstream: Upstream, on_request, limits: http_server.Limits | None = None):
        self.upstream, self.on_request = upstream, on_request
        self.limits = limits or http_server.Limits(max_body_bytes=MAX_BODY_BYTES, workers=FORWARDING_THREADS,
                                                   stop_seconds=upstream.timeout)
        self._http: http_server.HttpServer | None = None
        self.logged = 0

    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        http = http_server.HttpServer(self.forward, self.limits, name="logging-proxy")
        port = http.start(port, host)
        self._http = http
        return port

    def shutdown(self) -> None:
        """Stops listening, forwards the requests in flight, then closes. Idempotent."""
        http, self._http = self._http, None
        if http is not None:
            http.stop()

    def forward(self, request: http_server.Request) -> http_server.Response:
        """The upstream's answer to `request` (run in the transport's thread pool)."""
        from kubetfx.components.serving.model_server import request_id

        identity = request_id(request.headers.get("X-Request-Id"))
        if not request.path.startswith("/"):  # the upstream URL and the target are joined as text:
            # ":8080/x" or ".evil.example/x" would name another port or host than the upstream's
            return http_server.json_response(400, {"error": f"Malformed request: {request.path[:100]!r} is not a path"},
                                             {"X-Request-Id": identity})
        body = request.body or None
        try:
            status, headers, answer = self.upstream.call(request.method, request.path, body,
                                                         request.headers.get("Content-Type"), identity)
        except UpstreamError as err:
            return http_server.json_response(err.status, {"error": str(err)}, {"X-Request-Id": identity})
        if status == 200 and request.method == "POST":
            self.record(request.path, body or b"", headers, answer, request.arrived, identity)
        keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "x-model-version")}
        keep["X-Request-Id"] = identity
        return http_server.Response(status, answer, keep)

    def record(self, path: str, body: bytes, answer_headers, answer: bytes, arrived: float,
               request_id: str = "") -> None:
        from kubetfx.components.serving.model_server import InferenceRecord

        match = PREDICT.match(path.split("?", 1)[0])
        if match is None:
            return
        try:
            request, payload = json.loads(body), json.loads(answer)
            instances, outputs = _rows(request, payload)
            version = payload.get("model_version") or answer_headers.get("X-Model-Version") or match["version"] \
                or self.upstream.available_version(match["name"])
            if version is None:
                raise ValueError("the upstream reports no AVAILABLE version")
            self.on_request(InferenceRecord(
                model_name=match["name"], model_version=int(version), timestamp=arrived,
                signature_name=request.get("signature_name", "serving_default"),
                instances=instances, outputs=outputs, request_id=request_id))
            self.logged += len(instances)
        except Exception as err:  # noqa: BLE001 — never fail an answered request for its log
            log.warning("request to %s answered but not logged: %s", path, err)
