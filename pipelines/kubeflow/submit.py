"""`kubetfx submit`: put the data where the cluster reads it, upload the compiled spec to a
Kubeflow Pipelines 2.x API (a new pipeline, or a new version of an existing one), and start
a run — or a recurring run with `--schedule` — optionally waiting for it.

- The spec is checked first with the backend's own upload rules (kubeflow/backend_rules.py):
  a file that is not a KFP v2 spec is a usage error, before anything is sent.
- The data (`--data`, default the embedded penguins) is uploaded to the run's `data_root`
  (default: the spec's, `minio://mlpipeline/kubetfx/data/<pipeline>/`) through the object
  store at `--object-store-endpoint` / $KUBETFX_OBJECT_STORE_ENDPOINT, with the credentials
  of $AWS_ACCESS_KEY_ID / $AWS_SECRET_ACCESS_KEY; its fingerprint becomes the run parameter
  `data_fingerprint`, so KFP's cache key changes with the data (kubeflow/data_import.py).
- Auth: a bearer token from $KUBETFX_KFP_TOKEN or `--token-file`, never from the command
  line (it would show in `ps` and shell history); never printed.
- Every wait is bounded: each API call (`--request-timeout`) and the whole `--wait`
  (`--timeout`); each ends with one line and its exit code (pipelines/exit_codes.py)."""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
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
                    f"{WAIT_TIMEOUT} --timeout passed before the run ended (it goes on).")
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    parser.add_argument("--spec", default="build/kubetfx-penguin.yaml", help="compiled spec (make compile)")
    parser.add_argument("--pipeline-name", help="default: the spec's pipeline name")
    parser.add_argument("--experiment", default="kubetfx")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="run parameter (repeatable)")
    parser.add_argument("--data", help="local CSV file or folder to upload (default: the embedded penguins data)")
    parser.add_argument("--data-root", help="object-store URI the run reads (default: the spec's data_root)")
    parser.add_argument("--object-store-endpoint",
                        help="S3-protocol endpoint of KFP's object store, e.g. http://localhost:9000 "
                             "(default: $KUBETFX_OBJECT_STORE_ENDPOINT)")
    parser.add_argument("--schedule", metavar="CRON",
                        help="create a recurring run instead: KFP's 6-field cron (seconds first, e.g. "
                             "'0 0 3 * * *'); a 5-field expression runs at second 0. Caching is off for it: "
                             "the data fingerprint is only known at submit time")
    parser.add_argument("--wait", action="store_true", help="wait for the run, printing task states")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait (default 3600)")
    parser.add_argument("--request-timeout", type=float, default=30, help="seconds per API call (default 30)")
    parser.add_argument("--token-file", help=f"file holding the bearer token (default: ${TOKEN_ENV})")
    parser.add_argument("--token", nargs="?", action=_RefuseToken, help=argparse.SUPPRESS)
    parser.add_argument("--namespace", help="KFP namespace (multi-user installs)")
    parser.set_defaults(func=handler)


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
        try:
            return Path(token_file).read_text().strip() or None
        except OSError as err:
            raise SubmitError(f"cannot read --token-file {token_file}: {err.strerror}", USAGE) from None
    return os.environ.get(TOKEN_ENV) or None


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
        client = kfp.Client(host=host, existing_token=token, namespace=namespace or "kubeflow")
    except Exception as err:  # noqa: BLE001 — its health check: refused, timed out
        raise _unreachable(host, err) from None
    _check_reachable(client, host)
    return client


def _unreachable(host: str, err: Exception) -> SubmitError:
    status = getattr(err, "status", None)
    if status in (401, 403):
        return SubmitError(f"{host} refused the credentials (HTTP {status}); check ${TOKEN_ENV} or --token-file",
                           UNREACHABLE_OR_REJECTED)
    reason = getattr(err, "reason", None) or type(err).__name__
    return SubmitError(f"cannot reach Kubeflow Pipelines at {host}: {reason}; is the API port-forwarded "
                       "(make deploy-kfp prints how)?", UNREACHABLE_OR_REJECTED)


def _check_reachable(client, host: str) -> None:
    try:
        client.get_kfp_healthz()
    except Exception as err:  # noqa: BLE001 — connection refused, timeout, HTTP error: one line each
        raise _unreachable(host, err) from None


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


def _data_parameters(args, spec) -> dict:
    """Uploads the data; returns the run parameters `data_root` and `data_fingerprint`."""
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
    try:
        fingerprint = data_upload.upload(s3, Path(args.data) if args.data else EMBEDDED_DATA, data_root)
    except data_upload.DataUploadError as err:
        raise SubmitError(str(err), USAGE) from None
    print(f"kubetfx: data uploaded to {data_root} (fingerprint {fingerprint[:12]})")
    return {data_import.DATA_ROOT: data_root, data_import.DATA_FINGERPRINT: fingerprint}


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
    with bounded_api_calls(args.request_timeout):
        return _submit_bounded(args, kfp, spec, spec_path, name, params, schedule, token)


def _submit_bounded(args, kfp, spec, spec_path: Path, name: str, params: dict, schedule, token) -> int:
    client = _client(args.host, token, args.namespace)
    params = {**_data_parameters(args, spec), **params}
    try:
        pipeline_id, version_id = _upload(client, str(spec_path), name)
        experiment = client.create_experiment(args.experiment, namespace=args.namespace)
        if schedule:
            job = client.create_recurring_run(
                experiment_id=experiment.experiment_id, job_name=f"{name}-schedule", cron_expression=schedule,
                params=params, pipeline_id=pipeline_id, version_id=version_id, enable_caching=False,
                no_catchup=True)
            print(f"kubetfx: recurring run {job.recurring_run_id} of {name}: {schedule} (version {version_id})")
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
