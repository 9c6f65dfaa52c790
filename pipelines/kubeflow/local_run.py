"""`kubetfx run --engine containers`: the pipeline compiled to its KFP spec and run on the
local KFP backend (flags added to `kubetfx run` by `add_run_flags`)."""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Callable

from kubetfx.pipelines.config import ConfigError, PipelineConfig
from kubetfx.pipelines.kubeflow import image_reference
from kubetfx.pipelines.kubeflow.local_backend import versions
from kubetfx.pipelines.kubeflow.local_backend.options import DEFAULT_TASK_TIMEOUT, Options


class BackendUnavailable(ConfigError):
    """Docker, an image or the object store is missing, or the spec would be refused: a
    one-line message, exit 2, nothing started."""


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("--engine containers (the local KFP backend)")
    g.add_argument("--kfp-version", default=versions.DEFAULT,
                   help=f"KFP backend version to emulate: {', '.join([*versions.ALIASES, *versions.VERSIONS])} "
                        f"(default {versions.DEFAULT}; retries from 2.4.1, executor-logs from 2.5.0)")
    g.add_argument("--task-timeout", type=float, default=DEFAULT_TASK_TIMEOUT, metavar="SECONDS",
                   help="stop a task's container after this long (default %(default)g s)")
    # Not `--parallelism`: argparse would take Beam's own `--parallelism=N`, given after
    # --beam-pipeline-args, for this flag.
    g.add_argument("--max-parallel-tasks", type=int, default=2, help="tasks side by side (default %(default)s)")
    g.add_argument("--retry-backoff-scale", type=float, default=1.0, metavar="FACTOR",
                   help="multiply the spec's retry backoff by this (default 1: as Argo waits)")
    g.add_argument("--image", help="image for every task (default: the spec's kubetfx images)")
    g.add_argument("--image-repo", metavar="REPO",
                   help="take the spec's kubetfx/* images from REPO/* (e.g. images built with "
                        "'make image IMAGE_REPO=REPO'), as if compiled with them")


def options_from_args(args) -> Options:
    try:
        versions.parse(args.kfp_version)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    # NaN passes every `<` (a task would never time out); inf cannot be slept or waited on.
    finite = math.isfinite(args.task_timeout) and math.isfinite(args.retry_backoff_scale)
    if not finite or args.task_timeout <= 0 or args.max_parallel_tasks < 1 or args.retry_backoff_scale < 0:
        raise ConfigError("--task-timeout must be > 0, --max-parallel-tasks >= 1, --retry-backoff-scale >= 0, "
                          "each a finite number")
    if args.image is not None:
        image_reference.check(args.image)
    if args.image_repo is not None:
        image_reference.check_repo(args.image_repo)
    return Options(kfp_version=args.kfp_version, task_timeout=args.task_timeout,
                           parallelism=args.max_parallel_tasks, backoff_scale=args.retry_backoff_scale, image=args.image,
                   image_repo=args.image_repo)


def check_protobuf(message_factory=None) -> None:
    """The local backend computes KFP's cache keys on kfp-pipeline-spec 0.4's protos, which
    need protobuf 4 (`message_factory.GetMessageClass`); the Python 3.10 lock holds protobuf
    3.20 (requirements.in says why). There it refuses in one line instead of a traceback."""
    if message_factory is None:
        from google.protobuf import message_factory
    if not hasattr(message_factory, "GetMessageClass"):
        import google.protobuf

        raise BackendUnavailable(
            f"--engine containers needs protobuf 4 (the Python 3.11 environment: make install); this one has "
            f"protobuf {google.protobuf.__version__} (the Python 3.10 lock): run without --engine containers here")


def run(config: PipelineConfig, options: Options = Options(), *,
        prepare: Callable[[PipelineConfig], PipelineConfig]):
    """Compiles `config` (already prepared) and runs it; raises BackendUnavailable for what a
    user fixes before anything starts, TaskFailedError when a task fails. `prepare`: as
    compiler.compile_spec takes it (run/inputs.prepare, passed in by the command)."""
    check_protobuf()
    from kubetfx.pipelines.record.home_lock import exclusive_run

    # The home is taken first: a second run on it is refused at once (exit 5), before an
    # object store boots or a spec compiles for nothing.
    with exclusive_run(config):
        return _run_locked(config, options, prepare)


def _run_locked(config: PipelineConfig, options: Options, prepare: Callable[[PipelineConfig], PipelineConfig]):
    from kubetfx.pipelines.kubeflow import compiler as kubeflow_compiler
    from kubetfx.pipelines.kubeflow import object_store_server
    from kubetfx.pipelines.kubeflow import backend_rules
    from kubetfx.components.container import images
    from kubetfx.pipelines.kubeflow.local_backend import backend, docker

    # The object store's server boots while the spec compiles (local_backend/store.py Booting).
    early = backend.start_early(Path(config.home_path), config.name)
    try:
        spec, platform = kubeflow_compiler.compile_spec(
            config, kubeflow_compiler.ClusterSettings(image=options.image), prepare=prepare)
        if options.image_repo:
            for executor in spec["deploymentSpec"]["executors"].values():
                if executor.get("container", {}).get("image", "").startswith("kubetfx/"):
                    executor["container"]["image"] = options.image_repo + executor["container"]["image"][len("kubetfx"):]
        from kubetfx.pipelines.kubeflow import staged_files

        files = staged_files.uploads(spec, staged_files.user_files(config.module_file, config.schema_file))
        request = backend.RunRequest(pipeline=config.name, home=Path(config.home_path), data=Path(config.data),
                                     files=files)
        try:
            return backend.run_spec(spec, platform, request, options, early)
        except (docker.DockerUnavailable, images.MissingImageError, backend_rules.Rejected,
                object_store_server.ObjectStoreUnavailable) as err:
            raise BackendUnavailable(str(err)) from None
    finally:
        if early is not None:
            early.close()
