"""`kubetfx monitor --data PATH | --logs [DIR]`: new data, or the requests the served model
answered, against the statistics and schema of the data that model was trained on.

Which model: the highest version of the serving directory (the home's, or --serving-dir, a
mounted volume in the cluster). What it was trained on: the home's ML Metadata when it has
that version's record, else the schema and statistics the Pusher keeps beside the version
(components/pusher/training_summary.py). PATH is in any format `run --data` takes (CSV,
Parquet, TFRecords of tf.Examples; new_statistics.py); PATH and DIR may be object-store
URIs (minio://, s3://; remote_source.py).

One verdict word per feature (drift.py): DRIFT (SKEW for --logs), MISSING (its missing rate
moved), ANOMALY (another schema anomaly) or ok; the header and the last line name the
features of each word, --json has the same words. A label column without values in the
new data (production data, requests) is not judged.

Exit codes (pipelines/exit_codes.py): 0 every feature ok; DRIFT (11) any DRIFT, SKEW,
MISSING or ANOMALY; 2 bad input (no served model, unreadable data or training statistics,
--retrain on data without labels: refused on every run, after the verdict is written). With --retrain, when drift is
found the pipeline runs on the new data and its gates decide the push: the exit code is
then the run's when it did not push (3 data rejected, 4 not blessed, 5 busy, 1 crash),
else DRIFT (the new version pushed)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from kubetfx.pipelines import exit_codes
from kubetfx.components.example_gen.csv_input import InputError
from kubetfx.pipelines.config import ConfigError, PipelineConfig, home_for


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "monitor", help="new data or inference logs vs the served model's training data: drift, skew, anomalies")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="new data to compare, in any format `run --data` takes: a CSV or Parquet "
                                       "file or folder, or TFRecords of tf.Examples (or minio://, s3:// URI)")
    source.add_argument("--logs", nargs="?", const="", metavar="DIR",
                        help="the inference log of `kubetfx serve` (default <home>/inference-logs/<name>/; "
                             "or the minio://, s3:// URI the logging proxy ships to)")
    parser.add_argument("--serving-dir", metavar="DIR",
                        help="the served model's base directory of versions (default <home>/serving/<name>/)")
    parser.add_argument("--name", help="pipeline name (default: the pipeline of the latest run in the home)")
    parser.add_argument("--home", help="where runs write (default: the --config file's home:, "
                                       "else $KUBETFX_HOME or ./.kubetfx)")
    parser.add_argument("--config", help="YAML file of PipelineConfig fields (drift_* thresholds)")
    parser.add_argument("--threshold", action="append", default=[], metavar="FEATURE=VALUE",
                        help="drift/skew threshold of one feature (repeatable); overrides the config")
    parser.add_argument("--retrain", action="store_true",
                        help="on drift, run the pipeline on --data; its gates decide whether it is pushed")
    parser.add_argument("--label", help="label column for --retrain (default: the served model's)")
    parser.add_argument("--json", action="store_true",
                        help="print the verdict (per feature, the report path, the exit code) as one JSON "
                             "document on stdout; the lines for people go to stderr")
    parser.set_defaults(func=main)


def _config(args) -> PipelineConfig:
    config = PipelineConfig.from_yaml(args.config) if args.config else PipelineConfig()
    per_feature = dict(config.drift_feature_thresholds or {})
    for item in args.threshold:
        name, sep, value = item.partition("=")
        try:
            per_feature[name] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name:
            raise ConfigError(f"--threshold {item!r} must be FEATURE=NUMBER, e.g. bill_length_mm=0.3")
    from kubetfx.pipelines.record import home_pipelines

    config = config.replace(home=home_for(args.home, args.config, config),
                            name=args.name, drift_feature_thresholds=per_feature)
    if args.name is None and config.name == PipelineConfig.name:  # neither the flag nor the config names one
        config = config.replace(name=home_pipelines.latest(config.home_path))
    if args.retrain and args.data is None:
        raise ConfigError("--retrain needs --data: inference logs carry no labels to train on")
    return config.validate()


def _served(config, serving_dir=None):
    from kubetfx.pipelines.record import pushed_models

    serving_dir = Path(serving_dir) if serving_dir else config.serving_dir
    records = pushed_models.pushed_versions(config.metadata_path, config.name, serving_dir, with_metrics=False)
    served = next((r for r in records if r.serving), None)
    if served is None:
        from kubetfx.pipelines.record import home_pipelines

        raise ConfigError(f"pipeline {config.name} serves no model in {serving_dir}: "
                          f"{home_pipelines.listing(config.home_path)} (or pass --home/--serving-dir)")
    data = served.data
    if not (data.statistics_uri and data.schema_uri) and not pushed_models.fill_from_summary(served):
        raise ConfigError(f"version {served.version} of {config.name} has no training statistics and schema, "
                          f"neither in {config.metadata_path} nor beside it in {served.path} (pushed by an older "
                          "kubetfx: re-run the pipeline, the Pusher adds them): nothing to compare with")
    return served


def _training(served):
    import tensorflow_data_validation as tfdv
    from kubetfx.pipelines.record import pushed_models

    def paths():
        return (Path(served.data.statistics_uri) / "Split-train" / "FeatureStats.pb",
                Path(served.data.schema_uri) / "schema.pbtxt")

    statistics, schema = paths()
    if not (statistics.exists() and schema.exists()) and pushed_models.fill_from_summary(served):
        statistics, schema = paths()  # the pipeline's files are gone; the version's copy is not
    for path in (statistics, schema):
        if not path.exists():
            raise ConfigError(f"{path} (training data of version {served.version}) is gone; cannot compare")
    return _load(tfdv.load_stats_binary, statistics, served), _load(tfdv.load_schema_text, schema, served)


def _load(reader, path: Path, served):
    """A file cut short (a copy killed midway, a full disk) or overwritten is one line, not
    protobuf's DecodeError or ParseError traceback."""
    from google.protobuf import message, text_format

    try:
        loaded = reader(str(path))
    except (message.DecodeError, text_format.ParseError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path} (training data of version {served.version}) is damaged "
                          f"({' '.join(str(err).split())[:120] or type(err).__name__}): restore it from the "
                          "pipeline's output or re-run the pipeline; cannot compare") from None
    if not loaded.ByteSize():
        raise ConfigError(f"{path} (training data of version {served.version}) is empty: restore it from the "
                          "pipeline's output or re-run the pipeline; cannot compare")
    return loaded


