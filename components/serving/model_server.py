"""kubetfx's model server: a base directory of SavedModel versions answering on TF
Serving's REST API, in the pipeline's own environment (TensorFlow 2.16; HTTP: components/serving/http_server.py).

The InfraValidator starts it on the candidate model and `kubetfx serve` on the serving
directory; the cluster serves the same directory with tensorflow/serving, so clients (the
canary, users' scripts) speak one API to both. It follows the base directory as TF Serving
does (see version_follower.py) and answers:

    GET  /v1/models/NAME[/versions/V]            model status (TF Serving's JSON)
    GET  /v1/models/NAME[/versions/V]/metadata   signature defs
    POST /v1/models/NAME[/versions/V]:predict    {"instances": [...]} or {"inputs": ...}

Instances for a signature that parses serialized tf.Examples: {"b64": "<tf.Example>"} as
TF Serving takes them, or plain feature dicts (see rest_api.py). Every predict answer
carries the version that computed it: header `X-Model-Version` and the top-level field
"model_version" (a string, as TF Serving writes int64 versions in JSON), and every answer
its request id, header `X-Request-Id`: the caller's own when sane (request_id()), else a
new one; the inference log stores it with each instance of the request.

Two tracks (a staged rollout, issue 26): while `<base>/rollout.json` says a rollout runs
(rollout_state.py), the stable and the candidate version are both loaded and each request
that names no version is routed to one of them, stickily by its X-Request-Key header or a
feature (traffic_split.py, tracks.py); every predict answer says which in `X-Model-Track`
("stable" or "candidate"; "stable" when no rollout runs) and the hook's record carries it.
A URL naming a version (`/versions/N`) is answered by that version, never rerouted.

In-process:

    def log(record: InferenceRecord) -> None: ...   # called once per answered predict
    server = ModelServer("/path/serving/my-model", "my-model", on_request=log)
    server.serve(8501)          # blocks; SIGTERM/SIGINT (main thread) or shutdown() end it
    # or: port = server.start(0); server.wait_until_available(60); ...; server.shutdown()

As a process:

    python -m kubetfx.components.serving.model_server \\
        --model_base_path DIR --model_name NAME --port 8501

The HTTP port answers at once (status LOADING until a version is loaded), so a client sees
progress while TensorFlow imports. The transport's bounds (components/serving/http_server.py):
a body over --max_body_bytes (16 MiB) is a 413 (a gzip body: also once uncompressed),
JSON nested deeper than MAX_JSON_DEPTH a 400, a request not sent within the read timeouts is closed; shutdown() finishes the
requests in flight (up to stop_seconds) before it closes the connections. Requests that
arrive while a model call runs share the next one (components/serving/batching.py).
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import logging
import os
import re
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable

from kubetfx.components.serving import failure_reports, rest_api, traffic_split
from kubetfx.components.serving.request_schema import RequestSchema
from kubetfx.components.serving.tracks import TrackFollower
from kubetfx.components.serving.version_follower import VersionFollower, load_version
from kubetfx.components.serving import batching, http_server

log = logging.getLogger("kubetfx.model_server")
MAX_BODY_BYTES = 16 << 20   # a larger body is a 413, answered before it is read
MAX_JSON_DEPTH = 100        # instances are a few levels deep; json.loads recurses
# Requests waiting for a running model call join the next one (batching.py), so the pool
# holds more threads than cores: most of them wait, the batch grows.
WORKERS = 16
MAX_BATCH_ROWS = 256
# /v1/models/NAME[/versions/V][/metadata | :predict | :classify | :regress]
ROUTE = re.compile(r"/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>[0-9]+))?"
                   r"(?P<action>/metadata|:predict|:classify|:regress)?/?\Z")


@dataclass(frozen=True)
class InferenceRecord:
    """One answered predict request, as the on_request hook receives it."""
    model_name: str
    model_version: int
    timestamp: float       # time.time() when the request arrived
    signature_name: str
    # Serialized tf.Examples (bytes) when the signature parses them, whatever the client
    # sent (b64 or feature dicts); otherwise one {input name: value} dict per instance.
    instances: list
    outputs: dict          # {output name: numpy array}, batch dimension first
    request_id: str = ""   # answered to the caller in X-Request-Id
    track: str = ""        # "stable" or "candidate" (X-Model-Track); "" from writers without tracks
    # From arrival to the answer's outputs (the body not yet written): what the staged
    # rollout's latency budget judges per track; 0.0 from writers that do not time it.
    latency_ms: float = 0.0
    # 200, or the status of a model call that failed after the request passed its checks
    # (outputs then empty): the candidate's error rate, which a staged rollout judges.
    status_code: int = 200


# A caller's X-Request-Id is kept when it is a short token of these characters: it goes
# into a header and the log as is, so nothing that could split a header or a log line.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")


def request_id(header: str | None) -> str:
    """The caller's X-Request-Id when sane, else a new uuid4 hex (32 characters)."""
    return header if header and REQUEST_ID.match(header) else uuid.uuid4().hex


