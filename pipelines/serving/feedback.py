"""`kubetfx feedback labels.csv`: outcomes that arrive after the prediction (a customer
churned, a fraud case closed) joined with what the served model predicted, so a live
metric per track exists (live_evaluation.py) and a staged rollout can be decided on it.

Both sides live in one SQLite file, `<home>/feedback/<pipeline>/feedback.sqlite`:
- `labels`: one outcome per key, the key being a request id (the X-Request-Id the caller
  was answered, logged as `request_id`) or, with `--key COLUMN`, the value of a logged
  request feature of that name (a customer id: every prediction for that customer gets
  the outcome). The first label of a key is kept: the same file fed twice changes nothing
  (idempotent); a key seen again with the same label is a duplicate, with another label a
  conflict; both are counted, neither is fatal; so are unparsable labels (empty, too long,
  or not a finite number for a regression model) and unknown keys (no logged prediction
  has them yet: they join once the prediction is read, since labels are kept). A
  request-id label joins a request of one instance only: one outcome is not the outcome of
  each of several instances, nor several outcomes for the rollout's count (`ambiguous`;
  `--key` joins per instance).
- `predictions`: every logged instance (request id, its place in the request, version,
  track, predicted class or value, time), read from the inference log and keyed by
  (request id, index), so reading a log twice adds nothing.
Memory stays bounded: the CSV and the log are streamed in batches, the index of keys is
SQLite's on disk, and each table keeps at most MAX_ROWS rows (the oldest go first)."""
from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import sqlite3
from pathlib import Path
from typing import Iterable, Optional

from kubetfx.pipelines.config import ConfigError, PipelineConfig

MAX_ROWS = 5_000_000          # per table: about 1 GB of SQLite at most
MAX_FIELD_CHARS = 1024        # a request id or a label longer than this is not one
BATCH = 10_000
REQUEST_ID = "request_id"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS labels (kind TEXT NOT NULL, key TEXT NOT NULL, label TEXT NOT NULL,
    PRIMARY KEY (kind, key));
CREATE TABLE IF NOT EXISTS predictions (request_id TEXT NOT NULL, idx INTEGER NOT NULL,
    version INTEGER NOT NULL, track TEXT, predicted TEXT, timestamp_ms INTEGER NOT NULL,
    latency_ms REAL, status INTEGER, key_name TEXT, key_value TEXT, PRIMARY KEY (request_id, idx));
CREATE INDEX IF NOT EXISTS predictions_key ON predictions (key_name, key_value);
CREATE INDEX IF NOT EXISTS predictions_time ON predictions (timestamp_ms);
CREATE TABLE IF NOT EXISTS read_shards (name TEXT PRIMARY KEY, size INTEGER NOT NULL, key_name TEXT,
    last_request TEXT, last_idx INTEGER);
