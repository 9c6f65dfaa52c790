"""The compiled spec's retries, as Argo would apply them (local_backend/retry.py reproduces
KFP's argocompiler/container.go and Argo's operator.go): a stage that fails late can still
be retried, and the one deterministic failure (data rejected) costs little."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubetfx.pipelines.kubeflow.local_backend import retry, versions

GOLDEN = Path(__file__).parent.parent / "testdata" / "kubetfx-penguin.golden.yaml"
KFP_2_5 = versions.parse("2.5")


@pytest.fixture(scope="module")
def tasks():
    return next(yaml.safe_load_all(GOLDEN.read_text()))["root"]["dag"]["tasks"]


def test_a_stage_that_fails_after_twenty_minutes_is_still_retried(tasks):
    # Before: backoffMaxDuration 300s, so Argo gave up once the first attempt had started
    # more than five minutes ago (operator.go processNodeRetries: "Max duration limit exceeded").
    started, failed = 1000.0, 1000.0 + 20 * 60
    for name in ("Transform", "Trainer", "Evaluator", "CsvExampleGen"):
        strategy = retry.strategy_for(tasks[name], KFP_2_5)
        assert strategy.max_duration is None, name
        assert strategy.next_wait(1, started, failed) == 30.0, name
        assert strategy.next_wait(2, started, failed + 3600) == 60.0, name  # the second retry too
        assert strategy.next_wait(3, started, failed) is None, name          # then the count ends
        assert strategy.retry_deadline(2, started) is None, name            # no ARGO_DEADLINE on the retry pod


def test_every_retried_task_has_no_max_duration(tasks):
    for name, task in tasks.items():
        assert "backoffMaxDuration" not in task.get("retryPolicy", {}), name


def test_a_rejection_of_the_data_is_retried_once_after_ten_seconds(tasks):
    strategy = retry.strategy_for(tasks["ExampleValidator"], KFP_2_5)
    assert (strategy.limit, strategy.duration) == (1, 10)
    assert strategy.next_wait(1, 0.0, 5.0) == 10.0 and strategy.next_wait(2, 0.0, 30.0) is None


def test_with_a_max_duration_a_retry_pod_must_end_within_it_of_the_first_start():
    # What the old policy did (workflowpod.go getDeadline: ARGO_DEADLINE = first start + maxDuration).
    strategy = retry.strategy_for({"retryPolicy": {"maxRetryCount": 2, "backoffDuration": "30s",
                                                   "backoffFactor": 2.0, "backoffMaxDuration": "300s"}}, KFP_2_5)
    assert strategy.retry_deadline(1, 1000.0) is None          # the first attempt has none
    assert strategy.retry_deadline(2, 1000.0) == 1300.0
    assert strategy.next_wait(1, 1000.0, 1000.0 + 301) is None  # failed after 5 min: never retried
