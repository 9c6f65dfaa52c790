"""TFX 1.16's InfraValidator executor tests (tfx/components/infra_validator/
executor_test.py) against kubetfx's InfraValidator executor.

TFX's tests drive the executor through its per-attempt method `_ValidateOnce(model_path,
serving_binary, serving_spec, validation_spec, requests)`, replacing it to simulate a
model server that answers, fails, or fails and then answers, and through TFX's serving
binaries and model-server runners. Ours starts its own model server process and has none
of these seams, so every one of them fails on the missing attribute, before asserting
anything: each is marked with what it would check and what ours does instead. Adding the
seam turns them into real checks (strict: the marks then fail and must go)."""
from __future__ import annotations

import pytest
from tfx.components.infra_validator import executor_test as tfx_tests

from kubetfx.components.infra_validator.executor import Executor
from tfx_contract.swap import expected_failure, swap_executor

pytestmark = pytest.mark.slow

NO_SEAM = "kubetfx's InfraValidator has no _ValidateOnce per-attempt method, which TFX's test replaces"
RETRIES = NO_SEAM + " to check {}; ours makes num_tries attempts too, which no test of ours checks"
WARMUP = (NO_SEAM + "; beyond that, ours ignores RequestSpec.make_warmup: no warmup file "
          "(assets.extra/tf_serving_warmup_requests) and no `has_model` model in the InfraBlessing, "
          "so TFX's Pusher cannot push the model from the InfraBlessing")
SERVING_BINARIES = ("kubetfx's InfraValidator runs its own model server process, not TFX's serving binaries "
                    "(serving_bins) and model-server runners (_create_model_server_runner) this test replaces")
# Once the seam exists this test sends SIGTERM to the test process itself: the executor
# must turn it into GracefulShutdown (and stop its model server) or the run dies.
SIGTERM = (NO_SEAM + "; beyond that, ours installs no SIGTERM handler: a run stopped with SIGTERM "
           "during InfraValidator leaves its model server process running (TFX raises GracefulShutdown)")

_EXPECTED = {
    "testDo_BlessedIfNoError": RETRIES.format("INFRA_BLESSED and blessed=1 after one good attempt"),
    "testDo_NotBlessedIfError": RETRIES.format("INFRA_NOT_BLESSED and blessed=0 after failing attempts"),
    "testDo_BlessedIfEventuallyNoError": RETRIES.format("a blessing after two failures out of three tries"),
    "testDo_NotBlessedIfErrorContinues": RETRIES.format("no blessing after num_tries failures"),
    "testDo_MakeSavedModelWarmup": WARMUP,
    "testDo_WarmupNotCreatedWithoutRequests": WARMUP,
    "testValidateOnce_LoadOnly_Succeed": SERVING_BINARIES,
    "testValidateOnce_LoadOnly_FailIfRunnerWaitRaises": SERVING_BINARIES,
    "testValidateOnce_LoadOnly_FailIfClientWaitRaises": SERVING_BINARIES,
    "testValidateOnce_LoadAndQuery_Succeed": SERVING_BINARIES,
    "testValidateOnce_LoadAndQuery_FailIfSendRequestsRaises": SERVING_BINARIES,
    "testSignalHandling": SIGTERM,
}


class TestInfraValidatorContract(tfx_tests.ExecutorTest):

    @pytest.fixture(autouse=True)
    def _ours(self, monkeypatch):
        swap_executor(monkeypatch, tfx_tests, Executor=Executor)


for _name, _reason in _EXPECTED.items():
    setattr(TestInfraValidatorContract, _name,
            expected_failure(tfx_tests.ExecutorTest, _name, _reason, raises=AttributeError))


def test_every_tfx_test_is_accounted_for():
    tfx_names = {n for n in dir(tfx_tests.ExecutorTest) if n.startswith("test") and n != "test_session"}
    assert tfx_names == set(_EXPECTED)
