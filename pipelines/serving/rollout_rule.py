"""The rule that moves a staged rollout: advance, abort or wait, from each track's live
figures (live_evaluation.py) and the config's `rollout:` section. Pure functions, so the
boundaries can be tested exactly and `kubetfx rollout --auto`, a CronJob and a loop all
decide the same way.

The statistics. The metric comparison is a one-sided bound on the difference
candidate - stable (signed so that positive means the candidate is better):
- classification (accuracy, a proportion): Newcombe's hybrid score interval for a
  difference of independent proportions (Newcombe 1998, "Interval estimation for the
  difference between independent proportions", method 10), built from each track's Wilson
  score interval; each one-sided bound at the config's `confidence` (z = the normal
  quantile of `confidence`, 1.645 for 0.95). Wilson's interval stays inside [0, 1] and
  keeps its coverage near 0 and 1, where accurate models live; the normal (Wald)
  interval does not.
- regression (mean absolute error): Welch's normal interval for a difference of means of
  the absolute errors (each track's own variance), stable - candidate.
Advance when both tracks have at least `min_samples` labelled requests at this step and
the lower bound > -max_metric_loss; abort when the upper bound < -max_metric_loss (the
candidate is worse by more than allowed, at that confidence) or a budget is broken; else
wait. Fewer than `min_samples` labelled requests on either track never decide on the
metric; a budget decides only once the candidate answered `min_samples` requests, and an
error rate only when its Wilson lower bound exceeds `max_error_rate` (a few unlucky
errors are not a breach)."""
from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from typing import Optional

ADVANCE, ABORT, WAIT = "advance", "abort", "wait"


def z_for(confidence: float) -> float:
    """The one-sided normal quantile: P(Z <= z) = confidence."""
    return NormalDist().inv_cdf(confidence)


def wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion; (0, 1) for n = 0 (nothing is known)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(s1: int, n1: int, s2: int, n2: int, z: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval (method 10) for p1 - p2."""
    p1, p2 = s1 / n1, s2 / n2
    l1, u1 = wilson(s1, n1, z)
    l2, u2 = wilson(s2, n2, z)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


def welch(mean1: float, var1: float, n1: int, mean2: float, var2: float, n2: int, z: float) -> tuple[float, float]:
    """Normal interval for mean1 - mean2 with each sample's own variance."""
    d = mean1 - mean2
    half = z * math.sqrt(var1 / n1 + var2 / n2)
    return d - half, d + half


@dataclasses.dataclass
class TrackFigures:
    """What the rule reads of one track at the current step (live_evaluation fills it)."""
    track: str
    version: Optional[int]
    requests: int = 0            # answered with a prediction (200) and logged; errors apart
    errors: Optional[int] = None  # non-200 answers; None when nothing records them
    labelled: int = 0            # requests with an outcome fed back
    correct: int = 0             # classification: prediction == label
    abs_error_sum: float = 0.0   # regression: sum of |prediction - label|
    abs_error_sumsq: float = 0.0
    latency_p99_ms: Optional[float] = None
    metric: Optional[float] = None  # accuracy or MAE on the labelled requests
    predicted: dict = dataclasses.field(default_factory=dict)  # {class or bin: count}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Decision:
    action: str                              # advance | abort | wait
    reasons: list
    difference: Optional[float] = None       # candidate - stable, positive = candidate better
    lower: Optional[float] = None
    upper: Optional[float] = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def metric_bounds(stable: TrackFigures, candidate: TrackFigures, task: str, z: float) -> tuple[float, float, float]:
    """(difference, lower, upper) of the candidate's improvement over stable."""
    if task == "regression":
        def moments(t):
            mean = t.abs_error_sum / t.labelled
            var = max(0.0, t.abs_error_sumsq / t.labelled - mean * mean) * t.labelled / max(1, t.labelled - 1)
            return mean, var
        ms, vs = moments(stable)
        mc, vc = moments(candidate)
        low, high = welch(ms, vs, stable.labelled, mc, vc, candidate.labelled, z)
        return ms - mc, low, high
    low, high = newcombe(candidate.correct, candidate.labelled, stable.correct, stable.labelled, z)
    return candidate.correct / candidate.labelled - stable.correct / stable.labelled, low, high


def decide_on_bounds(lower: float, upper: float, max_metric_loss: float) -> str:
    """The metric part alone: strict inequalities, so a bound exactly at -max_metric_loss waits."""
    if upper < -max_metric_loss:
        return ABORT
    if lower > -max_metric_loss:
        return ADVANCE
    return WAIT


def broken_budgets(candidate: TrackFigures, rule, z: float) -> list:
    """Reasons the candidate breaks its error or latency budget (decided only on
    min_samples answered requests, its failed answers included: a candidate that fails
    every call has no successful request, and must not wait for one forever)."""
    total = candidate.requests + (candidate.errors or 0)
    if total < rule.min_samples:
        return []
    broken = []
    if candidate.errors is not None:
        low, _ = wilson(candidate.errors, total, z)
        if low > rule.max_error_rate:
            broken.append(f"error rate {candidate.errors / total:.3%} (lower bound {low:.3%}) over the "
                          f"{rule.max_error_rate:.3%} budget")
    if rule.max_latency_p99_ms is not None and candidate.latency_p99_ms is not None \
            and candidate.latency_p99_ms > rule.max_latency_p99_ms:
        broken.append(f"latency p99 {candidate.latency_p99_ms:.1f} ms over the {rule.max_latency_p99_ms:g} ms budget")
    return broken


def decide(stable: TrackFigures, candidate: TrackFigures, rule, task: str) -> Decision:
    """advance, abort or wait for one step; `rule` is a RolloutConfig."""
    z = z_for(rule.confidence)
    broken = broken_budgets(candidate, rule, z)
    short = [f"{t.track} has {t.labelled} labelled requests at this step, needs {rule.min_samples}"
             for t in (stable, candidate) if t.labelled < rule.min_samples]
    if short:
        return Decision(ABORT, broken) if broken else Decision(WAIT, short)
    difference, lower, upper = metric_bounds(stable, candidate, task, z)
    metric = "MAE" if task == "regression" else "accuracy"
    span = (f"candidate - stable {metric} improvement {difference:+.4f}, {rule.confidence:.0%} one-sided bounds "
            f"[{lower:+.4f}, {upper:+.4f}], allowed loss {rule.max_metric_loss:g}")
    action = decide_on_bounds(lower, upper, rule.max_metric_loss)
    if broken:
        return Decision(ABORT, broken + [span], difference, lower, upper)
    why = {ADVANCE: "the candidate is no worse than allowed: " + span,
           ABORT: "the candidate is worse than allowed: " + span,
           WAIT: "not yet conclusive: " + span}[action]
    return Decision(action, [why], difference, lower, upper)


def jensen_shannon(p: dict, q: dict) -> Optional[float]:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count histograms; None
    when either is empty."""
    total_p, total_q = sum(p.values()), sum(q.values())
    if not total_p or not total_q:
        return None
    divergence = 0.0
    for key in set(p) | set(q):
        a, b = p.get(key, 0) / total_p, q.get(key, 0) / total_q
        m = (a + b) / 2
        divergence += (a * math.log2(a / m) if a else 0.0) / 2 + (b * math.log2(b / m) if b else 0.0) / 2
    return math.sqrt(max(0.0, divergence))