def _source(args, config, data=None, schema=None):
    from kubetfx.pipelines.monitor import new_statistics
    from kubetfx.pipelines.serving import inference_log

    if args.data is not None:
        return "data", getattr(args, "source_uri", None) or args.data, new_statistics.data_examples(*data, schema)
    directory = Path(args.logs) if args.logs else inference_log.log_dir(config)
    if not inference_log.shards(directory):
        raise ConfigError(f"no inference log in {directory}: serve with `kubetfx serve` and send requests first")
    return "serving", getattr(args, "source_uri", None) or str(directory), inference_log.read_examples(directory)


NOTES_WIDTH = 90  # a row's notes (what changed, anomaly texts) stay readable on a terminal
NAME_WIDTH = 20


def _cut(text: str, width: int) -> str:
    text = " ".join(str(text).split())  # a value's newlines and runs of blanks would break the row
    return text if len(text) <= width else text[:width - 3] + "..."


def _rate(value) -> str:
    return "-" if value is None else f"{value:.0%}" if value >= 0.01 or value == 0 else "<1%"


def _table(verdicts: list) -> str:
    lines = [f"  {'feature':<{NAME_WIDTH}} {'kind':<11} {'measure':<14} {'value':>6} {'limit':>6}  "
             f"{'missing':<11} {'verdict':<7}  notes"]
    for v in verdicts:
        value = f"{v.value:6.3f}" if v.value is not None else f"{'-':>6}"
        limit = f"{v.threshold:6.3f}" if v.threshold is not None else f"{'-':>6}"
        missing = f"{_rate(v.missing_training)}->{_rate(v.missing)}"
        notes = list(dict.fromkeys(n for n in [v.detail, *v.anomalies] if n))
        lines.append(f"  {_cut(v.feature, NAME_WIDTH):<{NAME_WIDTH}} {v.kind:<11} {v.measure or '-':<14} {value} "
                     f"{limit}  {missing:<11} {v.verdict:<7}  {_cut('; '.join(notes), NOTES_WIDTH)}".rstrip())
    return "\n".join(lines)


