"""Which model versions a pipeline pushed, what each was trained on, how it scored, and
which one is served — the serving directory joined with ML Metadata lineage.

The serving directory is the truth for what exists and what is served: TF Serving
serves the highest integer version under the base path (tensorflow/serving 2.16
tensorflow_serving/sources/storage_path/file_system_storage_path_source.cc, version
policy `latest 1`). ML Metadata says where each version came from: its PushedModel
artifact (`pushed_version`), the Pusher that wrote it, the Model, the Evaluator and
InfraValidator blessings, the Trainer's Examples and schema, and the statistics of
those Examples. Where ML Metadata has no record of a version (a serving volume of the
cluster, read with `kubetfx models --serving-dir`), the training summary the Pusher keeps
beside it (components/pusher/training_summary.py) says the label, the span, the blessings
and where the statistics came from, and the version number (Unix time, as TFX numbers
versions) says when it was pushed. A rollback re-publishes an earlier version under a new number; its
PushedModel is written by a `kubetfx.Rollback` execution whose input is the earlier
PushedModel, so its lineage is the earlier version's."""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
from pathlib import Path
from typing import Optional

from kubetfx.components.evaluator import acceptance
from kubetfx.pipelines.record import mlmd
from kubetfx.pipelines.record.lineage import Lineage, prop

ROLLBACK_EXECUTION = "kubetfx.Rollback"
HISTORY_FILE = "rollbacks.jsonl"  # beside the versions; TF Serving ignores non-integer names


@dataclasses.dataclass
class TrainingData:
    input_base: Optional[str] = None
    pattern: Optional[str] = None
    span: Optional[int] = None
    fingerprint: Optional[str] = None
    examples_uri: Optional[str] = None
    statistics_uri: Optional[str] = None
    schema_uri: Optional[str] = None
    label: Optional[str] = None           # the Trainer's, from its custom_config
    task: Optional[str] = None
    # {"identifiers": [...], "datetimes": [...], "text": [...]}: columns that are no model input
    column_roles: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class PushedVersion:
    version: str
    path: str
    serving: bool = False
    pushed_at: Optional[str] = None       # ISO 8601 UTC
    model_uri: Optional[str] = None
    blessed: Optional[bool] = None        # Evaluator
    infra_blessed: Optional[bool] = None  # InfraValidator
    metrics: dict = dataclasses.field(default_factory=dict)
    # The acceptance test on the held-out test split (components/evaluator/acceptance.py).
    acceptance: Optional[dict] = None
    data: TrainingData = dataclasses.field(default_factory=TrainingData)
    rollback_of: Optional[str] = None
    summary: bool = False                 # filled from the training summary beside it
    evaluation_uri: Optional[str] = None
    pushed_model_id: Optional[int] = None  # the PushedModel artifact in ML Metadata
    model_id: Optional[int] = None

    @property
    def recorded(self) -> bool:
        return self.pushed_model_id is not None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def serving_versions(serving_dir) -> list[str]:
    """The complete versions, oldest first, by the rule the model server follows
    (components/serving/valid_version.py): a torn one is skipped and reported, never
    listed as served."""
    from kubetfx.components.serving import valid_version

    return [str(v) for v in valid_version.versions(serving_dir)]


def served_version(serving_dir) -> Optional[str]:
    """What everybody is served (rollout_state.serving_version: the stable version during
    a staged rollout and after an abort, else the highest complete one)."""
    from kubetfx.components.serving import rollout_state

    return rollout_state.serving_version(serving_dir)


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(timespec="seconds")


def _training_data(lineage: Lineage, trainer) -> TrainingData:
    data = TrainingData()
    trainer_id = trainer.id
    try:
        custom = json.loads(prop(trainer, "custom_config") or "null") or {}
        data.label, data.task = custom.get("label"), custom.get("task")
    except ValueError:
        pass
    examples = lineage.input(trainer_id, "examples")
    schema = lineage.input(trainer_id, "schema")
    data.schema_uri = schema.uri if schema else None
    if examples is None:
        return data
    data.examples_uri, data.span = examples.uri, prop(examples, "span")
    data.fingerprint = prop(examples, "input_fingerprint")
    example_gen = lineage.producer(examples.id)
    if example_gen is not None:
        data.input_base = prop(example_gen, "input_base")
        config = prop(example_gen, "input_config")
        if config:
            splits = json.loads(config).get("splits", [])
            data.pattern = ", ".join(s.get("pattern", "") for s in splits) or None
    for consumer in lineage.consumers(examples.id, "examples"):
        statistics = lineage.output(consumer.id, "statistics")
        if statistics is not None and lineage.type_of(statistics) == "ExampleStatistics":
            data.statistics_uri = statistics.uri
    return data


def _metrics(evaluation_uri: str) -> dict:
    from kubetfx.components import stage_outputs  # TFMA: imported only when a record has one

    try:
        return {name: value for name, (value, _) in stage_outputs.gated_metrics(evaluation_uri).items()}
    except (OSError, ValueError, KeyError):
        return {}


