"""`kubetfx run`: prepare, run on the chosen engine, print the summary, map to an exit code."""
from __future__ import annotations

import sys

from kubetfx.pipelines import exit_codes, prepare, summary
from kubetfx.pipelines.config import PipelineConfig


def run(config: PipelineConfig, engine: str = "local", backend_options=None) -> int:
    config = prepare.prepare(config)
    print(f"kubetfx: pipeline {config.name} on {config.data} (label {config.label}, {config.task}), "
          f"home {config.home_path}", flush=True)
    from kubetfx.components.transform import column_roles

    for note in column_roles.notes(config.column_roles or {}):
        print(f"kubetfx: {note}", flush=True)
    from kubetfx.pipelines import local_runner

    result = None
    try:
        if engine == "containers":
            from kubetfx.pipelines.kubeflow.local_backend import command, options
            result = command.run(config, backend_options or options.Options())
        else:
            local_runner.run(config)
        failure = None
    except local_runner.RunLockedError as err:
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return exit_codes.BUSY
    except exit_codes.UserError:
        raise  # one line, exit 2 (cli.main)
    except Exception as err:  # the stage's own log has the trace; the summary says where
        failure = err
    if engine == "local":
        result = summary.summarize(str(config.metadata_path), config.name)
    if result:
        print(result.table())
    return _outcome(config, result, failure)


def _outcome(config, result, failure) -> int:
    from kubetfx.components.example_validator import gate

    log = getattr(failure, "log", None)
    rejected = log and log.exists() and "DataRejectedError" in log.read_text(errors="replace")
    if isinstance(failure, gate.DataRejectedError) or rejected:
        print(f"kubetfx: data rejected: {failure}", file=sys.stderr)
        return exit_codes.DATA_REJECTED
    if type(failure).__name__ == "TaskTimedOutError":
        print(f"kubetfx: run stopped: {failure}", file=sys.stderr)
        return exit_codes.TIMED_OUT
    if failure is not None:
        print(f"kubetfx: run failed: {type(failure).__name__}: {failure}", file=sys.stderr)
        return exit_codes.CRASH
    if result and result.pushed_path:
        print(f"kubetfx: model pushed to {result.pushed_path}")
        return exit_codes.OK
    print("kubetfx: model NOT pushed (not blessed by Evaluator or InfraValidator)", file=sys.stderr)
    return exit_codes.NOT_BLESSED
