"""`kubetfx submit`: put the data where the cluster reads it, upload the compiled spec to a
Kubeflow Pipelines 2.x API (a new pipeline, or a new version of an existing one), and start
a run — or a recurring run with `--schedule` — optionally waiting for it.

- The spec is checked first with the backend's own upload rules (kubeflow/backend_rules.py):
  a file that is not a KFP v2 spec is a usage error, before anything is sent.
- The data (`--data`, default the embedded penguins) is uploaded to the run's `data_root`
  (default: the spec's, `minio://mlpipeline/kubetfx/data/<pipeline>/`) through the object
  store at `--object-store-endpoint` / $KUBETFX_OBJECT_STORE_ENDPOINT, with the credentials
  of $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY. What the data is, is decided by each run
  when it starts (the spec's `data-fingerprint` task, kubeflow/data_import.py), not here: a
  run started later (a schedule, the UI) sees what is under `data_root` then.
- `--schedule`: one recurring run per pipeline and experiment, named `<pipeline>-schedule`;
  submitting again replaces it (`replace_recurring_run`).
- Auth: a bearer token from $KUBETFX_KFP_TOKEN or `--token-file`, never from the command
  line (it would show in `ps` and shell history); never printed.
- Every wait is bounded: each API call (`--request-timeout`) and the whole `--wait`
  (`--timeout`); each ends with one line and its exit code (pipelines/exit_codes.py).
- Before anything is sent, one probe of `/apis/v2beta1/healthz` (no retries) tells the causes
  apart, one line each: nothing listening, no answer in time, TLS, 404 (not a KFP API),
  401/403 (credentials); then the backend's version (`tag_name`, KFP 2.2.0-2.5.0
  backend/src/apiserver/main.go) is checked against what the spec runs on (see
  `check_backend_version`). Library tracebacks and urllib3's retry lines only with --verbose."""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import logging
import math
import os
import re
import sys
import time
from pathlib import Path

from kubetfx.pipelines import exit_codes

OK = exit_codes.OK
USAGE = exit_codes.USAGE
RUN_FAILED = exit_codes.SUBMIT_RUN_FAILED
UNREACHABLE_OR_REJECTED = exit_codes.SUBMIT_REFUSED
API_ERROR_WHILE_WAITING = exit_codes.SUBMIT_LOST_RUN
WAIT_TIMEOUT = exit_codes.SUBMIT_WAIT_TIMEOUT
UNSUPPORTED_BACKEND = exit_codes.SUBMIT_UNSUPPORTED_BACKEND
HEALTHZ = "/apis/v2beta1/healthz"
# Below 2.3.0 the pod has no `/minio` emptyDir (KFP 2.3.0 backend/src/v2/compiler/argocompiler/
# container.go adds it as minioScratchLocation; absent at 2.2.0), so the launcher, running as
# the image's uid 1000, cannot create the local copies of the artifacts: every task fails.
MIN_BACKEND = (2, 3, 0)
TESTED_BACKENDS = ((2, 4, 0), (2, 5, 0))   # the range the spec is checked against (README)
TOKEN_ENV = "KUBETFX_KFP_TOKEN"
POLL_SECONDS = 5.0
FINAL_STATES = {"SUCCEEDED", "FAILED", "ERROR", "CANCELED", "SKIPPED"}


class SubmitError(RuntimeError):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


class _RefuseToken(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"--token is not accepted (a token in argv shows in ps and shell history): "
                     f"set ${TOKEN_ENV} or pass --token-file FILE")


