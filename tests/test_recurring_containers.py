"""A recurring run of the compiled spec (the golden file, equal to `kubetfx compile`'s output)
on the local KFP backend, every stage in its container: each tick is a new run on the data
the object store holds at that moment (kubeflow/local_backend/recurring.py), and the spec's
data-fingerprint task decides what re-runs (kubeflow/data_import.py)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from container_engine import remove_serving_volume, require_engine_and_images
import yaml

from kubetfx.pipelines.config import EMBEDDED_DATA

pytestmark = [pytest.mark.container, pytest.mark.slow]
GOLDEN = Path(__file__).resolve().parents[1] / "pipelines" / "testdata" / "kubetfx-penguin.golden.yaml"
REPO = os.environ.get("KUBETFX_TEST_IMAGE_REPO", "kubetfx")
IMAGES = [f"{REPO}/pipeline:0.1.0", f"{REPO}/infra-validator:0.1.0"]
PIPELINE = "kubetfx-penguin"
STAGES = ("CsvExampleGen", "StatisticsGen", "ImportSchemaGen", "ExampleValidator", "Transform", "Trainer",
          "ServedBaseline", "Evaluator", "InfraValidator", "Pusher")
# Never cached: the serving volume is an input KFP's cache key cannot see (ServedBaseline),
# and the two that take its output re-run with it (compiler.py, served_baseline.py).
SEE_THE_VOLUME = ("ServedBaseline", "Evaluator", "Pusher")


@pytest.fixture(scope="module", autouse=True)
def engine_and_images():
    require_engine_and_images(IMAGES)


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    yield home
    remove_serving_volume(home)


def test_a_schedule_retrains_and_pushes_when_a_csv_lands_and_is_cached_when_none_did(tmp_path, home):
    from kubetfx.pipelines.kubeflow.local_backend import recurring, store
    from kubetfx.pipelines.kubeflow.local_backend.options import Options

    spec, platform = yaml.safe_load_all(GOLDEN.read_text())
    for executor in spec["deploymentSpec"]["executors"].values():
        if "container" in executor:
            executor["container"]["image"] = executor["container"]["image"].replace("kubetfx/", f"{REPO}/", 1)
    data_root = spec["root"]["inputDefinitions"]["parameters"]["data_root"]["defaultValue"]
    kept = store.Store(None, home / "object-store")   # what the object store holds between runs
    kept.mirror(EMBEDDED_DATA, data_root)              # uploaded once, by `kubetfx submit --schedule`
    recurring.create(home, PIPELINE, f"{PIPELINE}-schedule", spec, platform, {}, cron="0 0 3 * * *")

    def tick():
        summary = recurring.tick(home, PIPELINE, f"{PIPELINE}-schedule", Options(parallelism=2))
        return {s.stage: s.state for s in summary.stages}, summary.pushed_path

    states, pushed = tick()
    assert states == {"data": "imported", "data-fingerprint": "complete", **{s: "complete" for s in STAGES}}
    first = int(re.search(rf"/kubetfx/serving/{PIPELINE}/(\d+)", pushed).group(1))

    lines = (EMBEDDED_DATA / "penguins.csv").read_text().splitlines()
    landed = tmp_path / "landed.csv"
    landed.write_text("\n".join(lines[:1] + lines[1::3]) + "\n")   # a third of the rows again, a new file
    kept.mirror(landed, data_root.rstrip("/") + "/2026-12-04.csv")
    states, pushed = tick()
    # ExampleGen and all that reads the data re-run; the curated schema does not read it.
    assert states == {"data": "imported", "data-fingerprint": "complete",
                      **{s: "cached" if s == "ImportSchemaGen" else "complete" for s in STAGES}}
    assert int(re.search(rf"/kubetfx/serving/{PIPELINE}/(\d+)", pushed).group(1)) > first  # a new version

    states, _ = tick()
    assert states == {"data": "imported", "data-fingerprint": "complete",
                      **{s: "complete" if s in SEE_THE_VOLUME else "cached" for s in STAGES}}
