"""TFX 1.16's Evaluator executor tests (tfx/components/evaluator/executor_test.py, on TFX's
taxi test data and models shipped in the wheel) against kubetfx's Evaluator executor.
Every one of their configs (slices, ExampleCount, a module file, a model-agnostic spec)
is one ours hands to TFMA unchanged: these tests pin that hand-over and what it writes;
executor_test.py beside the executor compares the fast path with TFMA's."""
from __future__ import annotations

import pytest
from tfx.components.evaluator import executor_test as tfx_tests

from kubetfx.components.evaluator.executor import Executor
from tfx_contract.swap import swap_executor

pytestmark = pytest.mark.slow  # TFMA Beam pipelines on TFX's estimator models


class TestEvaluatorContract(tfx_tests.ExecutorTest):

    @pytest.fixture(autouse=True)
    def _ours(self, monkeypatch):
        swap_executor(monkeypatch, tfx_tests, Executor=Executor)