def add_parser(subparsers, handler) -> None:
    parser = subparsers.add_parser(
        "submit", help="upload the data and the compiled spec to Kubeflow Pipelines and start a run",
        description=f"Auth: the bearer token is read from ${TOKEN_ENV} or --token-file, never from argv. "
                    f"Object store credentials: $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY. Exit codes: "
                    f"{RUN_FAILED} run ended unsuccessfully, {UNREACHABLE_OR_REJECTED} KFP unreachable or refused "
                    f"the request, {API_ERROR_WHILE_WAITING} API error while waiting (the run may go on), "
                    f"{WAIT_TIMEOUT} --timeout passed before the run ended (it goes on), "
                    f"{UNSUPPORTED_BACKEND} the backend's KFP version cannot run the spec (before 2.3.0).")
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    parser.add_argument("--spec", default="build/kubetfx-penguin.yaml", help="compiled spec (make compile)")
    parser.add_argument("--pipeline-name", help="default: the spec's pipeline name")
    parser.add_argument("--experiment", default="kubetfx")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="run parameter (repeatable)")
    parser.add_argument("--data", help="local CSV file or folder to upload (default: the embedded penguins data)")
    parser.add_argument("--data-root", help="object-store URI the run reads (default: the spec's data_root)")
    parser.add_argument("--module-file", help="the module file the spec was compiled with (compile --module-file): "
                                              "staged where the spec reads it, unless already there")
    parser.add_argument("--schema-file", help="the schema file the spec was compiled with (compile --schema-file)")
    parser.add_argument("--object-store-endpoint",
                        help="S3-protocol endpoint of KFP's object store, e.g. http://localhost:9000 "
                             "(default: $KUBETFX_OBJECT_STORE_ENDPOINT)")
    parser.add_argument("--schedule", metavar="CRON",
                        help="create a recurring run instead (replacing this pipeline's own, named "
                             "<pipeline>-schedule): KFP's 6-field cron (seconds first, e.g. '0 0 3 * * *'); a "
                             "5-field expression runs at second 0. Each run fingerprints data_root when it starts: "
                             "new files there re-run ExampleGen and all after it, none hit the cache")
    parser.add_argument("--wait", action="store_true", help="wait for the run, printing task states")
    parser.add_argument("--timeout", type=seconds, default=3600, help="seconds to wait with --wait (default 3600)")
    parser.add_argument("--request-timeout", type=seconds, default=30, help="seconds per API call (default 30)")
    parser.add_argument("--token-file", help=f"file holding the bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--token", nargs="?", action=_RefuseToken, help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help="KFP namespace (multi-user installs)")
    parser.add_argument("--verbose", action="store_true",
                        help="show the client libraries' own messages (retries, tracebacks) too")
    parser.set_defaults(func=handler)


def seconds(text: str) -> float:
    """A wait's bound: a finite number above 0. `nan` would never end a wait (every
    comparison with it is false), `inf` neither; urllib3 raises on 0 or less."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a finite number of seconds above 0 (every wait is bounded)")
    return value


MAX_TOKEN_BYTES = 64 << 10  # a bearer token (a JWT, a service account's) is a few kB


def parse_params(items: list) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SubmitError(f"--param {item!r} must be KEY=VALUE", USAGE)
        try:
            params[key] = json.loads(value)  # numbers stay numbers (eval_threshold=0.8)
        except ValueError:
            params[key] = value
    return params


def read_token(token_file) -> str | None:
    if token_file:
        return _token(_read_token_file(token_file), f"--token-file {token_file}")
    return _token(os.environ.get(TOKEN_ENV) or "", f"${TOKEN_ENV}")


def _read_token_file(token_file: str) -> str:
    """Its text, read with a bound and only from a regular file: a FIFO nobody writes to
    would block forever, /dev/zero would fill the memory."""
    import stat

    try:
        fd = os.open(token_file, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SubmitError(f"--token-file {token_file} is not a regular file", USAGE)
            with os.fdopen(fd, "rb", closefd=False) as file:
                content = file.read(MAX_TOKEN_BYTES + 1)
        finally:
            os.close(fd)
    except OSError as err:
        raise SubmitError(f"cannot read --token-file {token_file}: {err.strerror}", USAGE) from None
    if len(content) > MAX_TOKEN_BYTES:
        raise SubmitError(f"--token-file {token_file} is larger than {MAX_TOKEN_BYTES >> 10} KiB: not a token",
                          USAGE)
    return content.decode("ascii", errors="replace")


def _token(text: str, source: str) -> str | None:
    """The token, or None; one that cannot go in an HTTP header is refused here, not met
    as "cannot reach" when the request is built."""
    token = text.strip()
    if token and not all(33 <= ord(c) < 127 for c in token):
        raise SubmitError(f"{source} is not a bearer token: it holds spaces, line breaks or characters outside "
                          "printable ASCII", USAGE)
    return token or None


def cron_expression(schedule: str) -> str:
    fields = schedule.split()
    if len(fields) == 5:
        fields = ["0"] + fields
    if len(fields) != 6:
        raise SubmitError(f"--schedule {schedule!r} is not a cron expression (5 or 6 fields)", USAGE)
    return " ".join(fields)


def load_spec(path: Path):
    """(PipelineSpec, PlatformSpec) if KFP's apiserver would accept the file, else exit 2."""
    from kubetfx.pipelines.kubeflow import backend_rules

    if not path.is_file():
        raise SubmitError(f"no compiled spec at {path}: run `make compile` (or pass --spec)", USAGE)
    try:
        return backend_rules.check_upload(path.read_text())
    except (backend_rules.Rejected, UnicodeDecodeError) as err:
        raise SubmitError(f"{path} is not a pipeline spec KFP accepts ({err}); compile one with `kubetfx compile`",
                          USAGE) from None