def _names(names: list, shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (f", ... ({len(names) - shown} more)" if len(names) > shown else "")


def _name_renamed(verdicts: list, unknown: list) -> None:
    """A feature absent from the new data beside a column the model does not know by a
    close name ('bill_length' for 'bill_length_mm', 'Island ' for 'island'): the note says so."""
    import difflib

    folded = {name.strip().casefold(): name for name in unknown}
    for verdict in verdicts:
        if verdict.missing != 1.0 or not unknown:
            continue
        close = difflib.get_close_matches(verdict.feature.casefold(), list(folded), n=1, cutoff=0.6)
        if close:
            verdict.detail = f"absent from the new data; renamed {folded[close[0]]!r}?"


def _trained_on(input_base) -> str:
    """The training files by name: the folder's data files (any format) when it is
    readable here."""
    from kubetfx.components.example_gen import csv_input, data_format

    if not input_base:
        return "unrecorded data"
    try:
        _, files = data_format.data_files(input_base)
    except (csv_input.InputError, OSError):
        return f"the data files of {input_base} (not readable here)"
    if len(files) == 1:
        return str(files[0])
    # Relative to the folder, not bare names: a partitioned folder's dt=.../ says which days.
    shown = ", ".join(os.path.relpath(f, input_base) for f in files[:3]) + (
        f", +{len(files) - 3} more" if len(files) > 3 else "")
    return f"{input_base}/{{{shown}}}"


def _quiet_libraries(args):
    """TFDV's absl warnings and numpy's RuntimeWarnings (a mean of no values) say nothing a
    reader of the verdict needs; --verbose keeps them."""
    import contextlib
    import warnings

    stack = contextlib.ExitStack()
    if getattr(args, "verbose", False):
        return stack
    import numpy as np
    from absl import logging as absl_logging

    level = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR)
    stack.callback(absl_logging.set_verbosity, level)
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore", RuntimeWarning)
    stack.enter_context(np.errstate(all="ignore"))
    return stack


def monitor(args, config, result: dict | None = None) -> int:
    """Compares, reports, records; fills `result` (for --json) with the verdict document."""
    with _quiet_libraries(args):
        return _monitor(args, config, result)


def _monitor(args, config, result: dict | None = None) -> int:
    from kubetfx.components.example_gen import data_format

    served = _served(config, args.serving_dir)
    # The data's checks before TFDV's import: bad input is one line, in a second.
    data = data_format.check_unlabelled(args.data) if args.data is not None else None
    from kubetfx.pipelines.monitor import drift, findings, new_statistics

    thresholds = drift.Thresholds.from_config(config)
    training, schema = _training(served)
    split, source, examples = _source(args, config, data, schema)
    mode = drift.DRIFT if split == "data" else drift.SKEW
    seen = set()
    new = new_statistics.statistics(examples, schema, new_statistics.standard_boundaries(training), seen)
    # The log's own columns (prediction, version, time) are not the requests' features.
    unknown = sorted(seen - {f.name for f in schema.feature}) if split == "data" else []
    try:
        judged = drift.judge(new, training, schema, mode, served.data.label, thresholds, served.data.column_roles)
    except InputError as err:
        raise InputError(f"{err} (its columns: {_names(unknown)})" if unknown else str(err)) from None
    _name_renamed(judged.verdicts, unknown)
    verdicts, word, moved = judged.verdicts, judged.word, [v.feature for v in judged.verdicts if not v.ok]
    rows = new.datasets[0].num_examples
    print(f"kubetfx monitor: {source} ({rows} rows) against version {served.version} of {config.name} "
          f"(trained on {_trained_on(served.data.input_base)}, span {served.data.span}): "
          f"{drift.by_word(verdicts, mode)}")
    print(_table(verdicts))
    if judged.unjudged_label:
        print(f"  the label {judged.unjudged_label} has no values in the new data: not judged")
    if judged.not_judged:
        print("  not model inputs, not judged: " + ", ".join(f"{k} ({v})" for k, v in judged.not_judged.items()))
    if unknown:
        print(f"  not in the model's schema, not judged: {_names(unknown)}")
    directory = findings.report_dir(config)
    summary = findings.summary_dict(verdicts, verdict=word, mode=mode, source=source, rows=rows,
                                    served_version=served.version, pipeline=config.name,
                                    unjudged_label=judged.unjudged_label, not_judged=judged.not_judged,
                                    unknown_columns=unknown,
                                    missing_rate_threshold=thresholds.missing)
    paths = findings.write(directory, split, new, judged.anomalies, summary)
    if result is not None:
        result.update(summary, report=str(paths["verdict"]))
    if served.recorded:  # against the served model's record; a pod has none (files only)
        from kubetfx.pipelines.record import mlmd

        try:
            findings.record(config, served, split, paths, {
                "verdict": word, "mode": mode, "source": source, "rows": rows,
                "served_version": served.version, "moved_features": ",".join(moved)})
        except Exception as err:  # a full disk or a read-only store met by the write: one line
            if not mlmd.unusable_store(err):
                raise
            raise mlmd.explain(config.metadata_path, err) from None
    if args.retrain and judged.unjudged_label and judged.unjudged_label == (args.label or served.data.label):
        # Refused on every run, not only on the day drift comes: else a feed without labels
        # passes each quiet day and fails the day a retrain is needed.
        raise ConfigError(f"--retrain: the new data has no values for the label {judged.unjudged_label}, so no "
                          f"model can be trained on it; its verdict ({word}) is in {paths['verdict']}: add the "
                          "label to the data, or monitor without --retrain")
    if not moved:
        print(f"kubetfx monitor: ok: no {mode}, no missing-rate change, no anomaly against version "
              f"{served.version}; report {paths['verdict']}")
        return exit_codes.OK
    print(f"kubetfx monitor: {drift.by_word(verdicts, mode)} against version {served.version}; "
          f"report {paths['verdict']}", file=sys.stderr)
    if args.retrain:
        return _retrain(args, config, served)
    return exit_codes.DRIFT