OnRequest = Callable[[InferenceRecord], None]


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class ModelServer:
    """Serves the highest version under model_base_path as model_name.

    on_request: called with an InferenceRecord for every predict that is answered, before
    the answer is sent (so a client that got its answer finds it logged); calls are
    serialized, and an exception in it is logged without failing the request.
    poll_seconds: how often the base directory is checked for new or removed versions.
    """

    def __init__(self, model_base_path: str, model_name: str, *, poll_seconds: float = 1.0,
                 on_request: OnRequest | None = None, limits: http_server.Limits | None = None,
                 max_batch_rows: int = MAX_BATCH_ROWS):
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        self.model_name = model_name
        self.poll_seconds = poll_seconds
        base = os.path.abspath(model_base_path)
        self.versions = VersionFollower(base, loader=self._load_for_follower)
        self.tracks = TrackFollower(base, loader=self._load_version)
        self._on_request = on_request
        self._hook_lock = threading.Lock()
        self._hook_failures = failure_reports.DoublingReport()
        self._stop = threading.Event()
        self._first_poll = threading.Event()  # the versions and the rollout state read once
        self.limits = (limits or default_limits()).validate()
        self._batcher = batching.Batcher(max_batch_rows)
        self._http: http_server.HttpServer | None = None
        self._threads: list[threading.Thread] = []

    # -- life cycle ---------------------------------------------------------------------
    def start(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Binds the port (0: any free one), starts answering and following the versions in
        background threads; returns the bound port."""
        if self._http is not None:
            raise RuntimeError("server already started")
        http = http_server.HttpServer(functools.partial(_answer, self), self.limits, name="model-server")
        bound = http.start(port, host)
        self._http = http
        thread = threading.Thread(target=self._follow, name="model-server-versions", daemon=True)
        thread.start()
        self._threads.append(thread)
        log.info("Model server for %s answering on http://%s:%d (versions under %s)",
                 self.model_name, host, bound, self.versions.base_path)
        return bound

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("server not started")
        return self._http.port

    def wait_until_available(self, timeout: float | None) -> int | None:
        """The serving version once one is loaded (and, during a rollout, the candidate
        loaded or found unable to load); None if the server is shut down first;
        TimeoutError (with the last load error) after `timeout` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            serving = self._default()
            if serving is not None and self._first_poll.is_set():  # both tracks, when a rollout runs
                return serving.version
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"model {self.model_name} not available within {timeout:.0f} s: "
                                   f"{self.versions.last_error or 'still loading'}")
            self._stop.wait(0.05)
        return None

    def describe(self) -> str:
        """What answers requests that name no version, in a few words (for a start line)."""
        routing = self.tracks.routing
        serving = self._default()
        if routing is None or routing.state is None:
            return f"version {serving.version}" if serving is not None else "no version yet"
        state = routing.state
        if routing.candidate is None:
            return f"stable version {state.stable} (candidate version {state.candidate} not serving: {routing.note})"
        keyed = f"feature {routing.state.key_feature}" if state.key_feature else traffic_split.KEY_HEADER
        return (f"stable version {state.stable} and candidate version {state.candidate} "
                f"({state.candidate_percent:g}% of requests, sticky by {keyed})")

    def wait_stopped(self, timeout: float | None = None) -> bool:
        """True once a stop was requested (within `timeout` seconds; None: no limit)."""
        return self._stop.wait(timeout)

    def request_stop(self) -> None:
        """Asks serve() to return (safe in a signal handler)."""
        self._stop.set()

    def shutdown(self) -> None:
        """Stops listening and following, answers the requests in flight (for up to
        limits.stop_seconds), then closes every connection. Idempotent."""
        self._stop.set()
        http, self._http = self._http, None
        if http is not None:
            http.stop()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
        self._threads = []

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        """start(), then block until shutdown(), request_stop(), SIGTERM or SIGINT."""
        self.start(port, host)
        try:
            with stop_on_signals(self):
                self.wait_stopped()
        finally:
            self.shutdown()

    def __enter__(self) -> ModelServer:
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()

    def _follow(self) -> None:
        imported = False
        while not self._stop.is_set():
            # the rollout state first: an abort takes effect before any slow version load
            for poll in (self._poll_tracks, self.versions.poll):
                try:
                    poll()
                except Exception:  # noqa: BLE001 - a poll that breaks must not end the serving
                    log.exception("Polling %s failed", self.versions.base_path)
            self._first_poll.set()
            if not imported:
                # TensorFlow also while no version is there yet: a server started ahead of
                # its model (server_process.start_spare) has it imported when the model comes.
                import tensorflow  # noqa: F401

                imported = True
            self._stop.wait(self.poll_seconds)

    def _poll_tracks(self, *available) -> None:
        self.tracks.poll(available=(self.versions.serving, *available))

    def _load_for_follower(self, version: int, path: str):
        """The follower's loader: a version a track holds is not loaded twice, and the
        rollout state is read again before the follower swaps to a new version, so a
        candidate published after its rollout.json never answers unrouted requests."""
        loaded = self.tracks.loaded(version, path) or self._load_version(version, path)
        try:
            self._poll_tracks(loaded)
        except Exception:  # noqa: BLE001 - the version loaded; the next poll tries the state again
            log.exception("Reading the rollout state in %s failed", self.versions.base_path)
        return loaded

    def _load_version(self, version: int, path: str):
        """A version loads with the schema beside it (a schema that does not read fails the
        load, so the version is reported and never served unchecked)."""
        schema = RequestSchema.from_version_dir(path)
        loaded = load_version(version, path)
        # held by the version itself: a cache of the last few loads forgot a stable version
        # that served on while newer pushes loaded beside it, and its requests went unchecked
        loaded.checker = schema
        return loaded

    # -- the REST API -------------------------------------------------------------------
    def _default(self):
        """The version requests naming none meet unless routed: a rollout's stable, else the follower's."""
        routing = self.tracks.routing
        return routing.stable if routing is not None else self.versions.serving

    def _loaded(self, version: str | None) -> tuple:
        """(the LoadedVersion, its track) answering a request: the named version, else a
        rollout's stable version (metadata describes it), else the follower's."""
        routing = self.tracks.routing  # read once: this request sees one state
        serving = self.versions.serving
        if version is None:
            if routing is not None:
                return routing.stable, traffic_split.STABLE
            if serving is not None:
                return serving, traffic_split.STABLE
        else:
            found = routing.find(int(version)) if routing is not None else None
            if found is None and serving is not None and serving.version == int(version):
                found = serving
            if found is not None:
                return found, routing.track_of(found.version) if routing is not None else traffic_split.STABLE
        spec = f"Specific({self.model_name}, {version})" if version else f"Latest({self.model_name})"
        raise HttpError(404, f"Servable not found for request: {spec}")

    def status(self, version: str | None) -> dict:
        # tensorflow_serving/apis/get_model_status.proto (GetModelStatusResponse as JSON),
        # plus "rollout" while one routes requests (TF Serving's clients ignore the field)
        routing = self.tracks.routing
        states = {**self.versions.status(), **self.tracks.status()}
        if version is not None:
            states = {v: s for v, s in states.items() if v == int(version)}
        if not states:
            which = f"version {version} of model" if version else "any versions of model"
            raise HttpError(404, f"Could not find {which} {self.model_name}")
        answer = {"model_version_status": [
            {"version": str(v), "state": s.state,
             "status": {"error_code": "UNKNOWN" if s.error else "OK", "error_message": s.error}}
            for v, s in sorted(states.items(), reverse=True)]}
        if routing is not None:
            answer["rollout"] = routing.summary()
        return answer

    def metadata(self, version: str | None) -> dict:
        loaded, _ = self._loaded(version)
        return {"model_spec": {"name": self.model_name, "signature_name": "", "version": str(loaded.version)},
                "metadata": {"signature_def": {"signature_def": loaded.signature_defs()}}}

    def predict(self, version: str | None, body: bytes, arrived: float, request_id: str = "",
                key_header: str | None = None) -> tuple[dict, int, str]:
        """(the answer, the version that computed it, its track)."""
        import tensorflow as tf

        routing = None if version is not None else self.tracks.routing  # read once: one state per request
        if routing is None:
            loaded, track = self._loaded(version)  # a 404 comes before the body is parsed
        request = rest_api.parse_predict_request(body)
        if routing is not None:
            first = request.rows[0] if request.rows is not None else request.columns
            spec = routing.state.key if routing.state is not None else "header"
            loaded, track = routing.choose(traffic_split.request_key(spec, key_header, first))
        # this request stays on this version
        signature = loaded.signatures.get(request.signature_name)
        if signature is None:
            raise rest_api.BadRequest(f'Serving signature name: "{request.signature_name}" not found in '
                                      f"signature def; this model has {sorted(loaded.signatures)}")
        specs = signature.structured_input_signature[1]
        feed, instances = rest_api.signature_feed(
            request, specs, lambda: loaded.feature_types(request.signature_name),
            checker=loaded.checker)

        def run(feed):
            computed = signature(**{name: tf.constant(value, dtype=specs[name].dtype) for name, value in feed.items()})
            return {name: value.numpy() for name, value in computed.items()}
        def logged(outputs, status_code=200):
            if self._on_request is None:
                return
            record = InferenceRecord(self.model_name, loaded.version, arrived, request.signature_name,
                                     instances, outputs, request_id, track,
                                     latency_ms=(time.time() - arrived) * 1000.0, status_code=status_code)
            try:
                with self._hook_lock:
                    self._on_request(record)
            except Exception:  # noqa: BLE001 - logging must not fail the answer
                failures = self._hook_failures.count()  # 1, 2, 4, ...: a failing hook fails every request
                if failures:
                    log.exception("on_request hook failed for a request to version %d (%d failures so far)",
                                  loaded.version, failures)

        # concurrent requests to one version and signature share a model call (batching.py)
        try:
            outputs = self._batcher.call((loaded.path, request.signature_name), run, feed)
        except Exception as err:  # the request passed its checks: a failure of this version
            logged({}, _tf_error_status(err))
            raise
        answer = rest_api.predict_response(outputs, columnar=request.rows is None)
        answer["model_version"] = str(loaded.version)
        logged(outputs)
        return answer, loaded.version, track