def _api_message(err) -> str:
    body = getattr(err, "body", None) or ""
    try:
        return json.loads(body).get("message") or body
    except (ValueError, AttributeError):
        return str(body or err)


@contextlib.contextmanager
def bounded_api_calls(seconds: float):
    """Every kfp_server_api call in the block times out after `seconds` (connect, read).
    kfp.Client passes no timeout to its calls (urllib3 then waits forever), its constructor
    included (its health check when no namespace is configured)."""
    from kfp_server_api import rest

    original = rest.RESTClientObject.request

    def request(self, *args, _request_timeout=None, **kwargs):
        return original(self, *args, _request_timeout=_request_timeout or (seconds, seconds), **kwargs)

    rest.RESTClientObject.request = request
    try:
        yield
    finally:
        rest.RESTClientObject.request = original


def _client(host: str, token, namespace):
    import kfp

    try:
        return kfp.Client(host=host, existing_token=token, namespace=namespace or "kubeflow")
    except Exception as err:  # noqa: BLE001 — its config loading; the probe already reached the API
        raise SubmitError(f"cannot set up the Kubeflow Pipelines client for {host}: {type(err).__name__}: {err}",
                          UNREACHABLE_OR_REJECTED) from None


def _cause(err: Exception) -> Exception:
    """The innermost exception urllib3 wrapped (MaxRetryError, ProtocolError, ...)."""
    seen = set()
    while id(err) not in seen:
        seen.add(id(err))
        inner = getattr(err, "reason", None)
        if not isinstance(inner, Exception):
            inner = err.__context__ if isinstance(err.__context__, Exception) else None
        if inner is None:
            return err
        err = inner
    return err


def _connection_error(host: str, err: Exception, timeout: float) -> SubmitError:
    import socket
    import ssl

    from urllib3 import exceptions as http_errors

    cause = _cause(err)
    kinds = [type(e) for e in (err, cause)]
    if any(issubclass(k, (ssl.SSLError, http_errors.SSLError)) for k in kinds):
        detail = getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or cause
        return SubmitError(f"TLS with {host} failed ({detail}); an http:// endpoint given as https://, or a "
                           "certificate this machine does not trust", UNREACHABLE_OR_REJECTED)
    # Before the timeouts: urllib3's NewConnectionError is a ConnectTimeoutError subclass.
    if any(issubclass(k, ConnectionRefusedError) for k in kinds) or "Connection refused" in str(cause):
        return SubmitError(f"nothing answers at {host} (connection refused); is the KFP API port-forwarded "
                           "(make deploy-kfp prints how)?", UNREACHABLE_OR_REJECTED)
    if any(issubclass(k, socket.gaierror) for k in kinds) or "resolve" in str(cause).lower():
        return SubmitError(f"cannot resolve the host name of {host}", UNREACHABLE_OR_REJECTED)
    if any(issubclass(k, (TimeoutError, socket.timeout, http_errors.TimeoutError)) for k in kinds):
        return SubmitError(f"Kubeflow Pipelines at {host} did not answer within {timeout:g} s (--request-timeout)",
                           UNREACHABLE_OR_REJECTED)
    return SubmitError(f"cannot reach Kubeflow Pipelines at {host}: {type(cause).__name__}",
                       UNREACHABLE_OR_REJECTED)


