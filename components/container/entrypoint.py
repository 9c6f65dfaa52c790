"""Runs one pipeline stage inside its container from the executor input a KFP v2 launcher
hands it (`{{$}}`), on open-source KFP as on Vertex AI.

    python -m kubetfx.components.container.entrypoint \
        --executor_class_path <executor> --artifact_types '<{key: tfx type}>' \
        --json_serialized_invocation_args '{{$}}' [beam args...]

It repairs the executor input (see kfp_compat), works on the local paths where KFP's
launcher staged the artifacts, applies what the compiler wired in (`kubetfx_*`: the data as
an input artifact, its fingerprint, the gate threshold), runs ExampleGen's driver when KFP
did not (OSS KFP ignores `lifecycle.preCacheCheck`), then hands over to TFX's own Kubeflow
V2 executor runner, and writes the executor output with the URIs KFP handed out.

Before any of it, every input artifact must have arrived: KFP takes a cache hit from ML
Metadata without looking at the object store (KFP 2.5.0 backend/src/v2/driver/driver.go
reuseCachedOutputs), so when a cached task's outputs were deleted from the store (a bucket
lifecycle rule, a clean-up) the consumer's launcher downloads an empty prefix without error
(v2/objectstore/object_store.go DownloadBlob) and a TFX executor would fail far from the
cause, or read nothing. Every artifact a kubetfx stage writes holds at least one file, so an
input with none is that case: one line, exit INPUT_GONE (12). Argo retries it like any
failure (the spec's retryPolicy); the fix is a run with caching off for the producer."""
from __future__ import annotations

import argparse
import json
import os
import sys

from kubetfx.components.container import kfp_compat

DATA = "kubetfx_data"                           # input artifact: the data (system.Dataset)
DATA_FINGERPRINT = "kubetfx_data_fingerprint"   # parameter: only feeds KFP's cache key
EVAL_THRESHOLD = "kubetfx_eval_threshold"
STAGED_FILE = "kubetfx_file_"                  # input artifacts kubetfx_file_<parameter>: a user's file
VIEW = "kubetfx_view"                           # output artifact: the stage's Markdown view (system.Markdown)
INPUT_GONE = 12                                 # exit code: an input artifact's prefix is empty


class InputGone(RuntimeError):
    """An input artifact holds no file where the launcher staged it; the message says why."""


def _holds_a_file(path: str) -> bool:
    if os.path.isfile(path):
        return True
    for _, _, files in os.walk(path):
        if any(not name.endswith(kfp_compat.MARKER_SUFFIXES) for name in files):
            return True
    return False


def _producer_of(uri: str) -> str | None:
    """The task in an output URI KFP generated: <root>/<pipeline>/<run id>/<task>/<salt>/<key>
    (v2/metadata/client.go GenerateOutputURI)."""
    parts = uri.split("?")[0].rstrip("/").split("/")
    return parts[-3] if len(parts) >= 6 else None


def check_inputs_arrived(executor_input: dict, root: str = "/") -> None:
    """Raises InputGone for the first input artifact the launcher staged nothing for."""
    for key, artifact_list in sorted(executor_input.get("inputs", {}).get("artifacts", {}).items()):
        for artifact in artifact_list.get("artifacts", [])[:1]:  # the launcher stages the first
            uri = artifact.get("uri", "")
            try:
                local = kfp_compat.local_path_for_uri(uri, root)
            except ValueError:
                continue  # not staged by the launcher (no object-store scheme)
            if _holds_a_file(local):
                continue
            if key == DATA:
                raise InputGone(f"data_root {uri} holds no files: upload the data there (kubetfx submit --data) "
                                "or start the run with another data_root")
            raise InputGone(f"cached output of {_producer_of(uri) or 'an upstream task'} is gone from the object "
                            f"store (input {key}: nothing under {uri}): re-run with caching off")


def _pop_parameter(executor_input: dict, name: str):
    value = executor_input.get("inputs", {}).get("parameterValues", {}).pop(name, None)
    return None if value in (None, "", "null") else value