"""


def db_path(config: PipelineConfig) -> Path:
    return config.home_path / "feedback" / config.name / "feedback.sqlite"


def connect(path) -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), timeout=60)  # another feedback or rollout waits, bounded
    try:
        db.executescript(_SCHEMA)
    except sqlite3.DatabaseError as err:  # not a database (a torn or foreign file), locked past the timeout
        db.close()
        raise ConfigError(f"feedback store {path} cannot be used ({err}): move it aside and feed the labels again "
                          "(the next feedback makes a new store from the inference log)") from None
    return db


@dataclasses.dataclass
class FeedbackCounts:
    rows: int = 0
    new: int = 0
    duplicates: int = 0       # a key already labelled with the same label (this file or before)
    conflicts: int = 0        # a key already labelled with another label: the first kept
    unparsable: int = 0
    unknown: int = 0          # labels (of this file) no logged prediction has yet
    # request-id labels (of this file) whose request held several instances: one outcome
    # cannot be each instance's, so they join none (--key joins per instance)
    ambiguous: int = 0
    joined: int = 0           # labelled predictions in the store after this feed
    predictions_read: int = 0

    def line(self) -> str:
        return (f"{self.rows} rows: {self.new} new labels, {self.duplicates} duplicates, {self.conflicts} conflicts "
                f"(first label kept), {self.unparsable} unparsable, {self.unknown} with no logged prediction yet, "
                f"{self.ambiguous} for requests of several instances (not joined: use --key); "
                f"{self.joined} labelled predictions in all")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# ---- the log side -------------------------------------------------------------------
def _first(feature):
    kind = feature.WhichOneof("kind")
    values = getattr(feature, kind).value if kind else []
    if not values:
        return None
    value = values[0]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def canonical(value) -> Optional[str]:
    """A feature value written as a label file would: integers without ".0", floats as the
    float32 the tf.Example holds, strings as they are."""
    if value is None:
        return None
    if isinstance(value, float):
        import numpy as np

        as_float32 = np.float32(value)
        return str(int(as_float32)) if float(as_float32).is_integer() else str(as_float32)
    return str(value)


def prediction_row(serialized: bytes, key_name: Optional[str]) -> Optional[tuple]:
    """(request_id, version, track, predicted, timestamp_ms, latency_ms, status, key value)
    of one logged tf.Example, None without a request id (it cannot be joined).
    The predicted class is the `classes` output of a classifier (kubetfx's Trainer: the
    argmax of `probabilities` named by the label vocabulary), or the single `prediction`."""
    from tensorflow.core.example import example_pb2

    feature = example_pb2.Example.FromString(serialized).features.feature
    request_id = _first(feature[REQUEST_ID]) if REQUEST_ID in feature else None
    if not request_id or "model_version" not in feature:
        return None
    if "prediction_classes" in feature:
        predicted = _first(feature["prediction_classes"])
    elif "prediction" in feature:
        predicted = canonical(_first(feature["prediction"]))
    else:
        predicted = None
    def optional(name):
        return _first(feature[name]) if name in feature else None
    key_value = canonical(optional(key_name)) if key_name else None
    return (request_id, int(_first(feature["model_version"])), optional("track") or None, predicted,
            int(optional("timestamp_ms") or 0), optional("latency_ms"), optional("status_code"), key_value)


def read_log(db: sqlite3.Connection, log_directory, key_name: Optional[str] = None) -> int:
    """Adds the log's instances not yet in `predictions`; returns how many instances were read.
    Instances of one request are told apart by their order in it (they are written in order).
    A closed shard is read once (per --key): it never changes, and re-reading the whole log
    at every feedback and `rollout --auto` took 40 s for the default 128 MiB of shards."""
    from kubetfx.pipelines.serving import inference_log

    done = {name: (size, key, last) for name, size, key, *last in
            db.execute("SELECT name, size, key_name, last_request, last_idx FROM read_shards")}
    read, batch, seen = 0, [], {}
    shards = inference_log.shards(log_directory)
    for shard in shards:
        closed = not shard.name.endswith(inference_log.OPEN_SUFFIX)
        size = _file_size(shard)
        known = done.get(shard.name)
        if closed and known is not None and known[0] == size and key_name in (None, known[1]):
            seen = {known[2][0]: known[2][1]} if known[2][0] is not None else {}
            continue
        for serialized in inference_log.read_shard(shard):
            row = prediction_row(serialized, key_name)
            if row is None:
                continue
            read += 1
            # a request's instances are consecutive (a request split across shards continues
            # in the next one): the index restarts per request
            idx = seen[row[0]] + 1 if row[0] in seen else 0
            seen = {row[0]: idx}
            batch.append((row[0], idx, *row[1:7], key_name, row[7]))
            if len(batch) >= BATCH:
                _insert_predictions(db, batch)
                batch = []
        if closed and size is not None:
            last = next(iter(seen.items()), (None, None))
            _insert_predictions(db, batch)
            batch = []
            db.execute("INSERT OR REPLACE INTO read_shards VALUES (?, ?, ?, ?, ?)",
                       (shard.name, size, key_name if key_name is not None else (known or (0, None))[1], *last))
    _insert_predictions(db, batch)
    names = {shard.name for shard in shards}
    gone = [(name,) for name in done if name not in names]  # deleted by the log's retention
    db.executemany("DELETE FROM read_shards WHERE name = ?", gone)
    _prune(db, "predictions", "timestamp_ms")
    db.commit()
    return read


def _file_size(path) -> Optional[int]:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return None


def _insert_predictions(db, rows) -> None:
    # A row read before without this key name gets it now (another --key, same log).
    db.executemany(
        "INSERT INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id, idx) DO UPDATE "
        "SET key_name = excluded.key_name, key_value = excluded.key_value WHERE excluded.key_name IS NOT NULL",
        rows)


def _prune(db, table: str, order: str) -> None:
    (count,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    if count > MAX_ROWS:
        db.execute(f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} ORDER BY {order} LIMIT ?)",
                   (count - MAX_ROWS,))


# ---- the label side -----------------------------------------------------------------
def parse_label(text: Optional[str], task: str) -> Optional[str]:
    """The label as stored, or None when it cannot be one."""
    if text is None:
        return None
    text = text.strip()
    if not text or len(text) > MAX_FIELD_CHARS:
        return None
    if task == "regression":
        try:
            value = float(text)
        except ValueError:
            return None
        return repr(value) if math.isfinite(value) else None
    return text


def _rows(path) -> Iterable[dict]:
    csv.field_size_limit(4 * MAX_FIELD_CHARS)  # a longer field is an error, not a memory bill
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
            reader = csv.DictReader(f)
            yield from reader
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"cannot read labels {path}: {' '.join(str(err).split())}") from None


def columns_of(path) -> list:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:  # utf-8-sig: a spreadsheet's byte-order mark is not part of the first column's name
            return next(csv.reader(io.StringIO(f.readline())), [])
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise ConfigError(f"cannot read labels {path}: {' '.join(str(err).split())}") from None


def add_labels(db: sqlite3.Connection, path, task: str, key: Optional[str] = None,
               label_column: str = "label") -> FeedbackCounts:
    """Stores the file's labels (first label per key wins) and counts what it met."""
    key_column = key or REQUEST_ID
    kind = f"feature:{key}" if key else REQUEST_ID
    header = columns_of(path)
    missing = [c for c in (key_column, label_column) if c not in header]
    if missing:
        raise ConfigError(f"labels {path} has no column {', '.join(missing)} (columns: {', '.join(header) or 'none'}); "
                          f"expected {key_column},{label_column}" + ("" if key else " or --key COLUMN"))
    counts = FeedbackCounts()
    db.execute("CREATE TEMP TABLE IF NOT EXISTS fed (key TEXT PRIMARY KEY)")
    db.execute("DELETE FROM fed")
    batch = []
    for row in _rows(path):
        counts.rows += 1
        key_value, label = (row.get(key_column) or "").strip(), parse_label(row.get(label_column), task)
        if not key_value or len(key_value) > MAX_FIELD_CHARS or label is None:
            counts.unparsable += 1
            continue
        batch.append((key_value, label))
        if len(batch) >= BATCH:
            _add_batch(db, kind, batch, counts)
            batch = []
    _add_batch(db, kind, batch, counts)
    _prune(db, "labels", "rowid")
    column = "request_id" if kind == REQUEST_ID else "key_value"
    where = "" if kind == REQUEST_ID else " AND p.key_name = ?"
    (counts.unknown,) = db.execute(
        f"SELECT COUNT(*) FROM fed f WHERE NOT EXISTS (SELECT 1 FROM predictions p WHERE p.{column} = f.key{where})",
        () if kind == REQUEST_ID else (key,)).fetchone()
    if kind == REQUEST_ID:
        (counts.ambiguous,) = db.execute(
            "SELECT COUNT(*) FROM fed f WHERE EXISTS (SELECT 1 FROM predictions p WHERE p.request_id = f.key AND p.idx > 0)"
        ).fetchone()
    db.commit()
    counts.joined = labelled_count(db)
    return counts