def probe(host: str, token, timeout: float) -> dict:
    """The backend's healthz answer (`{"commit_sha", "tag_name", "multi_user"}`), fetched once
    without retries, verifying TLS as kfp.Client does (certifi's CAs); each failure one line."""
    import certifi
    import urllib3

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    pool = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=certifi.where(), retries=False,
                               timeout=urllib3.Timeout(connect=timeout, read=timeout))
    url = host.rstrip("/") + HEALTHZ
    try:
        answer = pool.request("GET", url, headers=headers, preload_content=True, redirect=False)
    except Exception as err:  # noqa: BLE001 — urllib3's errors, sorted by cause below
        raise _connection_error(host, err, timeout) from None
    finally:
        pool.clear()
    if answer.status in (401, 403):
        raise SubmitError(f"{host} refused the credentials (HTTP {answer.status}); check ${TOKEN_ENV} or "
                          "--token-file", UNREACHABLE_OR_REJECTED)
    if answer.status == 404:
        raise SubmitError(f"{host} answered 404 for {HEALTHZ}: not a Kubeflow Pipelines 2.x API (give the "
                          "ml-pipeline service or the UI's address, without a path)", UNREACHABLE_OR_REJECTED)
    if 300 <= answer.status < 400:
        raise SubmitError(f"{host} redirects {HEALTHZ} (HTTP {answer.status}) to "
                          f"{answer.headers.get('Location', '?')}: a login page? give the API's address or a "
                          "token", UNREACHABLE_OR_REJECTED)
    if answer.status != 200:
        raise SubmitError(f"{host} answered HTTP {answer.status} for {HEALTHZ}", UNREACHABLE_OR_REJECTED)
    try:
        info = json.loads(answer.data)
    except ValueError:
        info = None
    if not isinstance(info, dict):
        raise SubmitError(f"{host} answered {HEALTHZ} with something that is not JSON: not a Kubeflow "
                          "Pipelines API", UNREACHABLE_OR_REJECTED)
    return info


def backend_version(tag) -> tuple | None:
    """(major, minor, patch) of a KFP release tag ('2.5.0', 'v2.4.1', '2.5.0-rc.1'), else None."""
    found = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)(?:[-+.].*)?", str(tag or "").strip())
    return tuple(int(part) for part in found.groups()) if found else None


def check_backend_version(host: str, info: dict) -> None:
    """Refuses a backend the spec cannot run on; warns (and goes on) for an unknown version
    or one outside the tested range."""
    tag = info.get("tag_name")
    version = backend_version(tag)
    lowest, highest = (".".join(map(str, v)) for v in TESTED_BACKENDS)
    if version is None:
        print(f"kubetfx: warning: cannot tell the KFP version of {host} (tag_name {tag!r}); the spec needs "
              f"2.3.0 or later and is tested on {lowest}-{highest}: going on", file=sys.stderr)
    elif version < MIN_BACKEND:
        raise SubmitError(f"Kubeflow Pipelines at {host} is {tag}: the spec needs 2.3.0 or later (before it, "
                          "pods have no /minio scratch volume and every task fails staging its artifacts); "
                          f"upgrade KFP (tested: {lowest}-{highest})", UNSUPPORTED_BACKEND)
    elif not TESTED_BACKENDS[0][:2] <= version[:2] <= TESTED_BACKENDS[1][:2]:
        print(f"kubetfx: warning: Kubeflow Pipelines at {host} is {tag}, outside the tested {lowest}-{highest}: "
              "going on", file=sys.stderr)


