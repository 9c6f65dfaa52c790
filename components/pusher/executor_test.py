"""The Pusher needs both blessings (publishing itself: serving_dir_test.py; TFX's own
Pusher tests against this executor: tests/tfx_contract/test_pusher_contract.py)."""
from __future__ import annotations

import json
import os

import pytest
from tfx.types import standard_artifacts

from kubetfx.components.pusher import executor
from testing_models import model_files


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


def test_the_serving_dir_property_is_where_the_model_is_pushed(tmp_path):
    """The compiled spec's `serving_dir` parameter (a runner without the serving volume,
    kfp.local, points it at a directory it mounts) wins over push_destination's directory."""
    model = model_files(tmp_path / "model", b"graph")
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    inputs = {"model": [model],
              "model_blessing": [_blessing(standard_artifacts.ModelBlessing, tmp_path, "b", True)],
              "infra_blessing": [_blessing(standard_artifacts.InfraBlessing, tmp_path, "i", True)]}
    compiled, chosen = tmp_path / "volume", tmp_path / "chosen"
    properties = {"push_destination": json.dumps({"filesystem": {"base_directory": str(compiled)}}),
                  "custom_config": "null", executor.SERVING_DIR_KEY: str(chosen)}
    executor.AtomicPusherExecutor().Do(inputs, {"pushed_model": [pushed]}, properties)
    versions = os.listdir(chosen)
    assert len(versions) == 1 and (chosen / versions[0] / "saved_model.pb").read_bytes() == b"graph"
    assert not compiled.exists()
    assert pushed.get_string_custom_property("pushed_destination") == str(chosen / versions[0])
