"""An inference-logging proxy in front of TF Serving's REST API: TF Serving has no request
hook, so in the cluster the requests pass through this proxy, which forwards each one to
the upstream server, returns its answer unchanged, and writes every answered predict to
the inference log (inference_log.py: the features, the prediction, the model version and
the time, as tf.Examples in TFRecord shards) that `kubetfx monitor --logs` reads.

Shards are written to a local spool folder, closed by size or age, and shipped to the
object store (`minio://bucket/prefix`, `s3://...`) by a background thread: uploaded, then
deleted from the spool. The spool keeps at most `max_shards` (the oldest are dropped when
the store is down for long), the store at most `store_shards` (the oldest are deleted).

Answers with HTTP 200 to `POST /v1/models/NAME[/versions/V]:predict` are logged, and so
is a predict that failed (the same record fields as the model server's failed model call,
components/serving/model_server.py: the instances, no prediction, its `status_code` and
`latency_ms`), so a staged rollout's error budget is judged behind this proxy too. A failed
predict is one whose body holds instances (a body that does not is the caller's mistake,
refused as the model server's checks refuse it, and not logged) answered with an error by
the upstream, or a 502/504 from this proxy when the upstream is down or silent; a 404 (no
such model or version: nothing was computed) is not logged. Its version is the one asked
for or routed to, the answer's, else the upstream's AVAILABLE one (for a 502/504 only as
last known: a dead upstream is not asked again); none known, it is not logged. The
HTTP side is the model server's (components/serving/http_server.py: backlog, body limit
16 MiB -> 413, read timeouts, graceful stop); each forward runs in its thread pool.
Every upstream call has a timeout; an upstream that refuses or cannot be reached is a 502,
one that does not answer in time a 504, both with TF Serving's {"error": "..."} body.

The model version: the kubetfx model server puts it in every answer (`X-Model-Version`);
TF Serving 2.16's REST predict answer does not (tensorflow_serving/model_servers/
http_rest_api_handler.cc ProcessPredictRequest writes only "predictions"/"outputs"), so it
is the request's `/versions/V`, else the AVAILABLE version of the model's status, asked at
most every STATUS_SECONDS: a request answered in the seconds around a version switch may
be logged with the previous version.

During a staged rollout (issue 26) the proxy is also the traffic splitter in front of two
TF Serving tracks, one Deployment per version (manifests/overlays/rollout): it follows
`rollout.json` (components/serving/rollout_state.py) with RolloutWatch and sends each
predict, classify or regress to the stable or the candidate upstream by the same sticky
rule as the model server (traffic_split.track_for, keyed by X-Request-Key or the state's
feature), asking for the track's version explicitly (`/versions/N`), so an answer is
never from a version the state does not name. Answers carry X-Model-Track and
X-Model-Version, log records the track. A candidate that is down, or has not loaded its
version yet (404), is not a lost request: it is answered by stable, counted in
`fallbacks` and said once in the log per outage. TF Serving knows nothing of the state,
so RolloutWatch also writes each track's model_config_file (TrackConfigs), which TF
Serving re-reads by itself."""
from __future__ import annotations

import base64
import dataclasses
import http.client
import json
import logging
import math
import os
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import numpy as np

from kubetfx.components.serving import failure_reports, http_server, rollout_state, traffic_split

log = logging.getLogger("kubetfx.logging_proxy")
PREDICT = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?:predict\Z")
# What a rollout routes: the calls that compute with a version (status and metadata go to stable).
ROUTED = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?:(?P<verb>predict|classify|regress)\Z")
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

    def last_known_version(self, name: str) -> int | None:
        """The AVAILABLE version last asked for, however old; never asks."""
        with self._lock:
            cached = self._versions.get(name)
        return cached[0] if cached else None

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


def track_model_config(name: str, base_path: str, version: int | None) -> str:
    """TF Serving's model_config_file (ModelServerConfig text) of one track: `version` only,
    or the highest one when None (no rollout has ever been started: TF Serving's default)."""
    policy = f"specific {{ versions: {version} }}" if version is not None else "latest { num_versions: 1 }"
    return (f'model_config_list {{\n  config {{\n    name: "{name}"\n    base_path: "{base_path}"\n'
            f'    model_platform: "tensorflow"\n    model_version_policy {{ {policy} }}\n  }}\n}}\n')


