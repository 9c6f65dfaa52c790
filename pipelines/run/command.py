"""`kubetfx run`: prepare, run on the chosen engine, print the summary, map to an exit code.

Locally, the libraries' output goes to `<home>/logs/<name>/<run id>.log` (run_log) and the
terminal shows one line per stage start and end (progress), the summary, and for a failed
stage its error and the failing lines of user code (failure)."""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import sys
from typing import Callable, Optional

from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.record import failure, home_lock, served_build, summary
from kubetfx.pipelines.run import inputs
from kubetfx.pipelines.config import PipelineConfig


def run(config: PipelineConfig, engine: str = "local", *, verbose: bool = False, as_json: bool = False,
        containers: Optional[Callable] = None) -> int:
    """`containers(config, prepare=...)` runs a prepared config on the local KFP backend
    (kubeflow/local_run.run with its options, bound by the cli: run/ never imports kubeflow/)."""
    given = config
    config = inputs.prepare(config)
    # With --json, stdout carries the JSON document only; everything for people goes to stderr.
    out = sys.stderr if as_json else sys.stdout
    print(f"kubetfx: pipeline {config.name} on {config.data} (label {config.label}, {config.task}), "
          f"home {config.home_path}", file=out, flush=True)
    from kubetfx.components.transform import column_roles

    for note in column_roles.notes(config.column_roles or {}):
        print(f"kubetfx: {note}", file=out, flush=True)

    if engine == "containers":
        return _run_containers(config, out, containers)
    run_id = datetime.datetime.now().isoformat()
    log_path = config.logs_dir / f"{run_id}.log"
    served_before = served_build.served_version(config.serving_dir)
    from kubetfx.pipelines.serving import rollout_command  # rollout: {mode: staged}

    pin = rollout_command.pin_for_push(config)  # None in replace mode
    try:
        crash, failed_stage = _run_local(config, run_id, log_path, verbose=verbose, terminal_fd=_fd(out))
    except home_lock.RunLockedError as err:
        rollout_command.after_run(config, pin, None)
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return exit_codes.BUSY
    served_build.record_build(str(config.metadata_path), run_id, served_build.build_key(given.validate()))
    with _quiet_libraries(verbose):
        # The run has let go of the home: a stage it left RUNNING (a killed stage process)
        # shows as interrupted, as `kubetfx report` shows it.
        result = summary.summarize(str(config.metadata_path), config.name, run_id, live=home_lock.held(config))
    if result:
        result.compare_with_served(served_before)
    if result:
        print(result.table(), file=out)
    code = _outcome(result, crash, failed_stage, config, log_path, verbose, out)
    # staged: a new blessed push becomes the candidate beside what was served; else the pin goes
    rollout_command.after_run(config, pin, result.pushed_path if result and code == exit_codes.OK else None, out)
    if as_json:
        print(json.dumps(_document(result, code, crash, failed_stage, config, log_path), indent=2))
    return code


@contextlib.contextmanager
def _quiet_libraries(verbose: bool):
    """Reading the results after the run's log has closed: a fully cached run has not run
    the Evaluator, so TFMA's deprecation warning would come first here, on the terminal."""
    tf_logger = logging.getLogger("tensorflow")
    level = tf_logger.level
    if not verbose:
        tf_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        tf_logger.setLevel(level)


