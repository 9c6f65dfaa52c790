"""What every runner does before building the pipeline: check the input, the files and
the home the config names, settle the task. Each mistake a user can make here is a
ConfigError or InputError (one line, exit 2) before any stage starts."""
from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from kubetfx.components.example_gen import csv_input, data_format
from kubetfx.components.transform import column_roles
from kubetfx.pipelines.record import served_build
from kubetfx.pipelines.run import module_check
from kubetfx.pipelines.config import ConfigError, PipelineConfig

CURATED_SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "penguins.schema.pbtxt"


def prepare(config: PipelineConfig) -> PipelineConfig:
    """Raises csv_input.InputError / ConfigError with a message the user can act on. The
    data is CSV, Parquet or TFRecords of tf.Examples (data_format.py), checked alike."""
    config = config.validate()
    for flag, path in (("--module-file", config.module_file), ("--schema-file", config.schema_file)):
        if path is not None and not Path(path).is_file():
            raise ConfigError(f"{flag} {path} does not exist (or is not a file)")
    if config.schema_file is not None:
        check_schema_file(config.schema_file)
    if config.module_file is not None:
        module_check.check_source(config.module_file, module_check.required_functions(config))
    warning = data_format.check(config.data, config.label, config.task, rare_in_train=config.on_anomalies)
    if warning:
        print(f"kubetfx: warning (--on-anomalies warn): {warning}", file=sys.stderr, flush=True)
    if config.module_file is not None:  # seconds (TensorFlow's import): after the quick checks
        module_check.check_import(config.module_file, module_check.required_functions(config))
    key = served_build.build_key(config)  # what the user chose, before the decisions below
    writable_dir(config.home_path, "home (--home or KUBETFX_HOME)")
    task = config.task or data_format.infer_task(config.data, config.label)
    files, sample = data_format.data_files(config.data)[1], data_format.sample(config.data)
    check_column_roles(config, sample.column_names if sample is not None else csv_input.header(files[0]))
    roles = column_roles.resolve(column_roles.infer(files, config.label, sample=sample), config.column_roles)
    # The format travels in the config: the compiled spec's data is a location only the
    # cluster sees, its ExampleGen is chosen from the local files read here.
    config = config.replace(task=task, column_roles=roles, data_format=data_format.format_of(config.data),
                            data_pattern=data_format.partitioned_pattern(config.data))
    if config.served_baseline_version is None:
        # The same config and data as the run that pushed what is served: that run's
        # decisions, so every stage is a cache hit and nothing new is pushed.
        same = served_build.recorded_build(str(config.metadata_path), config.name, config.serving_dir, key)
        if same is not None:
            return dataclasses.replace(config, schema_file=same.schema_file,
                                       served_baseline_version=same.served_version)
    schema_file = config.schema_file
    if schema_file is None and config.uses_embedded_data:
        schema_file = str(CURATED_SCHEMA)
    if schema_file is None:
        schema_file = served_build.latest_pushed_schema(str(config.metadata_path), config.name)
    served = config.served_baseline_version
    if served is None:
        served = served_build.served_version(config.serving_dir)
    return config.replace(schema_file=schema_file, served_baseline_version=served)


def check_column_roles(config: PipelineConfig, columns: list) -> None:
    """column_roles names columns of the data, and never the label: the label is what the
    model predicts, no input of it. Both were accepted silently: a misspelt column changed
    nothing (as an unknown config field would, which is refused), and the label listed
    under datetimes got the note "used as epoch_seconds, month, ..." although Transform
    never treats the label so."""
    named = {name: role for role, names in (config.column_roles or {}).items() for name in names}
    if config.label in named:
        raise ConfigError(f"column_roles.{named[config.label]} lists {config.label!r}, the label column: the "
                          "label is what the model predicts and takes no role; remove it there")
    unknown = sorted(set(named) - set(columns))
    if unknown:
        shown = ", ".join(columns[:10]) + (", ..." if len(columns) > 10 else "")
        raise ConfigError(f"column_roles names {', '.join(map(repr, unknown))}, not a column of {config.data} "
                          f"(its columns: {shown})")


MAX_SCHEMA_BYTES = 64 << 20  # a schema of 10,000 features with domains is a few MB


def check_schema_file(path: str) -> None:
    """A --schema-file TFX's ImportSchemaGen can parse (a text-format Schema proto, as
    `tfdv.write_schema_text` writes it), else ConfigError: the mistake (a JSON schema, the
    statistics file, a truncated copy) is one line and exit 2 here, not a failed first
    stage (exit 1) after TensorFlow's import."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    try:
        with open(path, "rb") as file:
            content = file.read(MAX_SCHEMA_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"--schema-file {path} cannot be read: {err.strerror or err}") from None
    if len(content) > MAX_SCHEMA_BYTES:
        raise ConfigError(f"--schema-file {path} is larger than {MAX_SCHEMA_BYTES >> 20} MiB: not a schema.pbtxt")
    try:
        schema = text_format.Parse(content.decode("utf-8"), schema_pb2.Schema())
    except UnicodeDecodeError:
        raise ConfigError(f"--schema-file {path} is not text (a binary schema.pb? write it with "
                          "tfdv.write_schema_text)") from None
    except text_format.ParseError as err:
        raise ConfigError(f"--schema-file {path} is not a text-format TFDV schema: line {err}") from None
    if not schema.feature:
        raise ConfigError(f"--schema-file {path} declares no feature: a schema lists the data's columns")


def writable_dir(path: Path, what: str) -> Path:
    """`path`, created if needed, after a real write in it (permission bits alone do not
    tell: root ignores them, a read-only mount or a file in the path does not)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocker} is a file, not a folder" if blocker else err.strerror or str(err)
        raise ConfigError(f"cannot write to the {what} {path}: {reason}") from None
    return path


def writable_file(path: Path, what: str) -> Path:
    """A file path whose folder can be written, and that is not a folder itself."""
    if path.is_dir():
        raise ConfigError(f"the {what} {path} is a folder; give a file name")
    writable_dir(path.parent, f"folder of the {what}")
    return path
