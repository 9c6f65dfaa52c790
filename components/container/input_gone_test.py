"""The entrypoint's guard against KFP's cache hit whose outputs are gone from the object
store: the launcher stages an empty prefix, the stage stops in one line with exit 12."""
from __future__ import annotations

import json

import pytest

from kubetfx.components.container import entrypoint

RUN = "minio://mlpipeline/v2/artifacts/kubetfx-penguin/6f1c0d2a-run"


def _executor_input(**inputs) -> dict:
    return {"inputs": {"artifacts": {k: {"artifacts": [{"uri": uri, "type": {"schemaTitle": "system.Artifact"}}]}
                                     for k, uri in inputs.items()}},
            "outputs": {"artifacts": {}, "outputFile": "/tmp/kfp_outputs/output_metadata.json"}}


def _main(executor_input, monkeypatch, root):
    monkeypatch.setenv("KUBETFX_LAUNCHER_ROOT", str(root))
    return entrypoint.main(["--executor_class_path", "tfx.components.trainer.executor.GenericExecutor",
                            "--json_serialized_invocation_args", json.dumps(executor_input)])


@pytest.mark.parametrize("staged", ["absent", "empty", "markers only"])
def test_an_input_staged_empty_names_its_producer_in_one_line_and_exits_12(tmp_path, monkeypatch, capsys, staged):
    graph = f"{RUN}/Transform/4c1e/transform_graph"
    schema = f"{RUN}/ImportSchemaGen/9a2b/schema"
    (tmp_path / "minio/mlpipeline/v2/artifacts/kubetfx-penguin/6f1c0d2a-run/ImportSchemaGen/9a2b/schema").mkdir(
        parents=True)
    (tmp_path / "minio/mlpipeline/v2/artifacts/kubetfx-penguin/6f1c0d2a-run/ImportSchemaGen/9a2b/schema/"
                "schema.pbtxt").write_text("")
    local = tmp_path / "minio/mlpipeline/v2/artifacts/kubetfx-penguin/6f1c0d2a-run/Transform/4c1e/transform_graph"
    if staged != "absent":
        local.mkdir(parents=True)
    if staged == "markers only":
        (local / "transform_fn_$folder$").write_text("")
    code = _main(_executor_input(schema=schema, transform_graph=graph), monkeypatch, tmp_path)
    assert code == entrypoint.INPUT_GONE == 12
    err = capsys.readouterr().err.strip()
    assert err == (f"kubetfx: error: cached output of Transform is gone from the object store (input "
                   f"transform_graph: nothing under {graph}): re-run with caching off")


def test_an_empty_data_root_is_said_as_such(tmp_path, monkeypatch, capsys):
    code = _main(_executor_input(kubetfx_data="minio://mlpipeline/kubetfx/data/p/"), monkeypatch, tmp_path)
    assert code == 12
    assert capsys.readouterr().err.strip() == (
        "kubetfx: error: data_root minio://mlpipeline/kubetfx/data/p/ holds no files: upload the data there "
        "(kubetfx submit --data) or start the run with another data_root")


def test_inputs_that_arrived_pass(tmp_path):
    (tmp_path / "minio/b/run/T/s/model").mkdir(parents=True)
    (tmp_path / "minio/b/run/T/s/model/saved_model.pb").write_bytes(b"x")
    (tmp_path / "minio/b/one").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "minio/b/one").write_text("a file, not a prefix")
    entrypoint.check_inputs_arrived(_executor_input(model="minio://b/run/T/s/model", one="minio://b/one",
                                                    local="/not/staged/by/the/launcher"), str(tmp_path))
