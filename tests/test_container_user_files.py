"""`run --engine containers --module-file F --schema-file S`: the compiled spec with both of
the user's files staged in the object store (pipelines/kubeflow/staged_files.py) runs on the
local KFP backend, every task as uid 1000 without fsGroup (local_backend/docker.py): the
Transform and Trainer import the user's module from the launcher's copy, ImportSchemaGen
takes the user's schema, and the model is pushed to the claim's volume. One run covers both
options (the container tests' budget)."""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from container_engine import remove_serving_volume, require_engine_and_images

from kubetfx.pipelines.kubeflow import staged_files

pytestmark = [pytest.mark.container, pytest.mark.slow]
REPO = os.environ.get("KUBETFX_TEST_IMAGE_REPO", "kubetfx")
IMAGE = f"{REPO}/pipeline:0.1.0"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def engine_and_images():
    require_engine_and_images([IMAGE, f"{REPO}/infra-validator:0.1.0"])


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    yield home
    remove_serving_volume(home)


def test_a_module_file_and_a_schema_file_travel_with_the_run(tmp_path, home, run_kubetfx):
    module, schema = tmp_path / "my_module.py", tmp_path / "my.schema.pbtxt"
    shutil.copy(ROOT / "tests" / "module_file_example.py", module)
    schema.write_text((ROOT / "pipelines" / "schemas" / "penguins.schema.pbtxt").read_text() + "\n# the user's\n")
    result = run_kubetfx("run", "--engine", "containers", "--kfp-version", "2.5", "--image-repo", REPO,
                         "--home", home, "--module-file", module, "--schema-file", schema, timeout=2400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert re.search(r"model pushed to /kubetfx/serving/kubetfx-penguin/\d+", result.stdout), result.stdout
    run_id = re.search(r"^Run (\S+) of", result.stdout, flags=re.M).group(1)

    bucket = home / "object-store" / "mlpipeline"
    for local in (module, schema):  # staged where the spec's importers read them
        uri = staged_files.uri_for("kubetfx-penguin", local)
        assert (bucket / uri.split("mlpipeline/", 1)[1]).read_bytes() == local.read_bytes()
    logs = home / "logs" / "kubetfx-penguin" / run_id
    staged_module = "/minio/mlpipeline/" + staged_files.uri_for("kubetfx-penguin", module).split("mlpipeline/", 1)[1]
    assert staged_module in (logs / "Transform.log").read_text() + (logs / "Trainer.log").read_text()
    schemas = [p for p in bucket.glob(f"v2/artifacts/kubetfx-penguin/{run_id}/ImportSchemaGen/*/schema/*")]
    assert schemas and "# the user's" in schemas[0].read_text()  # copied as given, not the image's
