"""Live evaluation of a staged rollout: each track's figures at the current step, from the
feedback store (feedback.py: logged predictions joined with outcomes), for the rule
(rollout_rule.py) and `kubetfx rollout status`.

The metric is the Evaluator's gate metric computed the way TFMA computed it offline
(components/evaluator/component.py; no slices, every example weighted 1):
- classification, SparseCategoricalAccuracy: the share of labelled requests whose argmax
  class equals the label. kubetfx's Trainer logs `classes` = the label vocabulary's entry
  at argmax(probabilities), and TFMA compares argmax(probabilities) with the label's
  vocabulary id, so "logged class == label text" is the same test without the vocabulary;
- regression, MeanAbsoluteError: the mean of |prediction - label|.
TFMA itself is not run here: on these two metrics it adds seconds of Beam start-up per
evaluation and would compute the same sums.

Besides: requests per track, the predicted-class distribution and its Jensen-Shannon
distance between tracks (regression: 10 equal bins over both tracks' range), and the error
rate and 99th percentile latency when the log carries `status_code` and `latency_ms`
(the model server logs answered requests only today: then they are None and not judged).
A step's figures count requests that arrived since the step began (the state's
`step_started`, else `updated`). A failed answer (a non-200 status; for regression also a
prediction that is not a finite number, e.g. a candidate answering NaN) counts in the error
rate only, never in the metric or the distributions."""
from __future__ import annotations

import datetime
import sqlite3
from typing import Optional

from kubetfx.pipelines.serving import feedback
from kubetfx.pipelines.serving.rollout_rule import TrackFigures, jensen_shannon

BINS = 10
# How feedback.canonical writes a float32 that is not finite (str of numpy's float32).
NOT_FINITE = "('nan', 'inf', '-inf')"


def step_started_ms(state) -> int:
    text = state.extra.get("step_started") or state.updated or state.started
    if not text:
        return 0
    return int(datetime.datetime.fromisoformat(text).timestamp() * 1000)


def _track_filter(track: str) -> str:
    # The log's `track` where written; older records (no track) by their version.
    return "(p.track = :track OR (p.track IS NULL AND p.version = :version)) AND p.version = :version"


def _failed(task: str) -> str:
    """SQL: the record is a failed answer. A non-200 status; for regression also a prediction
    that is not a finite number (a candidate answering NaN): SQLite reads 'nan' as 0.0, so
    such a candidate would otherwise be judged on zeros, and a failed call (no prediction)
    would count in the MAE's n but not its sum."""
    failed = "(p.status IS NOT NULL AND p.status != 200)"
    if task == "regression":
        failed += f" OR COALESCE(p.predicted IN {NOT_FINITE}, 0)"
    return f"({failed})"


def figures(db: sqlite3.Connection, track: str, version: Optional[int], since_ms: int, task: str,
            bins: Optional[tuple] = None) -> TrackFigures:
    result = TrackFigures(track=track, version=version)
    if version is None:
        return result
    args = {"track": track, "version": version, "since": since_ms}
    where = _track_filter(track) + " AND p.timestamp_ms >= :since"
    failed = _failed(task)
    result.requests, errors, logged_status = db.execute(
        f"SELECT COUNT(*), SUM({failed}), COUNT(p.status) FROM predictions p WHERE {where}", args).fetchone()
    result.errors = int(errors or 0) if logged_status or errors else None
    if result.errors is not None:
        result.requests -= result.errors
    (latencies,) = db.execute(f"SELECT COUNT(p.latency_ms) FROM predictions p WHERE {where}", args).fetchone()
    if latencies:
        (result.latency_p99_ms,) = db.execute(
            f"SELECT p.latency_ms FROM predictions p WHERE {where} AND p.latency_ms IS NOT NULL "
            f"ORDER BY p.latency_ms LIMIT 1 OFFSET :offset", {**args, "offset": int(0.99 * (latencies - 1))}).fetchone()
    answered = f"{where} AND p.predicted IS NOT NULL AND NOT {failed}"  # the metric: answers, not failures
    labelled = f"SELECT * FROM ({feedback.LABELLED}) p WHERE {answered}"
    if task == "regression":
        n, total, squares = db.execute(
            f"SELECT COUNT(*), SUM(ABS(CAST(predicted AS REAL) - CAST(label AS REAL))), "
            f"SUM((CAST(predicted AS REAL) - CAST(label AS REAL)) * (CAST(predicted AS REAL) - CAST(label AS REAL))) "
            f"FROM ({labelled})", args).fetchone()
        result.labelled, result.abs_error_sum, result.abs_error_sumsq = n, float(total or 0), float(squares or 0)
        result.metric = result.abs_error_sum / n if n else None
        if bins is not None:
            low, width = bins
            rows = db.execute(f"SELECT MIN(:bins - 1, MAX(0, CAST((CAST(p.predicted AS REAL) - :low) / :width AS INTEGER))), "
                              f"COUNT(*) FROM predictions p WHERE {answered} GROUP BY 1",
                              {**args, "low": low, "width": width, "bins": BINS}).fetchall()
            result.predicted = {f"bin {b}": c for b, c in rows}
    else:
        n, correct = db.execute(f"SELECT COUNT(*), SUM(predicted = label) FROM ({labelled})", args).fetchone()
        result.labelled, result.correct = n, int(correct or 0)
        result.metric = result.correct / n if n else None
        rows = db.execute(f"SELECT p.predicted, COUNT(*) FROM predictions p WHERE {answered} GROUP BY p.predicted",
                          args).fetchall()
        result.predicted = {str(k): c for k, c in rows}
    return result


def _regression_bins(db, state, since_ms: int) -> Optional[tuple]:
    low, high = db.execute("SELECT MIN(CAST(predicted AS REAL)), MAX(CAST(predicted AS REAL)) FROM predictions "
                           f"WHERE timestamp_ms >= ? AND version IN (?, ?) AND predicted NOT IN {NOT_FINITE} "
                           "AND (status IS NULL OR status = 200)",
                           (since_ms, state.stable, state.candidate if state.candidate is not None else -1)).fetchone()
    if low is None:
        return None
    return low, ((high - low) / BINS) or 1.0


def evaluate(db: sqlite3.Connection, state, task: str) -> dict:
    """{"stable": TrackFigures, "candidate": TrackFigures, "js_distance": float | None, "since_ms": int}."""
    since = step_started_ms(state)
    bins = _regression_bins(db, state, since) if task == "regression" else None
    stable = figures(db, "stable", state.stable, since, task, bins)
    candidate = figures(db, "candidate", state.candidate, since, task, bins)
    return {"stable": stable, "candidate": candidate, "since_ms": since,
            "js_distance": jensen_shannon(stable.predicted, candidate.predicted)}
