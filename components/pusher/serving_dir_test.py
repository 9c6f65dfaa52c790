"""Publishing into a TF Serving base directory: complete integer versions only, a new
version for every different model (weights included), on local paths and object stores."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
import tensorflow as tf

from kubetfx.components.pusher import serving_dir

# Saves a SavedModel y = sum(x * w) with the weight given. Two fresh processes running the
# same code write byte-identical graphs (saved_model.pb): only variables/ differs, as for
# one pipeline trained twice.
_SAVE = """
import sys
import tensorflow as tf
class Linear(tf.Module):
    def __init__(self, w):
        self.w = tf.Variable([w, w])
    @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32)])
    def __call__(self, x):
        return {"y": tf.reduce_sum(x * self.w, axis=1)}
model = Linear(float(sys.argv[1]))
tf.saved_model.save(model, sys.argv[2], signatures=model.__call__)
"""


def _saved_model(path, weight: float) -> str:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", _SAVE, str(weight), str(path)], check=True, env=env, timeout=300)
    return str(path)


def _predict(path: str) -> float:
    return float(tf.saved_model.load(path).signatures["serving_default"](tf.constant([[1.0, 1.0]]))["y"][0])


@pytest.fixture(scope="module")
def retrained(tmp_path_factory):
    """Two real SavedModels with the same graph and different weights."""
    root = tmp_path_factory.mktemp("models")
    return _saved_model(root / "first", 1.0), _saved_model(root / "retrained", 3.0)


def _fake_model(tmp_path, name, content=b"graph"):
    model = tmp_path / name
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(content)
    (model / "variables" / "variables.index").write_bytes(b"index")
    (model / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights")
    return str(model)


def test_publish_is_a_complete_numbered_directory_and_no_staging_left(tmp_path):
    base = tmp_path / "serving"
    path, version, pushed = serving_dir.publish(_fake_model(tmp_path, "m1"), str(base))
    assert pushed and version.isdigit() and path == str(base / version)
    assert (base / version / "saved_model.pb").read_bytes() == b"graph"
    assert (base / version / "variables" / "variables.index").exists()
    assert os.listdir(base) == [version]


def test_the_same_model_again_adds_no_version(tmp_path):
    base = str(tmp_path / "serving")
    _, first, _ = serving_dir.publish(_fake_model(tmp_path, "m1"), base)
    _, again, pushed = serving_dir.publish(_fake_model(tmp_path, "m1-copy"), base)  # a retried push
    assert again == first and not pushed
    assert os.listdir(base) == [first]


def test_a_retrained_model_with_the_same_graph_is_a_new_version(tmp_path, retrained):
    first, second = retrained
    with open(os.path.join(first, "saved_model.pb"), "rb") as a, open(os.path.join(second, "saved_model.pb"), "rb") as b:
        assert a.read() == b.read()  # same graph: only the weights tell the models apart
    base = str(tmp_path / "serving")
    path1, v1, _ = serving_dir.publish(first, base)
    path2, v2, pushed = serving_dir.publish(second, base)
    assert pushed and int(v2) > int(v1)
    assert sorted(os.listdir(base), key=int) == [v1, v2]
    assert (_predict(path1), _predict(path2)) == (2.0, 6.0)  # the new weights are served


def test_a_version_without_saved_model_pb_is_not_served_nor_reused(tmp_path):
    base = tmp_path / "serving"
    (base / "9000000000" / "variables").mkdir(parents=True)  # an interrupted object-store copy
    (base / ".staging-1-ab").mkdir()
    (base / "latest").mkdir()
    assert serving_dir.latest_version(str(base)) is None
    _, version, _ = serving_dir.publish(_fake_model(tmp_path, "m1"), str(base))
    assert version == "9000000001"
    assert serving_dir.served_versions(str(base)) == [9000000001]


def test_a_torn_version_above_a_whole_one_is_not_the_latest(tmp_path):
    base = tmp_path / "serving"
    _, whole, _ = serving_dir.publish(_fake_model(tmp_path, "m1", content=b"graph VarHandleOp"), str(base))
    torn = base / str(int(whole) + 5)
    torn.mkdir()
    (torn / "saved_model.pb").write_bytes((base / whole / "saved_model.pb").read_bytes())  # no variables/
    assert serving_dir.latest_version(str(base)) == whole
    assert serving_dir.served_versions(str(base)) == [int(whole)]


def test_saved_model_pb_is_copied_last(tmp_path, monkeypatch):
    model = _fake_model(tmp_path, "m1")
    (tmp_path / "m1" / "assets").mkdir()
    (tmp_path / "m1" / "assets" / "vocab.txt").write_text("a\n")
    copied = []
    real_copy = tf.io.gfile.copy
    monkeypatch.setattr(serving_dir.gfile, "copy", lambda src, dst, overwrite=False: (
        copied.append(os.path.relpath(src, model)), real_copy(src, dst, overwrite)))
    serving_dir.copy_tree(model, str(tmp_path / "copy"))
    assert copied[-1] == "saved_model.pb" and len(copied) == 4
    assert serving_dir.files(str(tmp_path / "copy")) == serving_dir.files(model)


def test_publish_to_an_object_store_path(retrained):
    """ram:// is TF's built-in in-memory filesystem with object-store semantics (renaming a
    "directory" moves only its marker), so the copy path is the one gs:// takes."""
    first, second = retrained
    base = f"ram://kubetfx-{uuid.uuid4().hex}/serving/penguin"
    path1, v1, _ = serving_dir.publish(first, base)
    again = serving_dir.publish(first, base)
    path2, v2, pushed = serving_dir.publish(second, base)
    assert again == (path1, v1, False) and pushed
    assert tf.io.gfile.listdir(base) == sorted([v1, v2])  # no staging copy left
    assert serving_dir.same_model(path2, second) and not serving_dir.same_model(path1, second)
    assert (_predict(path1), _predict(path2)) == (2.0, 6.0)


