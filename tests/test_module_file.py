"""`kubetfx run --module-file`: a user's own classic TFX module file (module_file_example.py)
trains, passes the gates and is pushed; its run_fn gets materialized transformed examples."""
from __future__ import annotations

import glob
import os
from pathlib import Path

import pytest

from conftest import executions_by_stage

pytestmark = [pytest.mark.slow, pytest.mark.serving]

MODULE_FILE = Path(__file__).with_name("module_file_example.py")


def test_own_module_file_trains_and_is_pushed(tmp_path, run_kubetfx):
    result = run_kubetfx("run", "--home", tmp_path, "--module-file", MODULE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    states = executions_by_stage(tmp_path / "metadata" / "kubetfx-penguin.sqlite")
    assert all(v == ["COMPLETE"] for k, v in states.items() if not k.endswith("resolver")), states

    root = tmp_path / "pipelines" / "kubetfx-penguin"
    transformed = glob.glob(f"{root}/Transform/transformed_examples/*/Split-train/*.gz")
    assert transformed, "the module file's run_fn reads materialized transformed examples"

    import tensorflow as tf

    pushed = sorted(glob.glob(f"{tmp_path}/serving/kubetfx-penguin/*/saved_model.pb"))
    assert len(pushed) == 1
    model = tf.saved_model.load(os.path.dirname(pushed[0]))
    example = tf.train.Example()
    for key, value in {"bill_length_mm": 47.5, "bill_depth_mm": 15.0}.items():
        example.features.feature[key].float_list.value.append(value)
    for key, value in {"flipper_length_mm": 218, "body_mass_g": 5200}.items():
        example.features.feature[key].int64_list.value.append(value)
    out = model.signatures["serving_default"](examples=tf.constant([example.SerializeToString()]))
    assert out["probabilities"].shape == (1, 3)
