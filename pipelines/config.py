"""One typed configuration for every runner: defaults, then a YAML file, then CLI flags.

Nothing here reads the environment at import time; `PipelineConfig.resolve_home` is the
single place where `KUBETFX_HOME` is consulted, and only when a command asks for it.
"""
from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Optional

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
EMBEDDED_DATA = PACKAGE_DIR / "data" / "penguins"
EMBEDDED_LABEL = "species"
DEFAULT_HOME = ".kubetfx"
TASKS = ("classification", "regression")
ANOMALY_MODES = ("fail", "warn")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


class ConfigError(ValueError):
    """A configuration a user can fix; its message says how."""


@dataclasses.dataclass
class PipelineConfig:
    """Everything that shapes one pipeline; runners read it, none adds its own flags."""

    name: str = "kubetfx-penguin"
    data: str = str(EMBEDDED_DATA)
    label: str = EMBEDDED_LABEL
    home: str = DEFAULT_HOME
    # classification | regression; None = chosen from the label column's type.
    task: Optional[str] = None
    module_file: Optional[str] = None
    # Curated schema (schema.pbtxt) imported instead of inferred; None = infer.
    schema_file: Optional[str] = None
    # Anomalies of error severity: "fail" stops the run before Transform, "warn" logs them.
    on_anomalies: str = "fail"
    # A module file's run_fn reads these two as fn_args.train_steps / eval_steps.
    train_steps: int = 300
    eval_steps: int = 50
    # The built-in Trainer trains in epochs over the whole training split, stopping early when
    # the eval loss stops improving (patience in epochs, best weights kept), within
    # max_epochs and train_seconds. None: batch size and learning rate follow the data size.
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None
    max_epochs: int = 100
    train_seconds: float = 600.0
    early_stopping_patience: int = 5
    # Columns the built-in Transform treats apart: {"identifiers": [...], "datetimes": [...]}.
    # None = found from a sample of the data (components/transform/column_roles.py).
    column_roles: Optional[dict] = None
    # Evaluator gate: classification blesses when accuracy >= threshold; regression when
    # mean absolute error <= threshold (None = no absolute bound, only the baseline check).
    eval_threshold: Optional[float] = None
    # A candidate may be worse than the latest blessed model by at most this much.
    change_tolerance: float = 0.01
    # Beam options for the Beam stages (e.g. --runner=FlinkRunner); [] = in-process direct runner.
    beam_pipeline_args: list = dataclasses.field(default_factory=list)
    infra_validation_examples: int = 10
    enable_cache: bool = True

    # ---- derived locations -------------------------------------------------------------
    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser().resolve()

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
        return Path(self.data).resolve() == EMBEDDED_DATA.resolve()

    def effective_threshold(self) -> Optional[float]:
        if self.eval_threshold is not None:
            return self.eval_threshold
        return 0.6 if self.task == "classification" else None

    # ---- construction ------------------------------------------------------------------
    def validate(self) -> "PipelineConfig":
        if not _NAME_RE.match(self.name):
            raise ConfigError(
                f"pipeline name {self.name!r} must be lower-case letters, digits and '-' "
                "(it names Kubernetes objects and directories)")
        if self.task is not None and self.task not in TASKS:
            raise ConfigError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.on_anomalies not in ANOMALY_MODES:
            raise ConfigError(f"on_anomalies must be one of {ANOMALY_MODES}, got {self.on_anomalies!r}")
        for field in ("train_steps", "eval_steps", "batch_size", "learning_rate", "max_epochs",
                      "train_seconds", "early_stopping_patience", "infra_validation_examples"):
            if getattr(self, field) is not None and getattr(self, field) <= 0:
                raise ConfigError(f"{field} must be positive, got {getattr(self, field)}")
        if self.change_tolerance < 0:
            raise ConfigError(f"change_tolerance must be >= 0, got {self.change_tolerance}")
        return self

    def replace(self, **changes: Any) -> "PipelineConfig":
        """A copy with the non-None changes applied (CLI flags left unset change nothing)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_yaml(cls, path: str) -> "PipelineConfig":
        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read config {path}: {err}") from err
        if not isinstance(raw, dict):
            raise ConfigError(f"config {path} must be a mapping of field: value")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"unknown config fields in {path}: {unknown}; known: {sorted(known)}")
        return cls(**raw)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_home(flag_value: Optional[str]) -> str:
    """--home wins, then KUBETFX_HOME, then ./.kubetfx."""
    return flag_value or os.environ.get("KUBETFX_HOME") or DEFAULT_HOME