def _answer(app: ModelServer, request: http_server.Request) -> http_server.Response:
    """TF Serving's REST API over the shared transport (called in its thread pool)."""
    identity = request_id(request.headers.get("X-Request-Id"))
    try:
        status, payload, headers = _route_and_answer(app, request, identity)
    except HttpError as err:
        status, payload, headers = err.status, {"error": str(err)}, None
    except rest_api.BadRequest as err:
        status, payload, headers = 400, {"error": str(err)}, None
    except Exception as err:  # noqa: BLE001 - answered as TF Serving would, with the reason
        status, payload, headers = _tf_error_status(err), {"error": f"{type(err).__name__}: {err}"}, None
        log.warning("%s %s failed: %s", request.method, request.path, payload["error"][:500])
    return http_server.json_response(status, payload, {**(headers or {}), "X-Request-Id": identity})


def _route_and_answer(app: ModelServer, request: http_server.Request, identity: str):
    match = ROUTE.match(request.path.split("?", 1)[0])
    if not match:
        raise HttpError(404, f"Malformed request: {request.method} {request.path}")
    if match["name"] != app.model_name:
        raise HttpError(404, f"Servable not found for request: Latest({match['name']})")
    version, action = match["version"], match["action"]
    if request.method == "GET":
        if action == "/metadata":
            return 200, app.metadata(version), None
        if action is None:
            return 200, app.status(version), None
        raise HttpError(405, f"{action} needs POST")
    if request.method != "POST":
        raise HttpError(405, f"{request.method} is not served: GET the status or metadata, POST :predict")
    if action != ":predict":
        raise HttpError(501 if action in (":classify", ":regress") else 405,
                        f"{action or 'POST'} is not served by kubetfx's model server: use :predict")
    body = _body(request, app.limits.max_body_bytes)
    payload, served, track = app.predict(version, body, request.arrived, identity,
                                         request.headers.get(traffic_split.KEY_HEADER))
    return 200, payload, {"X-Model-Version": str(served), "X-Model-Track": track}


