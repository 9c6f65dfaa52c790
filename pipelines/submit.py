"""`kubetfx submit`: upload the compiled spec to a Kubeflow Pipelines 2.x API (as a new
pipeline, or a new version of an existing one), start a run with parameters, and
optionally wait, printing task states as they change.

Auth: `--token` or $KUBETFX_KFP_TOKEN as a bearer token (never printed); in a pod,
kfp.Client reads the service-account token itself (KF_PIPELINES_SA_TOKEN_PATH)."""
from __future__ import annotations

import datetime
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

OK = 0
USAGE = 2
RUN_FAILED = 6
UNREACHABLE_OR_REJECTED = 7
POLL_SECONDS = 5.0
FINAL_STATES = {"SUCCEEDED", "FAILED", "ERROR", "CANCELED", "SKIPPED"}


class SubmitError(RuntimeError):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def add_parser(subparsers, handler) -> None:
    parser = subparsers.add_parser("submit", help="upload the compiled spec to Kubeflow Pipelines and start a run")
    parser.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://localhost:8080")
    parser.add_argument("--spec", default="build/kubetfx-penguin.yaml", help="compiled spec (make compile)")
    parser.add_argument("--pipeline-name", help="default: the spec's pipeline name")
    parser.add_argument("--experiment", default="kubetfx")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="run parameter (repeatable)")
    parser.add_argument("--wait", action="store_true", help="wait for the run, printing task states")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait (with --wait)")
    parser.add_argument("--token", help="bearer token (default: $KUBETFX_KFP_TOKEN)")
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


def _check_reachable(host: str, token) -> None:
    request = urllib.request.Request(host.rstrip("/") + "/apis/v2beta1/healthz")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        urllib.request.urlopen(request, timeout=10).read()
    except urllib.error.HTTPError as err:
        if err.code in (401, 403):
            raise SubmitError(f"{host} refused the credentials (HTTP {err.code}); check --token", UNREACHABLE_OR_REJECTED)
    except (urllib.error.URLError, OSError) as err:
        raise SubmitError(f"cannot reach Kubeflow Pipelines at {host}: {getattr(err, 'reason', err)}; "
                          "is the API port-forwarded (make deploy-kfp prints how)?", UNREACHABLE_OR_REJECTED)


def _api_message(err) -> str:
    body = getattr(err, "body", None) or ""
    try:
        return json.loads(body).get("message") or body
    except (ValueError, AttributeError):
        return str(body or err)


def _upload(client, spec: str, name: str) -> tuple:
    """(pipeline id, version id): a new pipeline, or a new version of the existing one."""
    pipeline_id = client.get_pipeline_id(name)
    version_name = f"{name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    if pipeline_id is None:
        pipeline = client.upload_pipeline(spec, pipeline_name=name)
        pipeline_id = pipeline.pipeline_id
        versions = client.list_pipeline_versions(pipeline_id).pipeline_versions or []
        return pipeline_id, versions[0].pipeline_version_id
    version = client.upload_pipeline_version(spec, pipeline_version_name=version_name, pipeline_id=pipeline_id)
    return pipeline_id, version.pipeline_version_id


def _wait(client, run_id: str, timeout: float) -> str:
    deadline, seen = time.monotonic() + timeout, {}
    while True:
        run = client.get_run(run_id)
        for task in (run.run_details.task_details if run.run_details else None) or []:
            if task.display_name and seen.get(task.display_name) != task.state:
                seen[task.display_name] = task.state
                print(f"  {task.display_name}: {task.state}", flush=True)
        if run.state in FINAL_STATES:
            return run.state
        if time.monotonic() > deadline:
            raise SubmitError(f"run {run_id} still {run.state} after {timeout:.0f} s", RUN_FAILED)
        time.sleep(POLL_SECONDS)


def submit(args) -> int:
    try:
        import kfp.client  # not `import kfp`: kfp-pipeline-spec alone makes `kfp` a namespace package
    except ImportError:
        # Python 3.10 lock: TFX 1.16 pins protobuf < 4.21 there, every kfp 2.x needs >= 4.21.1.
        raise SubmitError("`kubetfx submit` needs the kfp 2 SDK, which TFX 1.16 cannot share an environment "
                          "with on Python 3.10; submit from a Python 3.11 install (or upload "
                          f"{args.spec} in the KFP UI)", USAGE) from None
    import yaml

    spec = Path(args.spec)
    if not spec.is_file():
        raise SubmitError(f"no compiled spec at {spec}: run `make compile` (or pass --spec)", USAGE)
    name = args.pipeline_name or yaml.safe_load(spec.read_text())["pipelineInfo"]["name"]
    params = parse_params(args.param)
    token = args.token or os.environ.get("KUBETFX_KFP_TOKEN")
    _check_reachable(args.host, token)
    client = kfp.Client(host=args.host, existing_token=token, namespace=args.namespace or "kubeflow")
    try:
        pipeline_id, version_id = _upload(client, str(spec), name)
        experiment = client.create_experiment(args.experiment, namespace=args.namespace)
        run = client.run_pipeline(experiment_id=experiment.experiment_id, job_name=f"{name}-run",
                                  params=params, pipeline_id=pipeline_id, version_id=version_id)
    except kfp.client.client.kfp_server_api.ApiException as err:
        raise SubmitError(f"Kubeflow Pipelines rejected the request (HTTP {err.status}): {_api_message(err)}",
                          UNREACHABLE_OR_REJECTED) from None
    print(f"kubetfx: submitted run {run.run_id} of {name} (pipeline {pipeline_id}, version {version_id})")
    if not args.wait:
        return OK
    state = _wait(client, run.run_id, args.timeout)
    print(f"kubetfx: run {run.run_id} {state}")
    return OK if state == "SUCCEEDED" else RUN_FAILED


def main(args) -> int:
    try:
        return submit(args)
    except SubmitError as err:
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return err.code
