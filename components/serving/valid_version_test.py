"""The one rule for a valid version directory, on a real SavedModel (with variables) torn
the ways a killed copy or a hand edit tears it; and the readers that share it."""
from __future__ import annotations

import logging
import shutil

import pytest

from kubetfx.components.serving import valid_version, version_follower


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A SavedModel whose weight lives in variables/ (as every trained model's does)."""
    import tensorflow as tf

    class Weighted(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable([2.0])

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def serve(self, x):
            return {"y": x * self.w}

    path = tmp_path_factory.mktemp("model") / "weighted"
    module = Weighted()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})
    return path


@pytest.fixture
def base(tmp_path, model):
    shutil.copytree(model, tmp_path / "base" / "100")
    return tmp_path / "base"


def _torn(base, model, name: str, tear) -> str:
    shutil.copytree(model, base / name)
    tear(base / name)
    return str(base / name)


TEARS = {
    "no variables/": lambda p: shutil.rmtree(p / "variables"),
    "no index": lambda p: (p / "variables" / "variables.index").unlink(),
    "no data shard": lambda p: [f.unlink() for f in (p / "variables").glob("variables.data-*")],
    "a shard of two missing": lambda p: (p / "variables" / "variables.data-00000-of-00001").rename(
        p / "variables" / "variables.data-00000-of-00002"),
    "no graph": lambda p: (p / "saved_model.pb").unlink(),
}


@pytest.mark.parametrize("tear", sorted(TEARS))
def test_a_torn_version_beside_a_good_one_is_skipped_and_reported_once(base, model, tear, caplog):
    torn = _torn(base, model, "200", TEARS[tear])
    with caplog.at_level(logging.WARNING, logger="kubetfx.versions"):
        assert valid_version.versions(base) == [100]
        assert valid_version.latest(base) == "100"
        assert list(version_follower.version_dirs(str(base))) == [100]  # the model server's reading
    reports = [r.getMessage() for r in caplog.records if torn in r.getMessage()]
    assert len(reports) == 1, reports  # once per process, not once per reader or poll


def test_complete_versions_and_non_versions(base, model):
    shutil.copytree(model, base / "9")  # numeric order: 100 > 9
    shutil.copytree(model, base / ".staging-300-abc")  # a push in progress: not a version, not reported
    shutil.copytree(model, base / "99999999999999999999")  # past int64: TF Serving skips it
    (base / "400").write_text("a file, not a directory")
    assert valid_version.versions(base) == [9, 100]
    assert valid_version.latest(base / "missing") is None


def test_a_graph_without_variables_needs_no_variables_folder(base):
    (base / "500").mkdir()
    (base / "500" / "saved_model.pb").write_bytes(b"a graph of constants")
    assert valid_version.latest(base) == "500"
