"""TFX 1.16's Pusher executor tests (tfx/components/pusher/executor_test.py) against
AtomicPusherExecutor: as it is (the blessing rule differs on purpose), then with TFX's
blessing rule put back, so every TFX assertion on what a push writes (serving copy, the
PushedModel copy and properties, Keras and InfraBlessing model paths) checks our
publishing, on a local path and on an object store (ram://, TF's in-memory filesystem,
which like gs:// has no directory rename)."""
from __future__ import annotations

import json
import uuid

import pytest
from tfx.components.pusher import executor_test as tfx_tests
from tfx.dsl.io import fileio

from tfx.components.pusher import executor as tfx_pusher

from kubetfx.components.pusher.executor import AtomicPusherExecutor
from tfx_contract.swap import expected_failure, swap_executor

BOTH_BLESSINGS = ("kubetfx pushes only with both blessings, ModelBlessing and InfraBlessing (a model the "
                  "InfraValidator did not load in a model server is never served); TFX pushes with either or none")
NO_INPUT_CHECK = ("with no blessing input kubetfx refuses to push before looking for a model, so it does not "
                  "raise TFX's error about the missing model; TFX's Pusher component rejects that graph anyway")


class TestPusherContract(tfx_tests.ExecutorTest):

    @pytest.fixture(autouse=True)
    def _ours(self, monkeypatch):
        swap_executor(monkeypatch, tfx_tests, Executor=AtomicPusherExecutor)

    testDoBlessed = expected_failure(tfx_tests.ExecutorTest, "testDoBlessed", BOTH_BLESSINGS)
    testDo_NoModelBlessing_InfraBlessed_Pushed = expected_failure(
        tfx_tests.ExecutorTest, "testDo_NoModelBlessing_InfraBlessed_Pushed", BOTH_BLESSINGS)
    testDo_KerasModelPath = expected_failure(tfx_tests.ExecutorTest, "testDo_KerasModelPath", BOTH_BLESSINGS)
    testDo_NoBlessing = expected_failure(tfx_tests.ExecutorTest, "testDo_NoBlessing", BOTH_BLESSINGS)
    testDo_InfraBlessingAsModel = expected_failure(
        tfx_tests.ExecutorTest, "testDo_InfraBlessingAsModel", BOTH_BLESSINGS)
    testDo_InfraBlessingAsModel_FailIfNoWarmup = expected_failure(
        tfx_tests.ExecutorTest, "testDo_InfraBlessingAsModel_FailIfNoWarmup", BOTH_BLESSINGS)
    testDo_NoModel = expected_failure(tfx_tests.ExecutorTest, "testDo_NoModel", NO_INPUT_CHECK)


class _PublishingWithTfxBlessingRule(AtomicPusherExecutor):
    CheckBlessing = tfx_pusher.Executor.CheckBlessing


class TestPusherPublishingContract(tfx_tests.ExecutorTest):

    @pytest.fixture(autouse=True)
    def _ours(self, monkeypatch):
        swap_executor(monkeypatch, tfx_tests, Executor=_PublishingWithTfxBlessingRule)


class TestPusherPublishingContractOnObjectStore(TestPusherPublishingContract):

    def setUp(self):
        super().setUp()
        self._serving_model_dir = f"ram://kubetfx-{uuid.uuid4().hex}/serving_model_dir"
        fileio.makedirs(self._serving_model_dir)
        self._exec_properties = self._MakeExecProperties()
        assert json.loads(self._exec_properties["push_destination"])["filesystem"]["base_directory"].startswith("ram://")