def _fd(stream) -> int:
    """The stream's descriptor (1 or 2 when it is a Python-level stand-in, as under pytest)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return 2 if stream is sys.stderr else 1


def _run_local(config, run_id, log_path, *, verbose: bool, terminal_fd: int):
    from kubetfx.pipelines.run import local_runner, progress, run_log

    with home_lock.exclusive_run(config):  # a refused run leaves no log behind
        with run_log.capture(log_path, verbose=verbose, terminal_fd=terminal_fd) as log:
            log.terminal.write(f"kubetfx: run {run_id}, log {log_path}\n")
            lines = progress.ProgressLines(log.terminal)
            try:
                local_runner.run_locked(config, listener=lines, run_id=run_id)
            except Exception as err:  # explained below the summary; the whole trace goes to the log
                try:
                    log.write("\n" + failure.format_error(err))
                except OSError:
                    pass  # the full disk that stopped the stage refuses its trace too; the cause is shown
                full = _storage_error(err, config.metadata_path)
                if full is not None:
                    raise full from None  # one line naming the file, exit 2 (cli.main)
                return err, lines.failed_stage
    return None, None


def _storage_error(err: BaseException, metadata_path):
    """A full disk or a read-only home behind a stage's failure, if that was its cause (an
    OSError, or ML Metadata's error about its SQLite file; the libraries wrap them: the
    chain is followed a few links), as the error to show; None for any other failure."""
    from kubetfx.pipelines.record import home_errors, mlmd

    for _ in range(8):
        if err is None:
            return None
        if isinstance(err, OSError) and home_errors.describe(err) is not None:
            return err
        if mlmd.unusable_store(err):
            return mlmd.explain(metadata_path, err)
        err = err.__cause__ or err.__context__
    return None


def _run_containers(config, out, containers: Optional[Callable]) -> int:
    """The compiled spec on the local KFP backend (pipelines/kubeflow/local_backend)."""
    if containers is None:
        raise ValueError("engine 'containers' needs the local backend's run (kubeflow/local_run.run)")
    try:
        result = containers(config, prepare=inputs.prepare)
        crash = None
    except exit_codes.UserError:
        raise  # one line, exit 2 (cli.main)
    except home_lock.RunLockedError as err:  # as a local run on a held home: exit 5, not a crash
        print(f"kubetfx: error: {err}", file=sys.stderr)
        return exit_codes.BUSY
    except Exception as err:  # the task's own log has the trace; the summary says where
        result, crash = None, err
    if result:
        print(result.table(), file=out)
    log = getattr(crash, "log", None)
    return _outcome(result, crash, None, config, log, False, out)


def _is_rejection(crash) -> bool:
    from kubetfx.components.example_validator import executor

    container_log = getattr(crash, "log", None)
    return isinstance(crash, executor.DataRejectedError) or bool(
        container_log and container_log.exists()
        and "DataRejectedError" in container_log.read_text(errors="replace"))


def _outcome(result, crash, failed_stage, config, log_path, verbose, out) -> int:
    if type(crash).__name__ == "TaskTimedOutError":  # the local KFP backend's --task-timeout
        print(f"kubetfx: run stopped: {crash}", file=sys.stderr)
        return exit_codes.TIMED_OUT
    if crash is not None and _is_rejection(crash):
        print(f"kubetfx: data rejected: {crash}", file=sys.stderr)
        return exit_codes.DATA_REJECTED
    if crash is not None:
        explanation = failure.explain(crash, failure.module_files_of(config))
        where = f"{failed_stage} failed" if failed_stage else "run failed"
        print(f"kubetfx: {where}: " + "\n".join(explanation.lines()), file=sys.stderr)
        if verbose:
            print(failure.format_error(crash), file=sys.stderr, end="")
        if log_path:
            print(f"kubetfx: full log: {log_path}" + ("" if verbose else " (--verbose shows it live)"),
                  file=sys.stderr)
        return exit_codes.CRASH
    if result and result.pushed_path:
        print(f"kubetfx: {result.outcome_line()}", file=out)
        return exit_codes.OK
    if result and result.acceptance_refusal:
        print(f"kubetfx: {result.acceptance_refusal}", file=sys.stderr)
        return exit_codes.NOT_BLESSED
    print("kubetfx: model NOT pushed (not blessed by Evaluator or InfraValidator)", file=sys.stderr)
    return exit_codes.NOT_BLESSED


def _document(result, code, crash, failed_stage, config, log_path) -> dict:
    doc = {"pipeline": config.name, "exit_code": code, "log": str(log_path),
           **(result.to_dict() if result else {"run_id": None, "stages": []})}
    if crash is not None:
        explanation = failure.explain(crash, failure.module_files_of(config))
        doc["failure"] = {"stage": failed_stage, "error": explanation.error,
                          "frames": [{"file": f.file, "line": f.line, "function": f.function, "code": f.code}
                                     for f in explanation.frames]}
    return doc