def apply_data(executor_input: dict, root: str = "/") -> None:
    """ExampleGen reads the data where the launcher staged the `kubetfx_data` artifact."""
    inputs = executor_input.setdefault("inputs", {})
    data = inputs.get("artifacts", {}).pop(DATA, None)
    _pop_parameter(executor_input, DATA_FINGERPRINT)
    if data and data.get("artifacts"):
        uri = data["artifacts"][0]["uri"]
        local = kfp_compat.local_path_for_uri(uri, root) if "://" in uri else uri
        inputs.setdefault("parameterValues", {})["input_base"] = local


def apply_staged_files(executor_input: dict, root: str = "/") -> None:
    """A user's module or schema file, staged by `kubetfx submit` (pipelines/kubeflow/
    staged_files.py): the input artifact `kubetfx_file_<parameter>` leaves what TFX's
    executor sees, and <parameter> (module_file, schema_file) names its local copy."""
    inputs = executor_input.setdefault("inputs", {})
    artifacts = inputs.get("artifacts", {})
    for key in [k for k in artifacts if k.startswith(STAGED_FILE)]:
        staged = artifacts.pop(key)
        if staged.get("artifacts"):
            uri = staged["artifacts"][0]["uri"]
            local = kfp_compat.local_path_for_uri(uri, root) if "://" in uri else uri
            inputs.setdefault("parameterValues", {})[key[len(STAGED_FILE):]] = local


def apply_eval_threshold(executor_input: dict) -> None:
    """Sets the gate metric's bound in eval_config (lower for accuracy, upper for error)."""
    from kubetfx.components.evaluator.component import GATE_METRICS

    threshold = _pop_parameter(executor_input, EVAL_THRESHOLD)
    if threshold is None or float(threshold) < 0:  # < 0: keep the compiled default
        return
    params = executor_input["inputs"]["parameterValues"]
    eval_config = json.loads(params["eval_config"])
    higher_is_better = {name: higher for name, higher in GATE_METRICS.values()}
    for spec in eval_config.get("metrics_specs", []):
        for metric in spec.get("metrics", []):
            if metric["class_name"] in higher_is_better:
                bound = "lower_bound" if higher_is_better[metric["class_name"]] else "upper_bound"
                metric.setdefault("threshold", {})["value_threshold"] = {bound: float(threshold)}
    params["eval_config"] = json.dumps(eval_config)


def take_view_output(executor_input: dict, env: dict) -> str | None:
    """Takes the view output out of what TFX's executor sees; returns the local path where
    the launcher uploads it from (KFP 2.5.0 launcher_v2.go uploadOutputArtifacts uploads
    every declared output's local path, whatever the executor output lists)."""
    view = executor_input.get("outputs", {}).get("artifacts", {}).pop(VIEW, None)
    if not view or not view.get("artifacts"):
        return None
    uri = view["artifacts"][0]["uri"]
    return kfp_compat.local_path_for_uri(uri, env.get(kfp_compat.LOCAL_ROOT_ENV) or "/") if "://" in uri else uri


def write_view(path: str, stage: str, executor_input: dict, declared_types: dict) -> None:
    """The stage's outputs as Markdown for the KFP UI. A view that cannot be drawn says why
    in the view: it never fails a stage whose work is done."""
    from kubetfx.components.container import views

    outputs = {declared_types[key].split(".")[-1]: artifacts["artifacts"][0]["uri"]
               for key, artifacts in executor_input.get("outputs", {}).get("artifacts", {}).items()
               if key in declared_types and artifacts.get("artifacts")}
    try:
        text = views.markdown_for(stage, outputs) or f"# {stage}\n\nNothing to show.\n"
    except Exception as err:  # noqa: BLE001 — the view is a courtesy, the stage succeeded
        text = f"# {stage}\n\nThe view could not be drawn: {type(err).__name__}: {err}\n"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def repair(executor_input: dict, declared_types: dict, env: dict) -> str:
    """All fixes, in order; returns the root of the launcher's local paths."""
    root = env.get(kfp_compat.LOCAL_ROOT_ENV) or "/"
    apply_data(executor_input, root)
    apply_staged_files(executor_input, root)
    kfp_compat.drop_undeclared_outputs(executor_input, declared_types)
    kfp_compat.fix_artifact_types(executor_input, declared_types)
    kfp_compat.map_uris(executor_input, root)
    kfp_compat.fix_model_layouts(executor_input, declared_types)
    for artifact_list in executor_input.get("inputs", {}).get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            if os.path.isdir(artifact["uri"]):
                kfp_compat.remove_directory_markers(artifact["uri"])
    if "eval_config" in executor_input.get("inputs", {}).get("parameterValues", {}):
        apply_eval_threshold(executor_input)
    kfp_compat.export_namespace(env)
    return root