def _retrain(args, config, served) -> int:
    from kubetfx.pipelines.run import command as run_command

    label = args.label or served.data.label
    if not label:
        raise ConfigError("--retrain needs --label: the served model's label is not recorded")
    uri = getattr(args, "data_uri", None)  # --data in the store: trained on a copy deleted when we end
    print(f"kubetfx monitor: retraining {config.name} on {uri or args.data} (label {label}); the gates decide the push",
          flush=True)
    retrained = config.replace(data=os.path.abspath(args.data), label=label, task=served.data.task)
    try:
        code = run_command.run(retrained)
    finally:
        if uri:
            _record_data_uri(retrained, uri)
    return exit_codes.DRIFT if code == exit_codes.OK else code


def _record_data_uri(config, uri: str) -> None:
    """ExampleGen's recorded input_base names the store address the user gave, as a
    `--engine containers` run records its data_root, not the scratch copy (gone when the
    command ends): `models` and the next monitor say where the version's data is."""
    from kubetfx.pipelines.record import mlmd

    local = config.data.rstrip("/")
    # one object: ExampleGen reads its folder (input_base) with the file's name as pattern
    bases = {local: uri} if os.path.isdir(local) else {os.path.dirname(local): uri.rsplit("/", 1)[0]}
    if not config.metadata_path.exists():
        return
    store = mlmd.open_store(str(config.metadata_path), writable=True)
    changed = []
    for execution in store.get_executions():
        value = execution.custom_properties.get("input_base")
        if value is not None and value.string_value in bases:
            value.string_value = bases[value.string_value]
            changed.append(execution)
    if changed:
        store.put_executions(changed)


def _fetch_remote(args, scratch: Path) -> dict:
    """An object-store --data or --logs is downloaded; args then name the local copy.
    {local copy: its URI}."""
    from kubetfx.pipelines.kubeflow import remote_source

    copies = {}
    for field in ("data", "logs"):
        uri = getattr(args, field)
        if remote_source.is_remote(uri):
            args.source_uri = uri
            local = remote_source.download(uri, scratch)
            if local.is_file():  # one object: its name tells its format (x.parquet, y.csv)
                local = local.rename(local.with_name(uri.rstrip("/").rsplit("/", 1)[-1] or local.name))
            setattr(args, field, str(local))
            setattr(args, f"{field}_uri", uri.rstrip("/"))
            copies[str(local)] = uri.rstrip("/")
    return copies


def _fetch_and_monitor(args, config, result: dict | None = None) -> int:
    import tempfile

    from kubetfx.pipelines.kubeflow import remote_source

    with tempfile.TemporaryDirectory(prefix="kubetfx-monitor-") as scratch:
        try:
            copies = _fetch_remote(args, Path(scratch))
        except remote_source.StoreUnavailable as err:  # not bad input: the Job retries
            print(f"kubetfx: error: {err}", file=sys.stderr)
            return exit_codes.CRASH
        try:
            return monitor(args, config, result)
        except (InputError, ConfigError) as err:  # name the data where the user put it, not the copy gone with us
            message = str(err)
            for local, uri in copies.items():
                message = message.replace(local, uri)
            if message == str(err):
                raise
            raise type(err)(message) from None


def main(args) -> int:
    config = _config(args)
    if not getattr(args, "json", False):
        return _fetch_and_monitor(args, config)
    # --json: stdout carries the JSON document only (as `run --json`), also during --retrain.
    import contextlib
    import json

    result, stdout = {}, sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        code = _fetch_and_monitor(args, config, result)
    print(json.dumps({**result, "exit_code": code}, indent=2, default=str), file=stdout)
    return code
