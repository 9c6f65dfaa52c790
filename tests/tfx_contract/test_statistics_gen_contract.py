"""TFX 1.16's StatisticsGen executor tests (tfx/components/statistics_gen/executor_test.py)
against kubetfx's executor: the default options go through its Beam-less path (split
names, span, dashboard link, sample-rate property, the stats file, excluded splits), the
others (sampling, a schema, stats options, sharded output, custom split patterns) through
the stock executor it hands them to."""
from __future__ import annotations

import pytest
from tfx.components.statistics_gen import executor_test as tfx_tests

from kubetfx.components.statistics_gen.executor import Executor
from tfx_contract.swap import swap_executor


class TestStatisticsGenContract(tfx_tests.ExecutorTest):

    @pytest.fixture(autouse=True)
    def _ours(self, monkeypatch):
        swap_executor(monkeypatch, tfx_tests, Executor=Executor)
