"""The rollout rule at its boundaries: the intervals against published values, exactly
min_samples, a bound exactly at -max_metric_loss, tiny samples that never decide."""
import pytest

from kubetfx.pipelines.config import RolloutConfig
from kubetfx.pipelines.serving import rollout_rule as rule
from kubetfx.pipelines.serving.rollout_rule import TrackFigures

Z95 = 1.959964  # two-sided 95%, as Newcombe (1998) tabulates


def test_wilson_and_newcombe_match_the_published_examples():
    # Newcombe 1998, Statistics in Medicine 17:873, table II, method 10.
    assert rule.newcombe(56, 70, 48, 80, Z95) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    assert rule.newcombe(9, 10, 3, 10, Z95) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    # Newcombe 1998, Statistics in Medicine 17:857, table I: 81/263.
    assert rule.wilson(81, 263, Z95) == pytest.approx((0.2553, 0.3662), abs=1e-4)
    assert rule.z_for(0.95) == pytest.approx(1.6449, abs=1e-4)


def _tracks(stable, candidate, requests=None):
    (sc, sn), (cc, cn) = stable, candidate
    return (TrackFigures("stable", 1, requests or sn, None, sn, sc),
            TrackFigures("candidate", 2, requests or cn, None, cn, cc))


def test_exactly_min_samples_decides_and_one_fewer_waits():
    config = RolloutConfig(min_samples=200, max_metric_loss=0.02)
    stable, candidate = _tracks((190, 200), (190, 200))
    assert rule.decide(stable, candidate, config, "classification").action == rule.WAIT  # equal, too wide
    stable, candidate = _tracks((200, 200), (200, 200))
    decision = rule.decide(stable, candidate, config, "classification")
    assert decision.action == rule.ADVANCE and decision.lower > -0.02
    stable, candidate = _tracks((199, 199), (200, 200))
    decision = rule.decide(stable, candidate, config, "classification")
    assert decision.action == rule.WAIT and "needs 200" in decision.reasons[0]


def test_tiny_samples_never_decide_however_lopsided():
    config = RolloutConfig(min_samples=50)
    for stable, candidate in (((49, 49), (0, 49)), ((0, 10), (10, 10)), ((1, 1), (0, 1))):
        assert rule.decide(*_tracks(stable, candidate), config, "classification").action == rule.WAIT


def test_a_bound_exactly_at_the_allowed_loss_waits():
    assert rule.decide_on_bounds(-0.02, 0.01, 0.02) == rule.WAIT
    assert rule.decide_on_bounds(-0.0199999, 0.01, 0.02) == rule.ADVANCE
    assert rule.decide_on_bounds(-0.3, -0.02, 0.02) == rule.WAIT
    assert rule.decide_on_bounds(-0.3, -0.0200001, 0.02) == rule.ABORT


def test_a_clearly_worse_candidate_is_aborted_and_a_close_one_waits():
    config = RolloutConfig(min_samples=100, max_metric_loss=0.02)
    decision = rule.decide(*_tracks((97, 100), (40, 100)), config, "classification")
    assert decision.action == rule.ABORT and decision.upper < -0.02
    decision = rule.decide(*_tracks((97, 100), (95, 100)), config, "classification")
    assert decision.action == rule.WAIT and decision.lower < -0.02 < decision.upper


def test_regression_compares_mean_absolute_errors():
    config = RolloutConfig(min_samples=100, max_metric_loss=0.5)
    # MAE 1.0 on both (every error 1): no spread, the difference is exact
    same = dict(labelled=100, abs_error_sum=100.0, abs_error_sumsq=100.0)
    worse = dict(labelled=100, abs_error_sum=200.0, abs_error_sumsq=400.0)
    stable = TrackFigures("stable", 1, 100, **same)
    assert rule.decide(stable, TrackFigures("candidate", 2, 100, **same), config, "regression").action == rule.ADVANCE
    decision = rule.decide(stable, TrackFigures("candidate", 2, 100, **worse), config, "regression")
    assert decision.action == rule.ABORT and decision.difference == pytest.approx(-1.0)


def test_error_budget_aborts_only_on_enough_requests_and_a_lower_bound_over_it():
    config = RolloutConfig(min_samples=100, max_error_rate=0.01)
    stable = TrackFigures("stable", 1, 100, 0)
    few = TrackFigures("candidate", 2, 49, errors=50)  # 99 answers, failed ones included
    assert rule.decide(stable, few, config, "classification").action == rule.WAIT
    many = TrackFigures("candidate", 2, 100, errors=20)
    decision = rule.decide(stable, many, config, "classification")
    assert decision.action == rule.ABORT and "error rate" in decision.reasons[0]
    # 2 errors in 200: 1% observed, but the lower bound is below the budget
    assert rule.broken_budgets(TrackFigures("candidate", 2, 198, errors=2), config, rule.z_for(0.95)) == []


def test_latency_budget():
    config = RolloutConfig(min_samples=10, max_latency_p99_ms=50)
    assert rule.broken_budgets(TrackFigures("candidate", 2, 10, latency_p99_ms=51), config, 1.6)
    assert not rule.broken_budgets(TrackFigures("candidate", 2, 10, latency_p99_ms=50), config, 1.6)


def test_jensen_shannon_distance():
    assert rule.jensen_shannon({"a": 5}, {"a": 9}) == 0.0
    assert rule.jensen_shannon({"a": 5}, {"b": 9}) == pytest.approx(1.0)
    assert rule.jensen_shannon({"a": 1}, {}) is None


def test_a_candidate_that_fails_every_call_is_aborted_not_left_waiting():
    """A candidate that crashes on every request has no successful answer and so no label:
    its error budget is judged on every answer it gave (min_samples of them), failed ones
    included. Before, the budget waited for min_samples *successful* requests, so 5% of
    callers met 500s for as long as the rollout ran, the rule saying `wait`."""
    config = RolloutConfig(min_samples=100, max_error_rate=0.01)
    stable = TrackFigures("stable", 1, 300, 0, labelled=300, correct=290)
    crashing = TrackFigures("candidate", 2, requests=0, errors=100)
    decision = rule.decide(stable, crashing, config, "classification")
    assert decision.action == rule.ABORT and "error rate 100.000%" in decision.reasons[0]
    assert rule.decide(stable, TrackFigures("candidate", 2, 0, errors=99), config, "classification").action == rule.WAIT