def _body(request: http_server.Request, max_bytes: int) -> bytes:
    """The JSON text of a predict: a gzip body uncompressed within the body bound
    (http_server.decoded_body), then its nesting bounded before json.loads recurses into it
    (100k levels were a 500 RecursionError)."""
    try:
        body = http_server.decoded_body(request, max_bytes)
    except http_server.BodyError as err:
        raise HttpError(err.status, str(err)) from None
    if http_server.json_too_deep(body, MAX_JSON_DEPTH):
        raise HttpError(400, f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return body


def _tf_error_status(err: Exception) -> int:
    """TF Serving's HTTP status for a TensorFlow error (tensorflow_serving/util/net_http
    status mapping in http_rest_api_handler: INVALID_ARGUMENT 400, NOT_FOUND 404, else 500)."""
    import tensorflow as tf

    if isinstance(err, (tf.errors.InvalidArgumentError, ValueError, TypeError)):
        return 400
    if isinstance(err, tf.errors.NotFoundError):
        return 404
    return 500


@contextlib.contextmanager
def stop_on_signals(server: ModelServer):
    """SIGTERM and SIGINT end serve() cleanly (only the main thread can take signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda signum, frame: server.request_stop())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def watch_parent(server: ModelServer, parent_pid: int, interval: float = 0.2) -> threading.Thread:
    """Stops the server when the process that started it is gone (killed, even by SIGKILL):
    an orphan is re-parented, so getppid() changes. Works from any thread, unlike
    PR_SET_PDEATHSIG, which fires when the *thread* that forked exits."""
    def watch():
        while not server.wait_stopped(interval):
            if os.getppid() != parent_pid:
                log.warning("Parent process %d is gone: shutting down", parent_pid)
                server.request_stop()
                return
    thread = threading.Thread(target=watch, name="model-server-parent", daemon=True)
    thread.start()
    return thread


def _write_port_file(path: str, port: int) -> None:
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(str(port))
    os.replace(temporary, path)  # readers never see a partial number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Serve a base directory of SavedModel versions on TF Serving's REST API.")
    parser.add_argument("--model_base_path", required=True, help="directory of integer-named SavedModel versions")
    parser.add_argument("--model_name", required=True)
    parser.add_argument("--port", "--rest_api_port", type=int, default=8501, help="0: any free port")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0: every interface)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0,
                        help="how often the base directory is checked for versions (TF Serving's flag)")
    parser.add_argument("--startup_timeout_seconds", type=float, default=300,
                        help="exit 1 if no version is available by then (0: wait for one forever)")
    parser.add_argument("--port_file", help="write the bound port here once answering (for --port 0)")
    parser.add_argument("--parent_pid", type=int, help="shut down when this parent process is gone")
    limits = parser.add_argument_group("bounds of the HTTP transport")
    limits.add_argument("--max_body_bytes", "--max-body-bytes", type=int, default=MAX_BODY_BYTES,
                        help="a larger request body is a 413 (default: 16 MiB)")
    limits.add_argument("--read_timeout_seconds", type=float, default=http_server.Limits.idle_seconds,
                        help="close a connection whose headers or body do not arrive within this, "
                             "or that stays idle this long between requests")
    limits.add_argument("--http_workers", type=int, default=WORKERS,
                        help="threads answering requests (those waiting for a model call join the next batch)")
    limits.add_argument("--max_batch_rows", type=int, default=MAX_BATCH_ROWS,
                        help="rows of concurrent requests merged into one model call (1: no batching)")
    limits.add_argument("--stop_timeout_seconds", type=float, default=http_server.Limits.stop_seconds,
                        help="on shutdown, how long requests in flight may take to be answered")
    return parser


def default_limits(**overrides) -> http_server.Limits:
    """The model server's transport bounds (16 MiB bodies, WORKERS threads) with
    `overrides`; ValueError naming one that is not positive."""
    return dataclasses.replace(http_server.Limits(max_body_bytes=MAX_BODY_BYTES, workers=WORKERS), **overrides).validate()


def limits_from_args(args) -> http_server.Limits:
    """The transport's bounds from the flags; ValueError naming the flag that is not positive."""
    return default_limits(max_body_bytes=args.max_body_bytes, idle_seconds=args.read_timeout_seconds,
                          body_seconds=args.read_timeout_seconds, workers=args.http_workers,
                          stop_seconds=args.stop_timeout_seconds)


def main(argv=None) -> int:
    started = time.monotonic()
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        limits = limits_from_args(args)
    except ValueError as err:
        log.error("Bad flag: %s", err)
        return 2
    if args.max_batch_rows < 1:
        log.error("Bad flag: --max_batch_rows must be at least 1")
        return 2
    server = ModelServer(args.model_base_path, args.model_name, poll_seconds=args.file_system_poll_wait_seconds,
                         limits=limits, max_batch_rows=args.max_batch_rows)
    if args.parent_pid and os.getppid() != args.parent_pid:
        log.error("Parent process %d is already gone", args.parent_pid)
        return 1
    try:
        port = server.start(args.port, args.host)
    except OSError as err:
        log.error("Cannot listen on %s:%d: %s", args.host, args.port, err)
        return 1
    try:
        with stop_on_signals(server):
            if args.port_file:
                _write_port_file(args.port_file, port)
            if args.parent_pid:
                watch_parent(server, args.parent_pid)
            try:
                version = server.wait_until_available(args.startup_timeout_seconds or None)
            except TimeoutError as err:
                log.error("%s", err)
                return 1
            if version is not None:
                log.info("Version %d available %.1f s after start", version, time.monotonic() - started)
            server.wait_stopped()
    finally:
        server.shutdown()
    log.info("Model server stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