def _add_batch(db, kind: str, batch: list, counts: FeedbackCounts) -> None:
    for key_value, label in batch:
        known = db.execute("SELECT label FROM labels WHERE kind = ? AND key = ?", (kind, key_value)).fetchone()
        if known is None:
            db.execute("INSERT INTO labels VALUES (?, ?, ?)", (kind, key_value, label))
            counts.new += 1
        elif known[0] == label:
            counts.duplicates += 1
        else:
            counts.conflicts += 1
        db.execute("INSERT OR IGNORE INTO fed VALUES (?)", (key_value,))


LABELLED = """
SELECT p.request_id, p.idx, p.version, p.track, p.status, p.predicted, p.timestamp_ms, l.label
FROM predictions p JOIN labels l ON l.kind = 'request_id' AND l.key = p.request_id
WHERE NOT EXISTS (SELECT 1 FROM predictions q WHERE q.request_id = p.request_id AND q.idx > 0)
UNION
SELECT p.request_id, p.idx, p.version, p.track, p.status, p.predicted, p.timestamp_ms, l.label
FROM predictions p JOIN labels l ON l.kind = 'feature:' || p.key_name AND l.key = p.key_value
"""


def labelled_count(db) -> int:
    (count,) = db.execute(f"SELECT COUNT(*) FROM ({LABELLED})").fetchone()
    return count


