"""One typed configuration for every runner: defaults, then a YAML file, then CLI flags.

The field annotations are the schema: pydantic validates a YAML file and the flags against
them (`validate`), so a wrong type or range is one line naming the field (and the file).
Values are coerced as the command line would coerce them ("50" -> 50 for `train_steps`,
"0.7" -> 0.7), nothing else: a string where a list is expected, a fraction or a boolean
where a count is expected, and unknown fields are refused.

A config file is read with bounds (`_BoundedLoader`): its size, the wait for a pipe's
writer (`--config <(...)`, a named pipe), nesting depth and integer length are limited,
YAML aliases and duplicate keys are refused, and numbers must be finite and in range, so
a hostile or careless file is one line within a second (a pipe: PIPE_WAIT_SECONDS), never
a hang (an alias bomb expands to gigabytes in validation) or a traceback.

Nothing here reads the environment at import time; `PipelineConfig.resolve_home` is the
single place where `KUBETFX_HOME` is consulted, and only when a command asks for it.
"""
from __future__ import annotations

import dataclasses
import os
import re
import reprlib
import select
import stat
import time
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import pydantic
import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
EMBEDDED_DATA = PACKAGE_DIR / "data" / "penguins"
EMBEDDED_LABEL = "species"
DEFAULT_HOME = ".kubetfx"
TASKS = ("classification", "regression")
ANOMALY_MODES = ("fail", "warn")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
MAX_CONFIG_BYTES = 1 << 20   # a config is a few hundred bytes; 1 MiB leaves room for long lists
MAX_DEPTH = 8                # the deepest field (column_roles: {role: [names]}) is 3 levels
MAX_INT_CHARS = 20           # any count a config needs; Python would parse 4,300 digits
MAX_COUNT = 10**9
PIPE_WAIT_SECONDS = 10.0     # a config read from a pipe: its writer has this long to finish


class ConfigError(ValueError):
    """A configuration a user can fix; its message says how."""


def _not_a_bool(value):
    if isinstance(value, bool):  # YAML's `yes`/`true`; pydantic would take it for 1
        raise ValueError("expected a number, got a boolean")
    return value


def _pipeline_name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise ValueError(f"pipeline name {value!r} must be lower-case letters, digits and '-' "
                         "(it names Kubernetes objects and directories)")
    return value


Count = Annotated[int, pydantic.BeforeValidator(_not_a_bool), pydantic.Field(gt=0, le=MAX_COUNT)]
# NaN compares false with everything: a NaN threshold never blesses and never alarms.
Number = Annotated[float, pydantic.BeforeValidator(_not_a_bool), pydantic.Field(allow_inf_nan=False)]
# TFDV's drift measures (L-infinity, Jensen-Shannon) lie in [0, 1]; 0 would alarm on anything.
DriftThreshold = Annotated[Number, pydantic.Field(gt=0, le=1)]


Percent = Annotated[Number, pydantic.Field(gt=0, le=100)]


def _rising_plan(plan: list) -> list:
    if not plan or any(b <= a for a, b in zip(plan, plan[1:])):
        raise ValueError("the plan must be one or more candidate percentages, each above the one before")
    return plan


def _rollout_key(key: str) -> str:
    if key != "header" and not (key.startswith("feature:") and len(key) > len("feature:")):
        raise ValueError('key must be "header" (the X-Request-Key header) or "feature:<name>"')
    return key


@dataclasses.dataclass
class RolloutConfig:
    """How a blessed push reaches traffic (`rollout:` in the config; pipelines/serving/
    rollout_rule.py applies it). replace: the push serves everybody at once. staged: it
    becomes a candidate beside the served version at plan[0] percent of callers, and
    `kubetfx rollout --auto` advances it step by step, promotes or aborts it."""

    mode: Literal["replace", "staged"] = "replace"
    plan: Annotated[list[Percent], pydantic.AfterValidator(_rising_plan)] = dataclasses.field(
        default_factory=lambda: [5.0, 10.0, 20.0, 100.0])
    # Labelled requests each track needs at a step before the rule decides anything.
    min_samples: Count = 200
    # The candidate's Evaluator metric may be worse than stable's by at most this much
    # (absolute: accuracy points, or MAE units for regression), at the confidence below.
    max_metric_loss: Annotated[Number, pydantic.Field(ge=0)] = 0.02
    confidence: Annotated[Number, pydantic.Field(gt=0.5, lt=1)] = 0.95
    # Budgets of the candidate track: share of non-200 answers, 99th percentile latency.
    max_error_rate: Annotated[Number, pydantic.Field(ge=0, le=1)] = 0.01
    max_latency_p99_ms: Optional[Annotated[Number, pydantic.Field(gt=0)]] = None
    # What makes a caller sticky: "header" (X-Request-Key) or "feature:<name>".
    key: Annotated[str, pydantic.AfterValidator(_rollout_key)] = "header"