def track_versions(state, valid_versions=()) -> dict:
    """{track: the version its TF Serving loads, None: the highest} for a state of any
    status (None: no file), by the model server's rule: while a rollout runs, stable its
    `stable` and the candidate its `candidate` (stable too while there is none yet: a warm
    spare); once it is finished, both what answers unrouted requests in the model server
    (rollout_state.pinned_version: after an abort stable, though the aborted candidate is
    the highest version; after a promote the promoted one; the highest once a newer
    version of `valid_versions` is published)."""
    if state is not None and state.running:
        candidate = state.candidate if state.candidate is not None else state.stable
        return {traffic_split.STABLE: state.stable, traffic_split.CANDIDATE: candidate}
    pinned = rollout_state.pinned_version(state, valid_versions)
    return {traffic_split.STABLE: pinned, traffic_split.CANDIDATE: pinned}


class TrackConfigs:
    """Writes `<directory>/stable.config` and `candidate.config` (track_model_config), each
    replaced atomically and only when its text changes (TF Serving re-reads the file every
    --model_config_file_poll_wait_seconds and reloads only on a change anyway). The
    versions are listed at `base_path`: the proxy mounts the serving volume where TF
    Serving does."""

    def __init__(self, directory, model_name: str, base_path: str):
        for label, value in (("model name", model_name), ("base path", base_path)):
            if not value or any(c in value for c in '"\\\n'):
                raise ValueError(f"the {label} {value!r} cannot be written into a TF Serving model config")
        self.directory, self.model_name, self.base_path = str(directory), model_name, base_path
        self.written = 0

    def path(self, track: str) -> str:
        return os.path.join(self.directory, f"{track}.config")

    def write(self, state) -> None:
        from kubetfx.components.serving import valid_version

        os.makedirs(self.directory, exist_ok=True)
        finished = state is not None and not state.running
        for track, version in track_versions(state, valid_version.versions(self.base_path) if finished else ()).items():
            text = track_model_config(self.model_name, self.base_path, version)
            try:
                with open(self.path(track)) as f:
                    if f.read(1 << 16) == text:
                        continue
            except FileNotFoundError:
                pass
            temporary = f"{self.path(track)}.{os.getpid()}.tmp"
            with open(temporary, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, self.path(track))
            self.written += 1
            log.info("%s track now loads %s", track, f"version {version}" if version is not None else "the highest version")