def task_of(config: PipelineConfig) -> str:
    """classification or regression: the config's, else the served version's training summary."""
    if config.task:
        return config.task
    from kubetfx.components.pusher import training_summary
    from kubetfx.pipelines.record import pushed_models

    served = pushed_models.served_version(config.serving_dir)
    record = training_summary.read_record(str(config.serving_dir / served)) if served else None
    return (record or {}).get("task") or "classification"


def feed(config: PipelineConfig, labels_path, key: Optional[str] = None, log_directory=None) -> FeedbackCounts:
    """Reads the inference log, then the labels; the joined store is the result."""
    from kubetfx.pipelines.serving import inference_log

    if not os.path.isfile(labels_path):
        raise ConfigError(f"labels {labels_path} is not a file")
    db = connect(db_path(config))
    try:
        read = read_log(db, log_directory or inference_log.log_dir(config), key)
        counts = add_labels(db, labels_path, task_of(config), key)
        counts.predictions_read = read
        return counts
    finally:
        db.close()


def add_parser(subparsers) -> None:
    import argparse

    parser = subparsers.add_parser(
        "feedback", help="join outcomes that arrived later (request_id,label CSV) with the logged predictions",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  kubetfx feedback labels.csv                      # request_id,label: the X-Request-Id each answer carried
  kubetfx feedback churn.csv --key customer_id     # customer_id,label joined on that logged feature
  kubetfx feedback labels.csv --json               # the counts for scripts (same file twice: nothing new)
""")
    parser.add_argument("labels", help="CSV with columns request_id,label (or --key COLUMN,label)")
    parser.add_argument("--key", metavar="COLUMN",
                        help="join on this logged request feature (e.g. customer_id) instead of the request id")
    parser.add_argument("--name", help="pipeline name (default: kubetfx-penguin)")
    parser.add_argument("--home", help="where runs write (default: $KUBETFX_HOME or ./.kubetfx)")
    parser.add_argument("--logs", metavar="DIR", help="inference log folder (default: the home's)")
    parser.add_argument("--json", action="store_true", help="the counts as JSON")
    parser.set_defaults(func=main)


def main(args) -> int:
    import json

    from kubetfx.pipelines import exit_codes
    from kubetfx.pipelines.config import resolve_home

    config = PipelineConfig(home=resolve_home(args.home), name=args.name or PipelineConfig.name).validate()
    counts = feed(config, args.labels, args.key, args.logs)
    if args.json:
        print(json.dumps({"pipeline": config.name, "store": str(db_path(config)), **counts.to_dict()}, indent=2))
    else:
        print(f"kubetfx: feedback for {config.name}: {counts.line()} ({db_path(config)})")
    return exit_codes.OK