RolloutConfig.__pydantic_config__ = pydantic.ConfigDict(extra="forbid")


@dataclasses.dataclass
class PipelineConfig:
    """Everything that shapes one pipeline; runners read it, none adds its own flags."""

    name: Annotated[str, pydantic.AfterValidator(_pipeline_name)] = "kubetfx-penguin"
    data: str = str(EMBEDDED_DATA)
    label: str = EMBEDDED_LABEL
    home: str = DEFAULT_HOME
    # classification | regression; None = chosen from the label column's type.
    task: Optional[Literal[TASKS]] = None
    # csv | parquet | tfrecord; None = from the data's file names (example_gen/data_format.py).
    data_format: Optional[Literal["csv", "parquet", "tfrecord"]] = None
    # ExampleGen's input pattern of a partitioned Parquet folder (`*=*/*.parquet`), read from
    # the local files as data_format is: the compiled spec's data is a cluster location.
    data_pattern: Optional[str] = None
    module_file: Optional[str] = None
    # Curated schema (schema.pbtxt) imported instead of inferred; None = infer.
    schema_file: Optional[str] = None
    # Anomalies of error severity: "fail" stops the run before Transform, "warn" logs them.
    on_anomalies: Literal[ANOMALY_MODES] = "fail"
    # A module file's run_fn reads these two as fn_args.train_steps / eval_steps.
    train_steps: Count = 300
    eval_steps: Count = 50
    # The built-in Trainer trains in epochs over the whole training split, stopping early when
    # the eval loss stops improving (patience in epochs, best weights kept), within
    # max_epochs and train_seconds. None: batch size and learning rate follow the data size.
    batch_size: Optional[Count] = None
    learning_rate: Optional[Annotated[Number, pydantic.Field(gt=0)]] = None
    max_epochs: Count = 100
    train_seconds: Annotated[Number, pydantic.Field(gt=0)] = 600.0
    early_stopping_patience: Count = 5
    # Hyperparameter search before training (`--tune`): TFX's Tuner with KerasTuner's random
    # search over learning rate, width and depth of the built-in model, tune_trials trials of
    # at most tune_epochs epochs each (early stopping); the Trainer trains the best one.
    tune: bool = False
    tune_trials: Count = 4
    tune_epochs: Count = 20
    # Columns the built-in Transform treats apart, found from a sample of the data
    # (components/transform/column_roles.py); a column listed here takes that role instead:
    # {"identifiers": [...], "datetimes": [...], "text": [...]}, or "features": [...] for
    # columns that are ordinary features whatever their values.
    column_roles: Optional[dict[Literal["identifiers", "datetimes", "text", "features"], list[str]]] = None
    # Evaluator gate: classification blesses when accuracy >= threshold; regression when
    # mean absolute error <= threshold (None = no absolute bound, only the baseline check).
    eval_threshold: Optional[Annotated[Number, pydantic.Field(ge=0)]] = None
    # Acceptance test on the held-out test split (no training, tuning or blessing decision
    # sees it), once per blessed model: the same metric and direction as eval_threshold;
    # below it the model is not pushed. None: measured and recorded only.
    acceptance_threshold: Optional[Annotated[Number, pydantic.Field(ge=0)]] = None
    # A candidate may be worse than the latest blessed model by at most this much (on
    # accuracy never less than one labelled eval row: components/evaluator/gate.py).
    change_tolerance: Annotated[Number, pydantic.Field(ge=0)] = 0.01
    # The served version the Evaluator compares with ("" = none). None: the one served when
    # the run starts; a re-run of the same build gets that build's (pipelines/record/served_build.py).
    served_baseline_version: Optional[str] = None
    # Beam options for the Beam stages (e.g. --runner=FlinkRunner); [] = in-process direct runner.
    beam_pipeline_args: list[str] = dataclasses.field(default_factory=list)
    infra_validation_examples: Count = 10
    enable_cache: bool = True
    # ---- kubetfx monitor: how far new data or logged requests may move from the served
    # model's training data before it is drift (or skew). TFDV's measures: L-infinity
    # distance for categorical features, Jensen-Shannon divergence for numeric ones; both
    # in (0, 1]. Defaults sit above sampling noise: 100-row samples of the embedded data
    # reach 0.14 (L-inf) and 0.08 (JSD) against its training split.
    drift_categorical_threshold: DriftThreshold = 0.2
    drift_numeric_threshold: DriftThreshold = 0.15
    # {feature: threshold} overriding the two above for that feature.
    drift_feature_thresholds: dict[str, DriftThreshold] = dataclasses.field(default_factory=dict)
    # How far a feature's missing rate (fraction of examples without a value) may move from
    # training's, as an absolute difference, before it is an alarm (tests/bench/monitor_false_alarms.py).
    drift_missing_rate_threshold: DriftThreshold = 0.1
    # ---- after the push: replace the served version, or a staged rollout (RolloutConfig).
    rollout: RolloutConfig = dataclasses.field(default_factory=RolloutConfig)

    # ---- derived locations -------------------------------------------------------------
    @property
    def home_path(self) -> Path:
        try:
            return Path(self.home).expanduser().resolve()
        except (RuntimeError, OSError) as err:  # Python 3.11: RuntimeError("Symlink loop from ...")
            raise ConfigError(f"the home {self.home} cannot be resolved ({err}); point --home (or "
                              "KUBETFX_HOME) at a folder") from None

    @property
    def pipeline_root(self) -> Path:
        return self.home_path / "pipelines" / self.name

    @property
    def metadata_path(self) -> Path:
        return self.home_path / "metadata" / f"{self.name}.sqlite"

    @property
    def serving_dir(self) -> Path:
        """Versioned push destination: <serving_dir>/<version>/saved_model.pb."""
        return self.home_path / "serving" / self.name

    @property
    def logs_dir(self) -> Path:
        return self.home_path / "logs" / self.name

    @property
    def uses_embedded_data(self) -> bool:
        try:
            return Path(self.data).resolve() == EMBEDDED_DATA.resolve()
        except (RuntimeError, OSError):  # a symbolic link loop is no embedded data (the data check names it)
            return False

    def effective_threshold(self) -> Optional[float]:
        if self.eval_threshold is not None:
            return self.eval_threshold
        return 0.6 if self.task == "classification" else None

    # ---- construction ------------------------------------------------------------------
    def validate(self, source: str = "") -> "PipelineConfig":
        """This config with its values checked and coerced; ConfigError names the field
        (and `source`, the file it came from) in one line."""
        try:
            return _VALIDATOR.validate_python(dataclasses.asdict(self))
        except pydantic.ValidationError as err:
            raise ConfigError(_one_line(err, source)) from None

    def replace(self, **changes: Any) -> "PipelineConfig":
        """A copy with the non-None changes applied (CLI flags left unset change nothing)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_yaml(cls, path: str) -> "PipelineConfig":
        try:
            content = _read_config_bytes(path)
            if len(content) > MAX_CONFIG_BYTES:
                raise ConfigError(f"config {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB; "
                                  "a config holds a few fields")
            raw = yaml.load(content.decode("utf-8"), Loader=_BoundedLoader) or {}
        except _Refused as err:
            raise ConfigError(f"config {path}: {err}") from None
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read config {path}: {' '.join(str(err).split())}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a mapping of field: value")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(map(str, set(raw) - known))
        if unknown:
            raise ConfigError(f"unknown config fields in {path}: {unknown}; known: {sorted(known)}")
        try:
            return _VALIDATOR.validate_python(raw)
        except pydantic.ValidationError as err:
            raise ConfigError(_one_line(err, f"config {path}")) from None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _read_config_bytes(path: str) -> bytes:
    """At most MAX_CONFIG_BYTES + 1 bytes of the file. /dev/zero has no end, and opening a
    named pipe nobody writes to blocks forever: a pipe (`--config <(...)` too) is read for
    what its writer sends within PIPE_WAIT_SECONDS."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            os.set_blocking(fd, True)
            with os.fdopen(os.dup(fd), "rb") as file:
                return file.read(MAX_CONFIG_BYTES + 1)
        deadline, chunks, size, writer_seen = time.monotonic() + PIPE_WAIT_SECONDS, [], 0, False
        while size <= MAX_CONFIG_BYTES:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:  # a writer holds the pipe, nothing sent yet
                writer_seen, chunk = True, None
            if chunk:
                writer_seen = True
                chunks.append(chunk)
                size += len(chunk)
                continue
            if chunk == b"" and writer_seen:  # the writer closed its end: the whole config
                break
            # b"" before any writer is "no writer yet", not the end of a config.
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConfigError(f"config {path} is a pipe nobody wrote a whole config to within "
                                  f"{PIPE_WAIT_SECONDS:g} s")
            select.select([fd], [], [], min(0.05, left))  # back early when data comes
        return b"".join(chunks)
    finally:
        os.close(fd)