@contextlib.contextmanager
def quiet_libraries(verbose: bool):
    """urllib3's "Retrying ..." warnings and the kfp client's logged tracebacks hidden (our one
    line says the cause), unless --verbose."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(), logging.getLogger("urllib3"), logging.getLogger("kfp")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def warn_plain_http_token(host: str, token) -> None:
    if token and host.lower().startswith("http://"):
        print(f"kubetfx: warning: the bearer token goes to {host} unencrypted (http://): safe only through a "
              "port-forward on this machine; use https:// otherwise", file=sys.stderr)


def _upload(client, spec: str, name: str) -> tuple:
    """(pipeline id, version id): a new pipeline, or a new version of the existing one."""
    pipeline_id = client.get_pipeline_id(name)
    version_name = f"{name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S-%f')}"
    if pipeline_id is None:
        pipeline = client.upload_pipeline(spec, pipeline_name=name)
        pipeline_id = pipeline.pipeline_id
        versions = client.list_pipeline_versions(pipeline_id).pipeline_versions or []
        return pipeline_id, versions[0].pipeline_version_id
    version = client.upload_pipeline_version(spec, pipeline_version_name=version_name, pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id


def wait(client, run_id: str, timeout: float) -> str:
    deadline, seen = time.monotonic() + timeout, {}
    while True:
        try:
            run = client.get_run(run_id)
        except Exception as err:  # noqa: BLE001 — HTTP error, refused connection, timeout
            detail = f"HTTP {err.status}: {_api_message(err)}" if getattr(err, "status", None) else type(err).__name__
            raise SubmitError(f"lost the run while waiting ({detail}); it may still be running: "
                              f"see run {run_id} in the KFP UI", API_ERROR_WHILE_WAITING) from None
        for task in (run.run_details.task_details if run.run_details else None) or []:
            if task.display_name and seen.get(task.display_name) != task.state:
                seen[task.display_name] = task.state
                print(f"  {task.display_name}: {task.state}", flush=True)
        if run.state in FINAL_STATES:
            return run.state
        if time.monotonic() > deadline:
            raise SubmitError(f"run {run_id} still {run.state} after {timeout:.0f} s (--timeout); it goes on in "
                              "the cluster", WAIT_TIMEOUT)
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def check_store(s3, endpoint: str, data_root: str) -> None:
    """One listing of `data_root` before the upload: a store that is down, refuses the
    credentials or lacks the bucket is one line and exit 7, as KFP's own refusals are."""
    import botocore.exceptions as store_errors

    from kubetfx.pipelines.kubeflow import object_store

    try:
        where = object_store.parse_uri(data_root)
    except object_store.ObjectStoreError:
        return  # the upload says what is wrong with the URI
    try:
        s3.list_objects_v2(Bucket=where.bucket, Prefix=where.key, MaxKeys=1)
    except store_errors.NoCredentialsError:
        raise SubmitError("no object store credentials: set $AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY "
                          "(KFP's MinIO: secret mlpipeline-minio-artifact)", USAGE) from None
    except store_errors.ClientError as err:
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = err.response.get("Error", {}).get("Code", "")
        if status in (401, 403):
            raise SubmitError(f"the object store at {endpoint} refused the credentials (HTTP {status} {code}); check "
                              "$AWS_ACCESS_KEY_ID and $AWS_SECRET_ACCESS_KEY (KFP's MinIO: secret "
                              "mlpipeline-minio-artifact)", UNREACHABLE_OR_REJECTED) from None
        if code == "NoSuchBucket":
            raise SubmitError(f"the object store at {endpoint} has no bucket {where.bucket!r} (from {data_root}); "
                              "is this KFP's store?", UNREACHABLE_OR_REJECTED) from None
        raise SubmitError(f"the object store at {endpoint} refused listing {data_root} (HTTP {status} {code})",
                          UNREACHABLE_OR_REJECTED) from None
    except (store_errors.ConnectTimeoutError, store_errors.ReadTimeoutError):
        raise SubmitError(f"the object store at {endpoint} did not answer in time (--request-timeout)",
                          UNREACHABLE_OR_REJECTED) from None
    except store_errors.EndpointConnectionError:
        raise SubmitError(f"nothing answers at the object store endpoint {endpoint}; is KFP's MinIO port-forwarded "
                          "(make deploy-kfp prints how)?", UNREACHABLE_OR_REJECTED) from None
    except store_errors.SSLError as err:
        raise SubmitError(f"TLS with the object store at {endpoint} failed ({err})", UNREACHABLE_OR_REJECTED) from None