class RolloutWatch:
    """The running rollout of `state_dir` (its rollout.json), re-read every poll_seconds
    (the model server's interval; the file is bounded by rollout_state.MAX_BYTES) by a
    background thread. `state` is the running RolloutState or None (no file, finished, or
    not a state: all traffic to stable); a request reads it once, so it routes by one state."""

    def __init__(self, state_dir, poll_seconds: float = 1.0, track_configs: TrackConfigs | None = None):
        if not (poll_seconds > 0 and math.isfinite(poll_seconds)):
            raise ValueError("the rollout poll interval must be a positive number of seconds")
        self.state_dir, self.poll_seconds, self.track_configs = str(state_dir), poll_seconds, track_configs
        self.state: rollout_state.RolloutState | None = None
        self.polls = 0            # state reads done (a test waits for one after a write)
        self._bad: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> None:
        try:
            state = rollout_state.load(self.state_dir)
        except rollout_state.RolloutStateError as err:
            if str(err) != self._bad:  # once per bad content, not once per poll
                log.warning("%s; all traffic to the stable track", err)
            self._bad, self.state = str(err), None
            self.polls += 1
            return  # the tracks keep the versions last written
        self._bad = None
        self.state = state if state is not None and state.running else None
        self.polls += 1
        if self.track_configs is not None:
            try:
                self.track_configs.write(state)
            except OSError as err:
                log.warning("cannot write the tracks' model configs in %s: %s", self.track_configs.directory, err)

    def start(self) -> None:
        """Reads the state once (so the first request routes by it), then follows it."""
        self.poll()
        self._thread = threading.Thread(target=self._follow, name="rollout-watch", daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a poll that breaks must not end the routing
                log.exception("reading the rollout state in %s failed", self.state_dir)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None


def _first_instance(body: bytes):
    """The first instance of a predict body (row or columnar form), None when there is none."""
    try:
        request = json.loads(body)
        if isinstance(request.get("instances"), list) and request["instances"]:
            return request["instances"][0]
        columns = request.get("inputs")
        if isinstance(columns, dict):
            return {k: (v[0] if isinstance(v, list) and v else v) for k, v in columns.items()}
    except (ValueError, AttributeError, TypeError, RecursionError):
        pass
    return None


def _instance(value):
    """A logged instance: serialized tf.Example bytes ({"b64": ...}) or a feature dict."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, dict):
        return {k: (base64.b64decode(v["b64"]) if isinstance(v, dict) and "b64" in v else v) for k, v in value.items()}
    return {"input": value}


def _instances(request: dict) -> list:
    """The instances of a predict body in TF Serving's row or columnar form."""
    if "instances" in request:
        instances = [_instance(i) for i in request["instances"]]
    elif isinstance(request.get("inputs"), dict):
        columns = request["inputs"]
        n = len(next(iter(columns.values()))) if columns else 0
        instances = [{k: v[i] for k, v in columns.items()} for i in range(n)]
    else:
        raise ValueError("no instances")
    if not instances:
        raise ValueError("no instances")
    return instances


def _rows(request: dict, answer: dict):
    """(instances, {output name: array}) of a predict in TF Serving's row or columnar form."""
    instances = _instances(request)
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


def _upstream_error(err: UpstreamError, identity: str) -> http_server.Response:
    return http_server.json_response(err.status, {"error": str(err)}, {"X-Request-Id": identity})


class LoggingProxy:
    """Forwards to `upstream`; calls `on_request` (an InferenceLog) with an InferenceRecord
    for each answered predict. An exception in it is logged, the answer still returned.

    With `candidate` (the candidate track's upstream) and `rollout` (a started RolloutWatch),
    the computing calls are split between the two upstreams while a rollout runs."""

    def __init__(self, upstream: Upstream, on_request, limits: http_server.Limits | None = None,
                 candidate: Upstream | None = None, rollout: RolloutWatch | None = None):
        if (candidate is None) != (rollout is None):
            raise ValueError("a candidate upstream and a rollout state go together")
        self.upstream, self.on_request = upstream, on_request
        self.candidate, self.rollout = candidate, rollout
        self.limits = limits or http_server.Limits(max_body_bytes=MAX_BODY_BYTES, workers=FORWARDING_THREADS,
                                                   stop_seconds=upstream.timeout)
        self._http: http_server.HttpServer | None = None
        self.logged = 0
        self.failures_logged = 0  # failed predicts logged (record_failure)
        self.fallbacks = 0        # candidate requests answered by stable (candidate down or not ready)
        self._candidate_down = False
        self._counts_lock = threading.Lock()
        # a log that cannot take records fails every request: 1st, 2nd, 4th, ... are reported
        self.not_logged = failure_reports.DoublingReport()

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

    def route(self, request: http_server.Request, state):
        """(track, version or None, upstream, path) for `request` under `state` (running or None)."""
        match = ROUTED.match(request.path.split("?", 1)[0]) if request.method == "POST" else None
        if state is None or match is None or state.candidate is None:
            return traffic_split.STABLE, None, self.upstream, request.path
        if match["version"] is not None:  # an explicit version bypasses the split, as in the model server
            version = int(match["version"])
            on_candidate = version == state.candidate
            return (traffic_split.CANDIDATE if on_candidate else traffic_split.STABLE, version,
                    self.candidate if on_candidate else self.upstream, request.path)
        header = request.headers.get(traffic_split.KEY_HEADER)
        first = _first_instance(request.body) if state.key_feature else None
        key = traffic_split.request_key(state.key, header, first)
        track = traffic_split.track_for(key, state.candidate_percent, state.candidate)
        return self._pinned(track, state, match)

    def _pinned(self, track: str, state, match):
        version = state.candidate if track == traffic_split.CANDIDATE else state.stable
        path = f"/v1/models/{match['name']}/versions/{version}:{match['verb']}"
        return track, version, self.candidate if track == traffic_split.CANDIDATE else self.upstream, path

    def forward(self, request: http_server.Request) -> http_server.Response:
        """The upstream's answer to `request` (run in the transport's thread pool)."""
        from kubetfx.components.serving.model_server import request_id

        identity = request_id(request.headers.get("X-Request-Id"))
        if not request.path.startswith("/"):  # the upstream URL and the target are joined as text:
            # ":8080/x" or ".evil.example/x" would name another port or host than the upstream's
            return http_server.json_response(400, {"error": f"Malformed request: {request.path[:100]!r} is not a path"},
                                             {"X-Request-Id": identity})
        try:  # a gzip body is forwarded, routed by and logged from its JSON (the upstream gets no Content-Encoding)
            request = dataclasses.replace(request, body=http_server.decoded_body(request, self.limits.max_body_bytes))
        except http_server.BodyError as err:
            return http_server.json_response(err.status, {"error": str(err)}, {"X-Request-Id": identity})
        body, content_type = request.body or None, request.headers.get("Content-Type")
        state = self.rollout.state if self.rollout is not None else None  # one state per request
        track, version, upstream, path = self.route(request, state)
        try:
            status, headers, answer = upstream.call(request.method, path, body, content_type, identity)
            # 404 from the candidate: its TF Serving has not loaded the version yet (it re-reads
            # its model config every few seconds), or has unloaded it
            cannot = f"it answered {status}" if status == 404 else None
        except UpstreamError as err:
            if upstream is not self.candidate:
                return self._failed(err, request, path, identity, track)
            status, cannot, failure = None, str(err), err
        if upstream is self.candidate:
            if cannot is not None and self._routed_by_split(request):  # stable answers it: not lost
                self._fell_back(cannot)
                track, version, upstream, path = self._pinned(traffic_split.STABLE, state, ROUTED.match(path))
                try:
                    status, headers, answer = upstream.call(request.method, path, body, content_type, identity)
                except UpstreamError as err:
                    return self._failed(err, request, path, identity, track)
            elif status is None:  # an explicit candidate version: its error, as without a rollout
                return self._failed(failure, request, path, identity, track)
            elif status == 200 and self._candidate_down:
                self._candidate_down = False
                log.warning("candidate upstream %s answers again; %d request(s) were answered by stable meanwhile",
                            upstream.url, self.fallbacks)
        if status == 200 and request.method == "POST":
            self.record(path, body or b"", headers, answer, request.arrived, identity, track)
        elif request.method == "POST" and status != 404:
            self.record_failure(path, body or b"", status, headers.get("X-Model-Version") if headers else None, request.arrived,
                                identity, track, upstream)
        keep = {k: v for k, v in headers.items() if k.lower() in ("content-type", "x-model-version")}
        keep["X-Request-Id"] = identity
        if ROUTED.match(path.split("?", 1)[0]):
            keep["X-Model-Track"] = track
            if version is not None:
                keep["X-Model-Version"] = str(version)
        return http_server.Response(status, answer, keep)

    def _failed(self, err: UpstreamError, request: http_server.Request, path: str, identity: str,
                track: str) -> http_server.Response:
        """The proxy's own 502/504 answer, logged as a failed predict when it is one."""
        if request.method == "POST":
            self.record_failure(path, request.body or b"", err.status, None, request.arrived, identity, track, None)
        return _upstream_error(err, identity)

    def _routed_by_split(self, request: http_server.Request) -> bool:
        match = ROUTED.match(request.path.split("?", 1)[0])
        return match is not None and match["version"] is None

    def _fell_back(self, why: str) -> None:
        with self._counts_lock:
            self.fallbacks += 1
            first = not self._candidate_down
            self._candidate_down = True
        if first:  # once per outage: the count is in the recovery line and in `fallbacks`
            log.warning("candidate upstream %s cannot answer (%s): its requests go to stable until it can",
                        self.candidate.url, why)

    def record(self, path: str, body: bytes, answer_headers, answer: bytes, arrived: float,
               request_id: str = "", track: str = traffic_split.STABLE) -> None:
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
                instances=instances, outputs=outputs, request_id=request_id, track=track,
                latency_ms=(time.time() - arrived) * 1000.0))
            self.logged += len(instances)
        except Exception as err:  # noqa: BLE001 — never fail an answered request for its log
            if reported := self.not_logged.count():
                log.warning("request to %s answered but not logged: %s (%d not logged so far)", path, err, reported)

    def record_failure(self, path: str, body: bytes, status: int, answered_version, arrived: float,
                       request_id: str, track: str, upstream: Upstream | None) -> None:
        """Logs a predict that failed with `status` (the module docstring says which). `upstream`:
        the one that answered, asked for its AVAILABLE version if need be; None for the proxy's
        own 502/504 (then only its last known version)."""
        from kubetfx.components.serving.model_server import InferenceRecord

        match = PREDICT.match(path.split("?", 1)[0])
        if match is None:
            return
        try:
            request = json.loads(body)
            instances = _instances(request)
        except (ValueError, AttributeError, TypeError, RecursionError, StopIteration, IndexError, KeyError):
            return  # not a predict body: the caller's mistake, not a failure of the model
        try:
            version = match["version"] or answered_version
            if version is None:
                version = (upstream.available_version(match["name"]) if upstream is not None
                           else self.upstream.last_known_version(match["name"]))
            if version is None:
                raise ValueError("no version known for it")
            self.on_request(InferenceRecord(
                model_name=match["name"], model_version=int(version), timestamp=arrived,
                signature_name=request.get("signature_name", "serving_default"),
                instances=instances, outputs={}, request_id=request_id, track=track,
                latency_ms=(time.time() - arrived) * 1000.0, status_code=int(status)))
            with self._counts_lock:
                self.failures_logged += len(instances)
        except Exception as err:  # noqa: BLE001 — never fail the answer for its log
            if reported := self.not_logged.count():
                log.warning("failed request to %s (%d) not logged: %s (%d not logged so far)",
                            path, status, err, reported)
