"""Retries of a failed task, as the emulated KFP version asks Argo to do them.

KFP compiles a task's `retryPolicy` into Argo's `retryStrategy` on the executor template
from 2.4.1 on (KFP 2.4.1 and 2.5.0 backend/src/v2/compiler/argocompiler/container.go
getTaskRetryStrategy; absent at 2.4.0, where a failed task is not retried):
  limit = maxRetryCount; backoff.duration = backoffDuration's whole seconds;
  backoff.factor = int32(backoffFactor) (the float is truncated: 1.5 -> 1);
  backoff.maxDuration = backoffMaxDuration's whole seconds.
Argo (v3.4.17 in KFP 2.4.1, v3.5.14 in 2.5.0; workflow/controller/operator.go
processNodeRetries) then waits duration * factor^(attempts so far - 1) after a failed
attempt (factor <= 0: no growth), gives up when the first attempt started more than
maxDuration ago or when the next wait would end past that deadline, and with the default
retryPolicy (OnFailure) retries every failed attempt, whatever its cause. A retry pod also
gets that deadline (operator.go `opts.executionDeadline = maxDurationDeadline`,
workflowpod.go getDeadline -> ARGO_DEADLINE), where the executor kills it: with maxDuration
set, a retry must *end* within maxDuration of the first attempt's start. The first attempt
has no such deadline; without maxDuration no attempt has one.

On one machine the waits can be scaled by an explicit factor (`--retry-backoff-scale`,
default 1: the spec's backoff as Argo applies it); the scale is printed with every wait.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from kubetfx.pipelines.kubeflow.local_backend.versions import KfpVersion


@dataclasses.dataclass(frozen=True)
class RetryStrategy:
    limit: int = 0                       # retries after the first attempt
    duration: int = 0                    # seconds before the first retry
    factor: int = 0
    max_duration: Optional[int] = None   # seconds from the first attempt's start

    def wait_before_retry(self, attempts_so_far: int) -> float:
        """Seconds to wait after `attempts_so_far` failed attempts (1 for the first retry)."""
        if self.factor > 0:
            return float(self.duration * self.factor ** (attempts_so_far - 1))
        return float(self.duration)

    def retry_deadline(self, attempt_number: int, first_started: float) -> Optional[float]:
        """When attempt `attempt_number` (1: the first) is killed, or None: never by Argo."""
        if attempt_number <= 1 or self.max_duration is None:
            return None
        return first_started + self.max_duration

    def next_wait(self, attempts_so_far: int, first_started: float, last_finished: float) -> Optional[float]:
        """The wait before the next attempt, or None when Argo would stop retrying."""
        if attempts_so_far > self.limit:
            return None
        wait = self.wait_before_retry(attempts_so_far)
        if self.max_duration is not None:
            deadline = first_started + self.max_duration
            if last_finished > deadline or last_finished + wait > deadline:
                return None
        return wait


def _seconds(duration: Optional[str]) -> Optional[int]:
    """protobuf Duration JSON ('30s', '1.5s') -> whole seconds, as Go's `.Seconds` field."""
    if duration is None:
        return None
    return int(float(str(duration).rstrip("s")))


def strategy_for(task: dict, version: KfpVersion) -> RetryStrategy:
    policy = task.get("retryPolicy")
    if not version.retries or not policy:
        return RetryStrategy()
    return RetryStrategy(limit=int(policy.get("maxRetryCount", 0)),
                         duration=_seconds(policy.get("backoffDuration")) or 0,
                         factor=int(policy.get("backoffFactor", 0)),
                         max_duration=_seconds(policy.get("backoffMaxDuration")))