def stage_user_files(args, spec, s3) -> None:
    """The user's files the spec reads (kubeflow/staged_files.py), uploaded where it reads
    them; the same file only (its hash is in the URI)."""
    from google.protobuf import json_format

    from kubetfx.pipelines.kubeflow import object_store, staged_files

    missing = []
    for parameter, uri in sorted(staged_files.staged_uris(json_format.MessageToDict(spec)).items()):
        flag = "--" + parameter.replace("_", "-")
        given = getattr(args, parameter, None)
        where = object_store.parse_uri(uri)
        if given:
            local = Path(given)
            if not local.is_file():
                raise SubmitError(f"{flag} {given} does not exist (or is not a file)", USAGE)
            try:
                staged_files.check_same_file(parameter, local, uri)
            except ValueError as err:
                raise SubmitError(str(err), USAGE) from None
            s3.upload_file(str(local), where.bucket, where.key)
            print(f"kubetfx: {flag} staged to {uri}")
            continue
        try:
            s3.head_object(Bucket=where.bucket, Key=where.key)
        except Exception:  # noqa: BLE001 — botocore's 404 (the store itself answered: check_store)
            missing.append((flag, uri))
    if missing:
        raise SubmitError(f"the spec reads {', '.join(u for _, u in missing)}, which the object store does not hold: "
                          f"pass {' '.join(f + ' FILE' for f, _ in missing)}, the file(s) it was compiled with", USAGE)


def _data_parameters(args, spec) -> dict:
    """Uploads the data; returns the run parameter `data_root` (and, for a spec compiled
    before the data-fingerprint task, `data_fingerprint`)."""
    from kubetfx.pipelines.config import EMBEDDED_DATA
    from kubetfx.pipelines.kubeflow import data_import, data_upload, object_store

    declared = spec.root.input_definitions.parameters
    if data_import.DATA_ROOT not in declared:
        return {}  # a spec not compiled by this kubetfx: nothing to upload
    data_root = args.data_root or declared[data_import.DATA_ROOT].default_value.string_value
    endpoint = args.object_store_endpoint or os.environ.get(data_upload.ENDPOINT_ENV)
    if not endpoint:
        raise SubmitError(f"no object store to upload the data to: pass --object-store-endpoint (KFP's MinIO, e.g. "
                          f"port-forwarded to http://localhost:9000) or set ${data_upload.ENDPOINT_ENV}", USAGE)
    s3 = object_store.client(endpoint, timeout_seconds=args.request_timeout)
    check_store(s3, endpoint, data_root)
    try:
        fingerprint = data_upload.upload(s3, Path(args.data) if args.data else EMBEDDED_DATA, data_root)
    except data_upload.DataUploadError as err:
        raise SubmitError(str(err), USAGE) from None
    stage_user_files(args, spec, s3)
    print(f"kubetfx: data uploaded to {data_root} (fingerprint {fingerprint[:12]})")
    if "data_fingerprint" in declared:  # older specs: the key frozen at submit time
        return {data_import.DATA_ROOT: data_root, "data_fingerprint": fingerprint}
    return {data_import.DATA_ROOT: data_root}


MAX_LISTED_PAGES = 50   # recurring runs of one name in one experiment: 100 per page


def find_recurring_runs(client, experiment_id: str, job_name: str) -> list:
    """Ids of the experiment's recurring runs named `job_name` (the apiserver filters on
    `display_name`, KFP 2.5.0 backend/src/apiserver/model/job.go; checked again here)."""
    query = json.dumps({"predicates": [{"key": "display_name", "operation": "EQUALS", "string_value": job_name}]})
    found, token = [], ""
    for _ in range(MAX_LISTED_PAGES):
        page = client.list_recurring_runs(experiment_id=experiment_id, page_size=100, page_token=token, filter=query)
        found += [r.recurring_run_id for r in page.recurring_runs or [] if r.display_name == job_name]
        token = page.next_page_token
        if not token:
            break
    return found


