"""The Pusher needs both blessings (publishing itself: serving_dir_test.py; TFX's own
Pusher tests against this executor: tests/tfx_contract/test_pusher_contract.py)."""
from __future__ import annotations

import pytest
from tfx.types import standard_artifacts

from kubetfx.components.pusher import executor


def _blessing(cls, tmp_path, name, blessed):
    artifact = cls()
    artifact.uri = str(tmp_path / name)
    artifact.set_int_custom_property("blessed", int(blessed))
    return artifact


@pytest.mark.parametrize("model_ok, infra_ok", [(True, False), (False, True), (False, False)])
def test_pusher_refuses_unless_both_blessings(tmp_path, model_ok, infra_ok):
    inputs = {"model_blessing": [_blessing(standard_artifacts.ModelBlessing, tmp_path, "b", model_ok)],
              "infra_blessing": [_blessing(standard_artifacts.InfraBlessing, tmp_path, "i", infra_ok)]}
    assert executor.AtomicPusherExecutor().CheckBlessing(inputs) is False


def test_pusher_refuses_when_a_blessing_input_is_missing(tmp_path):
    inputs = {"model_blessing": [_blessing(standard_artifacts.ModelBlessing, tmp_path, "b", True)]}
    assert executor.AtomicPusherExecutor().CheckBlessing(inputs) is False
    inputs["infra_blessing"] = [_blessing(standard_artifacts.InfraBlessing, tmp_path, "i", True)]
    assert executor.AtomicPusherExecutor().CheckBlessing(inputs) is True
