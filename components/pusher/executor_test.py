"""The push is atomic, versioned, idempotent, and needs both blessings."""
from __future__ import annotations

import os

import pytest
from tfx.types import standard_artifacts

from kubetfx.components.pusher import executor


def _model_dir(tmp_path, name, content=b"graph"):
    serving = tmp_path / name / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(content)
    (serving / "variables" / "variables.index").write_bytes(b"index")
    return serving


def test_publish_is_a_complete_numbered_directory_and_no_staging_left(tmp_path):
    base = tmp_path / "serving"
    path, version = executor.publish_atomically(str(_model_dir(tmp_path, "m1")), str(base))
    assert version.isdigit() and path == str(base / version)
    assert (base / version / "saved_model.pb").read_bytes() == b"graph"
    assert (base / version / "variables" / "variables.index").exists()
    assert os.listdir(base) == [version]


def test_same_model_twice_keeps_one_version_new_model_gets_a_later_one(tmp_path):
    base = str(tmp_path / "serving")
    _, first = executor.publish_atomically(str(_model_dir(tmp_path, "m1")), base)
    _, again = executor.publish_atomically(str(_model_dir(tmp_path, "m1-retrained")), base)
    _, second = executor.publish_atomically(str(_model_dir(tmp_path, "m2", b"other graph")), base)
    assert again == first
    assert int(second) > int(first)
    assert sorted(os.listdir(base), key=int) == [first, second]


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