def replace_recurring_run(client, old: list, create):
    """The old recurring runs disabled, the new one created, then the old ones deleted: no
    moment with two enabled, and if the creation is refused the old ones are enabled again.
    Caching: the kfp client applies `enable_caching` only when it compiles a package file
    (kfp 2.9 client.py _create_job_config -> _override_caching_options), never to a
    pipeline version id; the spec's own per-task `cachingOptions` apply, and they are right
    for every run now that the data fingerprint is taken when the run starts."""
    for recurring_run_id in old:
        client.disable_recurring_run(recurring_run_id)
    try:
        job = create()
    except Exception:
        for recurring_run_id in old:
            client.enable_recurring_run(recurring_run_id)
        raise
    for recurring_run_id in old:
        client.delete_recurring_run(recurring_run_id)
    return job


def submit(args) -> int:
    try:
        import kfp.client  # not `import kfp`: kfp-pipeline-spec alone makes `kfp` a namespace package
    except ImportError:
        # Python 3.10 lock: TFX 1.16 pins protobuf < 4.21 there, every kfp 2.x needs >= 4.21.1.
        raise SubmitError("`kubetfx submit` needs the kfp 2 SDK, which TFX 1.16 cannot share an environment "
                          "with on Python 3.10; submit from a Python 3.11 install (or upload "
                          f"{args.spec} in the KFP UI)", USAGE) from None

    spec_path = Path(args.spec)
    spec, _ = load_spec(spec_path)
    name = args.pipeline_name or spec.pipeline_info.name
    params = parse_params(args.param)
    schedule = cron_expression(args.schedule) if args.schedule else None
    token = read_token(args.token_file)
    warn_plain_http_token(args.host, token)
    with quiet_libraries(getattr(args, "verbose", False)):
        check_backend_version(args.host, probe(args.host, token, args.request_timeout))
        with bounded_api_calls(args.request_timeout):
            return _submit_bounded(args, kfp, spec, spec_path, name, params, schedule, token)


def _submit_bounded(args, kfp, spec, spec_path: Path, name: str, params: dict, schedule, token) -> int:
    client = _client(args.host, token, args.namespace)
    params = {**_data_parameters(args, spec), **params}
    try:
        pipeline_id, version_id = _upload(client, str(spec_path), name)
        experiment = client.create_experiment(args.experiment, namespace=args.namespace)
        if schedule:
            job_name = f"{name}-schedule"
            old = find_recurring_runs(client, experiment.experiment_id, job_name)
            job = replace_recurring_run(client, old, lambda: client.create_recurring_run(
                experiment_id=experiment.experiment_id, job_name=job_name, cron_expression=schedule,
                params=params, pipeline_id=pipeline_id, version_id=version_id, no_catchup=True))
            replaced = f", replacing {', '.join(old)}" if old else ""
            print(f"kubetfx: recurring run {job.recurring_run_id} of {name}: {schedule} (version {version_id}"
                  f"{replaced})")
            return OK
        run = client.run_pipeline(experiment_id=experiment.experiment_id, job_name=f"{name}-run",
                                  params=params, pipeline_id=pipeline_id, version_id=version_id)
    except kfp.client.client.kfp_server_api.ApiException as err:
        raise SubmitError(f"Kubeflow Pipelines rejected the request (HTTP {err.status}): {_api_message(err)}",
                          UNREACHABLE_OR_REJECTED) from None
    except Exception as err:  # noqa: BLE001 — timeouts and dropped connections of urllib3
        raise SubmitError(f"Kubeflow Pipelines at {args.host} did not answer ({type(err).__name__}: {err})",
                          UNREACHABLE_OR_REJECTED) from None
    print(f"kubetfx: submitted run {run.run_id} of {name} (pipeline {pipeline_id}, version {version_id})")
    if not args.wait:
        return OK
    state = wait(client, run.run_id, args.timeout)
    print(f"kubetfx: run {run.run_id} {state}")
    return OK if state == "SUCCEEDED" else RUN_FAILED


def main(args) -> int:
    try:
        return submit(args)
    except SubmitError as err:
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return err.code
