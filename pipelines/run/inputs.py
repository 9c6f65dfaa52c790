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
    roles = column_roles.resolve(column_roles.infer(data_format.data_files(config.data)[1], config.label,
                                                    sample=data_format.sample(config.data)),
                                 config.column_roles)
    # The format travels in the config: the compiled spec's data is a location only the
    # cluster sees, its ExampleGen is chosen from the local files read here.
    config = config.replace(task=task, column_roles=roles, data_format=data_format.format_of(config.data))
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