class _Refused(yaml.YAMLError):
    """YAML that parses but that a config never needs; the message says what and where."""


class _BoundedLoader(yaml.SafeLoader):
    """safe_load's loader without its unbounded corners: an alias is a reference that
    validation and error messages expand (9 levels of 9 aliases: 387 million strings), a
    deep nest recurses in the composer, a long integer costs quadratic time, and a
    duplicate key silently takes the last value."""

    _depth = 0

    def compose_node(self, parent, index):
        mark = self.peek_event().start_mark
        where = f"line {mark.line + 1}"
        if self.check_event(yaml.AliasEvent):
            raise _Refused(f"{where}: YAML aliases (*{self.peek_event().anchor}) are not accepted "
                           "in a config; write the value out")
        if self._depth >= MAX_DEPTH:
            raise _Refused(f"{where}: values nested deeper than {MAX_DEPTH} levels; no field needs that")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # no field has a list or mapping for a name; validation refuses it
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise _Refused(f"line {key_node.start_mark.line + 1}: duplicate key {key_node.value!r}; "
                               "keep one (YAML would silently take the last)")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node):
        if len(node.value) > MAX_INT_CHARS:
            raise _Refused(f"line {node.start_mark.line + 1}: integer of {len(node.value)} characters; "
                           f"at most {MAX_INT_CHARS}")
        return super().construct_yaml_int(node)


