"""`kubetfx` command line. Heavy libraries (TensorFlow, TFX) are imported only by the
command that needs them, so `kubetfx --help` and input errors answer at once."""
from __future__ import annotations

import argparse
import functools
import logging
import os
import sys
import warnings

from kubetfx.pipelines import exit_codes
from kubetfx.pipelines.config import ConfigError, PipelineConfig, home_for
from kubetfx.pipelines.report import command as report_command
from kubetfx.pipelines.monitor import command as monitor_command
from kubetfx.pipelines.serving import feedback, proxy_command, rollout_command, serve_command
from kubetfx.pipelines.record import models_command
from kubetfx.pipelines import templates


def _add_pipeline_flags(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("pipeline (override the --config file)")
    g.add_argument("--config", help="YAML file of PipelineConfig fields")
    g.add_argument("--home", help="where runs write (default: $KUBETFX_HOME or ./.kubetfx)")
    g.add_argument("--name", help="pipeline name (default: kubetfx-penguin)")
    g.add_argument("--data", help="CSV, Parquet or tf.Example TFRecord file or folder (default: embedded penguins)")
    g.add_argument("--label", help="label column (required with --data)")
    g.add_argument("--task", choices=["classification", "regression"], help="default: from the label column")
    g.add_argument("--module-file", help="your own TFX module file (preprocessing_fn and run_fn)")
    g.add_argument("--schema-file", help="curated schema.pbtxt to import instead of inferring one")
    g.add_argument("--eval-threshold", type=float,
                   help="accuracy lower bound (classification) or MAE upper bound (regression)")
    g.add_argument("--acceptance-threshold", type=float,
                   help="the same bound on the held-out test split, checked once per blessed model: "
                        "below it the model is not pushed")
    g.add_argument("--train-steps", type=int)
    g.add_argument("--on-anomalies", choices=["fail", "warn"], help="data anomalies stop the run or warn")
    # One quoted string (or repeated flags): argparse takes a bare `--runner=...` for a flag.
    g.add_argument("--beam-pipeline-args", action="append", metavar="'ARGS'",
                   help="Beam options for the Beam stages, e.g. "
                        "--beam-pipeline-args='--runner=FlinkRunner --parallelism=8'")
    g.add_argument("--no-cache", action="store_true", help="re-run every stage")
    g.add_argument("--tune", action="store_true",
                   help="search learning rate, width and depth first (TFX Tuner, KerasTuner; tune_trials "
                        "in --config, default 4)")


def _beam_args(values):
    import shlex

    try:
        return [arg for value in values for arg in shlex.split(value)] if values else None
    except ValueError as err:  # shlex: "No closing quotation", "No escaped character"
        raise ConfigError(f"--beam-pipeline-args {' '.join(values)!r}: {err} (quote it as the shell would)") from None


def config_from_args(args) -> PipelineConfig:
    config = PipelineConfig.from_yaml(args.config) if args.config else PipelineConfig()
    if args.data and not args.label and not (args.config and config.label != PipelineConfig.label):
        raise ConfigError("--data needs --label COLUMN (the column to predict)")
    config = config.replace(
        home=home_for(args.home, args.config, config),
        name=args.name, data=args.data, label=args.label, task=args.task,
        module_file=args.module_file, schema_file=args.schema_file,
        eval_threshold=args.eval_threshold, acceptance_threshold=args.acceptance_threshold,
        train_steps=args.train_steps,
        on_anomalies=args.on_anomalies, beam_pipeline_args=_beam_args(args.beam_pipeline_args),
        enable_cache=False if args.no_cache else None, tune=True if getattr(args, "tune", False) else None,
    )
    data_given = args.data or (args.config and config.data != PipelineConfig.data)
    if data_given and args.name is None and config.name == PipelineConfig.name:
        # Another dataset is another pipeline: its own metadata, baseline and serving dir,
        # whether --data or the config file names it (else its model would replace the
        # penguins' in kubetfx-penguin's serving dir, compared with the penguins' model).
        config = config.replace(name=name_for_data(config.data))
    return config.validate()


def name_for_data(data: str) -> str:
    """kubetfx-<file name>, in the ASCII a pipeline name allows (it names Kubernetes
    objects): 'données.csv' -> kubetfx-donnees; a name with no Latin letter at all
    ('日本語.csv') -> kubetfx-data-<8 hex of its sha256>."""
    import hashlib
    import unicodedata
    from pathlib import Path

    try:
        stem = Path(data).resolve().stem
    except (RuntimeError, OSError):  # a symbolic link loop (Python 3.11): the data check names it
        stem = Path(data).stem
    ascii_stem = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode().lower()
    slug = "".join(c if c.isalnum() else "-" for c in ascii_stem).strip("-")[:40].strip("-")
    return "kubetfx-" + (slug or "data-" + hashlib.sha256(stem.encode()).hexdigest()[:8])


def _cmd_run(args) -> int:
    from kubetfx.pipelines.run import command as run_command

    from kubetfx.pipelines.kubeflow import local_run as backend

    containers = None
    if args.engine == "containers":
        containers = functools.partial(backend.run, options=backend.options_from_args(args))
    return run_command.run(config_from_args(args), engine=args.engine, verbose=args.verbose,
                           as_json=args.json, containers=containers)


def _cmd_compile(args) -> int:
    from pathlib import Path

    from kubetfx.pipelines.run import inputs

    config = config_from_args(args)
    if args.image is not None:
        from kubetfx.pipelines.kubeflow import image_reference

        image_reference.check(args.image)
    output = inputs.writable_file(Path(args.output or f"build/{config.name}.yaml"), "--output file")
    from kubetfx.pipelines.kubeflow import compiler as kubeflow_compiler  # TFX: seconds to import, after the checks

    path = kubeflow_compiler.compile_to_file(config, str(output), image=args.image, prepare=inputs.prepare)
    print(f"wrote {path}")
    return exit_codes.OK


def _cmd_submit(args) -> int:
    from kubetfx.pipelines.kubeflow import submit

    return submit.main(args)


# Shown under each command's --help; a command registered elsewhere may bring its own epilog.
EXAMPLES = {
    "run": """examples:
  kubetfx run                                        # embedded penguins data, home ./.kubetfx
  kubetfx run --data trips.csv --label fare          # your CSV (file or folder), task from the label
  kubetfx run --module-file my_module.py --verbose   # your TFX module file, library output live
  kubetfx run --json > summary.json                  # the summary as JSON for scripts (exit code too)
  kubetfx run --engine containers                    # the compiled KFP spec, each stage in Docker
""",
    "compile": """examples:
  kubetfx compile                                    # build/kubetfx-penguin.yaml
  kubetfx compile --data trips.csv --label fare --output build/trips.yaml
  kubetfx compile --image registry.example.com/kubetfx/pipeline:0.1.0
""",
    "submit": """examples:
  kubetfx submit --host http://localhost:8080 --object-store-endpoint http://localhost:9000 --wait
  kubetfx submit --host https://kfp.example.com --spec build/trips.yaml --data trips.csv --param eval_threshold=0.8
  kubetfx submit --host https://kfp.example.com --token-file ~/.kfp-token --schedule '0 0 3 * * *'
""",
    "models": """examples:
  kubetfx models                                     # pushed versions, * = the one served
  kubetfx models --name kubetfx-trips --json         # the record as JSON for scripts
  kubetfx models --serving-dir serving-copy/kubetfx-penguin   # a serving volume, without its metadata store
""",
    "rollback": """examples:
  kubetfx rollback 1795447156                        # serve that earlier blessed version again
""",
    "monitor": """examples:
  kubetfx monitor --data new_week.csv                # drift of new data vs the served model's training data
  kubetfx monitor --logs                             # skew of what `kubetfx serve` was asked
  kubetfx monitor --data new_week.csv --retrain      # on drift, retrain; the gates decide the push
  kubetfx monitor --data new.csv --threshold island=0.1   # exit 0 no drift, 11 drift, 2 bad input
""",
    "serve": """examples:
  kubetfx serve --port 8501                          # TF Serving's REST API on localhost:8501
  curl -d '{"instances": [{"island": "Biscoe", "bill_length_mm": 45.1}]}' \\
    localhost:8501/v1/models/kubetfx-penguin:predict
""",
}


def _version() -> str:
    from importlib import metadata

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"
    return f"kubetfx {version('kubetfx')} (TFX {version('tfx')}, TensorFlow {version('tensorflow')})"


def _add_examples(sub) -> None:
    for name, parser in sub.choices.items():
        if not parser.epilog and name in EXAMPLES:
            parser.epilog = EXAMPLES[name]
            parser.formatter_class = argparse.RawDescriptionHelpFormatter


def local_backend_flags(parser):
    from kubetfx.pipelines.kubeflow import local_run as command

    command.add_run_flags(parser)


# Written for --help, not taken from the module docstring: its first line is half a sentence.
DESCRIPTION = ("TFX 1.16 pipelines run locally or compiled for Kubeflow Pipelines, and the loop after "
               "the push: serve the model, log its requests, monitor drift and skew, list and roll back versions.")
EPILOG = "`kubetfx COMMAND --help` shows each command's flags and examples."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubetfx", description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("-v", "--verbose", action="store_true", help="show TFX and Beam logs")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline (locally in-process, or in containers)")
    _add_pipeline_flags(run)
    run.add_argument("--engine", choices=["local", "containers"], default="local",
                     help="local: in this process (TFX launcher, independent stages side by side); containers: the compiled KFP spec on the local KFP backend, each task in Docker")
    run.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                     help="show TensorFlow, Beam and TFX output live (it always goes to the run's log file)")
    run.add_argument("--json", action="store_true",
                     help="print the run summary as JSON on stdout (progress and messages go to stderr)")
    local_backend_flags(run)
    run.set_defaults(func=_cmd_run)

    comp = sub.add_parser("compile", help="write the KFP v2 pipeline spec (IR YAML)")
    _add_pipeline_flags(comp)
    comp.add_argument("--output", help="default: build/<pipeline-name>.yaml")
    comp.add_argument("--image", help="image for every task (default: the kubetfx images of this version)")
    comp.set_defaults(func=_cmd_compile)

    report_command.add_parser(sub)
    models_command.add_parser(sub)
    monitor_command.add_parser(sub)
    serve_command.add_parser(sub)
    proxy_command.add_parser(sub)
    templates.add_parser(sub)
    feedback.add_parser(sub)
    rollout_command.add_parser(sub)
    try:
        from kubetfx.pipelines.kubeflow import submit
        submit.add_parser(sub, _cmd_submit)
    except ImportError:
        pass
    _add_examples(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    from absl import logging as absl_logging  # TFX and Beam log through absl
    absl_logging.set_verbosity(absl_logging.INFO if args.verbose else absl_logging.WARNING)
    # `run` keeps the libraries' output, its errors included, in its log (run_log.py). The
    # other commands keep no log: TensorFlow's import-time C++ errors (cuFFT, cuDNN "factory
    # already registered") and the libraries' Future- and DeprecationWarnings would stand
    # before the one line a user needs. --verbose shows them.
    quiet = not args.verbose and args.command != "run"
    tf_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3" if quiet else "2")
    with warnings.catch_warnings():  # the filters end with the command (main() runs in tests too)
        if quiet:
            for category in (FutureWarning, DeprecationWarning):
                warnings.filterwarnings("ignore", category=category)
        try:
            return args.func(args)
        except exit_codes.UserError as err:
            print(f"kubetfx: error: {err}", file=sys.stderr)
            return exit_codes.USAGE
        except KeyboardInterrupt:
            print("kubetfx: interrupted", file=sys.stderr)
            return exit_codes.INTERRUPTED
        except BrokenPipeError:
            return _reader_gone()
        except OSError as err:  # a full disk or a read-only home, met by any command's writes
            from kubetfx.pipelines.record import home_errors

            line = home_errors.describe(err)
            if line is None:
                raise
            print(f"kubetfx: error: {line}", file=sys.stderr)
            return exit_codes.USAGE
        finally:
            if tf_level is None:
                os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)


def _reader_gone() -> int:
    """stdout's reader has gone (`kubetfx models | head -1`): nothing more can be shown, so
    the command ends as a shell reports SIGPIPE, without a traceback. stdout is pointed at
    /dev/null so that flushing what is still buffered, at exit, cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):  # in-process (tests): no descriptor to point
        pass
    return exit_codes.PIPE_CLOSED


def entry() -> None:
    """The `kubetfx` console command: main(), then exit without the interpreter's teardown."""
    try:
        code = main()
    except BrokenPipeError:  # while parsing: argparse's --help or usage on a closed pipe
        code = _reader_gone()
    from kubetfx.pipelines.run import exit_without_teardown

    exit_without_teardown.exit_now(0 if code is None else code if isinstance(code, int) else 1)  # as sys.exit


if __name__ == "__main__":
    entry()