def test_a_filesystem_tensorflow_lacks_is_one_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match=r"^serving directory s3://bucket/serving: TensorFlow has no s3:// "):
        serving_dir.publish(_fake_model(tmp_path, "m1"), "s3://bucket/serving")


SUMMARY = {"assets.extra/kubetfx/schema.pbtxt": b"feature {}", "assets.extra/kubetfx/training.json": b"{}"}


def test_extra_files_come_with_the_version_and_leave_the_same_model_comparison_alone(tmp_path):
    base = tmp_path / "serving"
    _, first, _ = serving_dir.publish(_fake_model(tmp_path, "m1"), str(base), SUMMARY)
    assert (base / first / "assets.extra" / "kubetfx" / "schema.pbtxt").read_bytes() == b"feature {}"
    # A re-run of the same model (its summary is beside the served copy, not in the model).
    _, again, pushed = serving_dir.publish(_fake_model(tmp_path, "m1-again"), str(base), SUMMARY)
    assert (again, pushed) == (first, False) and os.listdir(base) == [first]
    # A rollback re-publishes a version directory: its summary follows, still "the same model".
    _, second, _ = serving_dir.publish(_fake_model(tmp_path, "m2", content=b"other graph"), str(base), {})
    _, third, pushed = serving_dir.publish(str(base / first), str(base))
    assert pushed and (base / third / "assets.extra" / "kubetfx" / "training.json").exists()


def test_a_served_version_without_summary_gets_it_and_an_existing_one_is_never_replaced(tmp_path):
    base = tmp_path / "serving"
    _, first, _ = serving_dir.publish(_fake_model(tmp_path, "m1"), str(base))  # an older kubetfx's push
    serving_dir.publish(_fake_model(tmp_path, "m1-again"), str(base), SUMMARY)
    schema = base / first / "assets.extra" / "kubetfx" / "schema.pbtxt"
    assert schema.read_bytes() == b"feature {}"
    serving_dir.publish(_fake_model(tmp_path, "m1-third"), str(base), {**SUMMARY, schema.relative_to(base / first).as_posix(): b"new"})
    assert schema.read_bytes() == b"feature {}" and os.listdir(base) == [first]


def test_extra_files_come_with_the_version_on_an_object_store_too(tmp_path):
    base = f"ram://kubetfx-{uuid.uuid4().hex}/serving"
    path, version, _ = serving_dir.publish(_fake_model(tmp_path, "m1"), base, SUMMARY)
    assert tf.io.gfile.exists(f"{path}/assets.extra/kubetfx/training.json")
    assert serving_dir.served_versions(base) == [int(version)]