_BoundedLoader.add_constructor("tag:yaml.org,2002:int", _BoundedLoader.construct_yaml_int)


# Unknown fields are refused (a typo must not pass as a default).
PipelineConfig.__pydantic_config__ = pydantic.ConfigDict(extra="forbid")
_VALIDATOR = pydantic.TypeAdapter(PipelineConfig)


def _one_line(err: pydantic.ValidationError, source: str) -> str:
    problems = []
    for e in err.errors(include_url=False):
        field = ".".join(str(part) for part in e["loc"])
        message = e["msg"].removeprefix("Value error, ")
        problems.append(f"{field}: {message} (got {_short_repr(e['input'])})")
    if len(problems) > 3:  # one line, however many items of a list are wrong
        problems[3:] = [f"and {len(problems) - 3} more"]
    return (f"{source}: " if source else "") + "; ".join(problems)


def _short_repr(value: Any, limit: int = 80) -> str:
    """repr of a value the user gave, cut: a long list must not become a long message."""
    short = reprlib.Repr()  # attributes, not keywords: those need Python 3.12
    short.maxstring = short.maxother = limit
    short.maxlist = short.maxdict = 6
    short.maxlevel = 3
    text = short.repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def resolve_home(flag_value: Optional[str]) -> str:
    """--home wins, then KUBETFX_HOME, then ./.kubetfx."""
    return flag_value or os.environ.get("KUBETFX_HOME") or DEFAULT_HOME


def home_for(flag_value: Optional[str], config_file: Optional[str], config: "PipelineConfig") -> str:
    """The home of every command taking --config: --home, then the config file's `home:`,
    then KUBETFX_HOME, then ./.kubetfx. A config that names no home must not send one
    command away from where the others (models, serve, monitor) look."""
    if config_file and not flag_value and config.home != PipelineConfig.home:
        return config.home
    return resolve_home(flag_value)