def _run_example_gen_driver(invocation: str, inputs_spec) -> None:
    from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver

    driver.main(argparse.Namespace(json_serialized_invocation_args=invocation,
                                   json_serialized_inputs_spec_args=inputs_spec))


MODULE = "kubetfx.components.container.entrypoint"


def own_args(argv: list) -> list:
    """argv without a repeat of the image's own command in front: a runner that passes the
    spec's command and args as Docker CMD (the KFP SDK's kfp.local DockerRunner) puts
    `python -m <this module>` after the image's ENTRYPOINT, the same command, and Beam then
    fails on the extra words it is handed as its args."""
    if len(argv) >= 3 and os.path.basename(argv[0]).startswith("python") and argv[1:3] == ["-m", MODULE]:
        return argv[3:]
    return argv


def handed_command(argv: list) -> list | None:
    """Another task's whole command handed over the same way (`python -m <module> ...`:
    the spec's data-fingerprint task, components/container/data_fingerprint.py), run as the
    spec says; None for our own arguments."""
    if len(argv) >= 3 and os.path.basename(argv[0]).startswith("python") and argv[1] == "-m" and argv[2] != MODULE:
        return argv
    return None


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = handed_command(argv)
    if command:
        os.execvp(command[0], command)
    argv = own_args(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--executor_class_path", required=True)
    parser.add_argument("--json_serialized_invocation_args", required=True)
    parser.add_argument("--artifact_types", default="{}", help="JSON {artifact key: TFX type title}")
    parser.add_argument("--json_serialized_inputs_spec_args", default=None)
    parser.add_argument("--view_stage", default=None, help="write the stage's Markdown view to its kubetfx_view output")
    args, beam_args = parser.parse_known_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

    executor_input = json.loads(args.json_serialized_invocation_args)
    declared_types = json.loads(args.artifact_types)
    try:
        check_inputs_arrived(executor_input, os.environ.get(kfp_compat.LOCAL_ROOT_ENV) or "/")
    except InputGone as err:
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return INPUT_GONE
    view_artifact = (executor_input.get("outputs", {}).get("artifacts", {}).get(VIEW, {}).get("artifacts") or [None])[0]
    view_path = take_view_output(executor_input, os.environ)
    root = repair(executor_input, declared_types, os.environ)
    invocation = json.dumps(executor_input)
    output_file = executor_input["outputs"]["outputFile"]
    os.makedirs(os.path.dirname(output_file), exist_ok=True)

    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as tfx_runner
    from tfx.utils import import_utils
    from tfx.components.example_gen import base_example_gen_executor

    from kubetfx.components import autograph, upstream_seams

    autograph.skip_libraries()  # a user's module file trains in this container too
    executor_class = import_utils.import_class_by_path(args.executor_class_path)
    if issubclass(executor_class, base_example_gen_executor.BaseExampleGenExecutor):
        _run_example_gen_driver(invocation, args.json_serialized_inputs_spec_args)
    run_args = argparse.Namespace(executor_class_path=args.executor_class_path,
                                  json_serialized_invocation_args=invocation,
                                  json_serialized_inputs_spec_args=args.json_serialized_inputs_spec_args)
    tfx = upstream_seams.tfx()  # TFX's runner reused as is; its public main() if the private one moved
    if tfx is not None:
        tfx.run_executor(run_args, beam_args)
    else:
        tfx_runner.main((run_args, beam_args))
    if view_path and args.view_stage:
        write_view(view_path, args.view_stage, executor_input, declared_types)
        kfp_compat.list_output_artifact(output_file, VIEW, view_artifact)
    kfp_compat.unmap_output_file(output_file, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