def _fill_from_pusher(lineage: Lineage, record: PushedVersion, pusher_id: int, with_metrics: bool) -> None:
    model = lineage.input(pusher_id, "model")
    blessing = lineage.input(pusher_id, "model_blessing")
    infra = lineage.input(pusher_id, "infra_blessing")
    record.blessed = bool(prop(blessing, "blessed")) if blessing else None
    record.infra_blessed = bool(prop(infra, "blessed")) if infra else None
    held_out = acceptance.read(blessing)
    record.acceptance = dataclasses.asdict(held_out) if held_out else None
    if model is None:
        return
    record.model_uri, record.model_id = model.uri, model.id
    trainer = lineage.producer(model.id)
    if trainer is not None:
        record.data = _training_data(lineage, trainer)
    try:
        pusher_config = json.loads(prop(lineage.store.get_executions_by_id([pusher_id])[0], "custom_config") or "null") or {}
        record.data.column_roles = pusher_config.get("column_roles") or {}
    except ValueError:
        pass
    if blessing is not None:
        evaluator = lineage.producer(blessing.id)
        evaluation = lineage.output(evaluator.id, "evaluation") if evaluator else None
        if evaluation is not None:
            record.evaluation_uri = evaluation.uri
            if with_metrics:
                record.metrics = _metrics(evaluation.uri)


def _origin_pusher(lineage: Lineage, pushed) -> tuple:
    """(Pusher execution id, version rolled back from) following rollbacks to the push."""
    rollback_of = None
    for _ in range(100):  # a chain of rollbacks is short; the bound guards a corrupt store
        execution = lineage.producer(pushed.id)
        if execution is None:
            return None, rollback_of
        if lineage.execution_type_of(execution) != ROLLBACK_EXECUTION:
            return execution.id, rollback_of
        rollback_of = rollback_of or prop(execution, "rollback_of")
        pushed = lineage.input(execution.id, "pushed_model")
        if pushed is None:
            return None, rollback_of
    return None, rollback_of


def _pushed_artifacts(lineage: Lineage, pipeline_name: str) -> dict:
    """{version: the first PushedModel artifact that put it there}."""
    store = lineage.store
    context = store.get_context_by_type_and_name("pipeline", pipeline_name)
    if context is None:
        return {}
    found = {}
    for artifact in sorted(store.get_artifacts_by_context(context.id), key=lambda a: a.id):
        if lineage.type_of(artifact) == "PushedModel" and prop(artifact, "pushed") == 1:
            version = prop(artifact, "pushed_version")
            if version is None and prop(artifact, "pushed_destination"):
                version = os.path.basename(str(prop(artifact, "pushed_destination")).rstrip("/"))
            if version is not None:
                found.setdefault(str(version), artifact)
    return found


def _history(serving_dir) -> dict:
    """{version: rolled back from} from the serving directory's own record (cluster pushes
    and rollbacks have no local metadata; the file travels with the models)."""
    path = Path(serving_dir) / HISTORY_FILE
    found = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
                found[str(entry["version"])] = str(entry["rollback_of"])
            except (ValueError, KeyError, TypeError):
                continue  # a torn last line of a killed writer
    return found


def _pushed_at_from_version(version: str) -> Optional[str]:
    """TFX numbers versions with the Unix time of the push (tfx 1.16
    tfx/components/pusher/executor.py `int(time.time())`); kubetfx's Pusher and rollback
    do the same."""
    seconds = int(version)
    return _iso(seconds * 1000) if 1_000_000_000 <= seconds < 10_000_000_000 else None


def fill_from_summary(record: PushedVersion) -> bool:
    """Fills `record` from the training summary kept beside the version (its schema and
    statistics: the copies there); False when the version has none."""
    from kubetfx.components.pusher import training_summary  # TensorFlow's file system

    summary = training_summary.read_record(record.path)
    if summary is None:
        return False
    record.summary = True
    if record.blessed is None and record.infra_blessed is None:
        record.blessed, record.infra_blessed = summary.get("blessed"), summary.get("infra_blessed")
    where = training_summary.location(record.path)
    data = record.data
    data.statistics_uri = os.path.join(where, training_summary.STATISTICS_DIR)
    data.schema_uri = where
    data.label, data.task, data.span = summary.get("label"), summary.get("task"), summary.get("span")
    data.column_roles = summary.get("column_roles") or {}
    data.input_base = data.input_base or f"the data of {summary.get('statistics_uri')}"
    return True


def pushed_versions(metadata_path, pipeline_name: str, serving_dir, *, with_metrics: bool = True) -> list:
    """Every version in the serving directory, oldest first, with what metadata knows."""
    versions = serving_versions(serving_dir)
    served = served_version(serving_dir) if versions else None
    history = _history(serving_dir)
    records = [PushedVersion(version=v, path=str(Path(serving_dir) / v), serving=(v == served),
                             pushed_at=_pushed_at_from_version(v), rollback_of=history.get(v)) for v in versions]
    pushed = {}
    if records and Path(metadata_path).exists():
        lineage = Lineage(mlmd.open_store(metadata_path))
        pushed = _pushed_artifacts(lineage, pipeline_name)
    for record in records:
        artifact = pushed.get(record.version)
        if artifact is None:
            fill_from_summary(record)
            continue
        record.pushed_model_id = artifact.id
        record.pushed_at = _iso(artifact.create_time_since_epoch)
        pusher_id, rollback_of = _origin_pusher(lineage, artifact)
        record.rollback_of = rollback_of or record.rollback_of
        if pusher_id is not None:
            _fill_from_pusher(lineage, record, pusher_id, with_metrics)
    return records


def recorded_versions(metadata_path, pipeline_name: str) -> list:
    """The versions ML Metadata records as pushed (oldest first), whether or not their
    directories are still in the serving directory."""
    if not Path(metadata_path).exists():
        return []
    found = _pushed_artifacts(Lineage(mlmd.open_store(metadata_path)), pipeline_name)
    return sorted(found, key=lambda v: (len(v), v))


def find(records: list, version: str) -> Optional[PushedVersion]:
    return next((r for r in records if r.version == str(version)), None)
