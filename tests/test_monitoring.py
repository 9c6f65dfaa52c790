"""Closing the loop after the Pusher, end to end with the real CLI: the model record,
drift on shifted data, skew in requests sent to `kubetfx serve`, retraining on drift, and
a rollback picked up by the running server. One pipeline home for the module; the tests
run in file order (the last one adds versions)."""
from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO
from monitor_table import verdicts
from serve_process import ServeProcess

pytestmark = [pytest.mark.slow]
EMBEDDED = REPO / "pipelines" / "data" / "penguins" / "penguins.csv"
NAME = "kubetfx-penguin"


def _rows() -> list[dict]:
    with open(EMBEDDED, newline="") as f:
        return list(csv.DictReader(f))


def _write(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _shift(rows, bill_mm: float, island: str = "Biscoe") -> list[dict]:
    """bill_length_mm moved by `bill_mm`, every penguin on one island; the rest unchanged."""
    shifted = []
    for row in rows:
        row = dict(row, island=island)
        if row["bill_length_mm"]:
            row["bill_length_mm"] = f"{float(row['bill_length_mm']) + bill_mm:.1f}"
        shifted.append(row)
    return shifted


def _sample(rows, n: int, seed: int) -> list[dict]:
    return random.Random(seed).sample(rows, n)  # fixed seed: the same sample every run


@pytest.fixture(scope="module")
def home(tmp_path_factory, run_kubetfx):
    home = tmp_path_factory.mktemp("home")
    result = run_kubetfx("run", "--home", home)
    assert result.returncode == 0, result.stdout + result.stderr
    return home


def _models(run_kubetfx, home) -> list[dict]:
    result = run_kubetfx("models", "--home", home, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["versions"]


def _digest(model_dir) -> str:
    return hashlib.sha256((Path(model_dir) / "saved_model.pb").read_bytes()).hexdigest()


def _executions(home, type_name: str) -> list:
    from kubetfx.pipelines.record import mlmd
    from kubetfx.pipelines.record.lineage import Lineage

    store = mlmd.open_store(home / "metadata" / f"{NAME}.sqlite")
    lineage = Lineage(store)
    return lineage, [e for e in store.get_executions() if lineage.execution_type_of(e) == type_name]


def test_models_lists_the_pushed_version_with_its_data_metrics_and_blessings(home, run_kubetfx):
    (version,) = _models(run_kubetfx, home)
    assert version["serving"] is True and version["blessed"] is True and version["infra_blessed"] is True
    assert version["metrics"]["sparse_categorical_accuracy"] >= 0.6
    assert version["data"]["input_base"] == str(EMBEDDED.parent)
    assert "total_bytes:" in version["data"]["fingerprint"] and version["data"]["span"] == 0
    assert os.path.exists(os.path.join(version["data"]["statistics_uri"], "Split-train", "FeatureStats.pb"))
    assert version["data"]["label"] == "species"
    table = run_kubetfx("models", "--home", home)
    assert f"* {version['version']}" in table.stdout and "eval+infra" in table.stdout


def test_monitor_reports_drift_on_the_shifted_features_and_exits_non_zero(home, run_kubetfx, tmp_path):
    data = _write(tmp_path / "shifted.csv", _shift(_sample(_rows(), 150, seed=2), bill_mm=15))
    result = run_kubetfx("monitor", "--home", home, "--data", data)
    assert result.returncode == 11, result.stdout + result.stderr
    # One word: the header states it, the rows and the last line use it the same way.
    assert result.stdout.splitlines()[0].endswith(": DRIFT in bill_length_mm, island")
    assert "kubetfx monitor: DRIFT in bill_length_mm, island against version" in result.stderr
    words = verdicts(result.stdout)
    assert words["bill_length_mm"] == "DRIFT" and words["island"] == "DRIFT"
    for unshifted in ("bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year"):
        assert words[unshifted] == "ok", result.stdout
    # The report is an artifact TFDV reads, recorded against the served model.
    import tensorflow_data_validation as tfdv
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    lineage, (execution,) = _executions(home, "kubetfx.Monitor")
    served = _models(run_kubetfx, home)[0]
    assert lineage.input(execution.id, "pushed_model").id == served["pushed_model_id"]
    anomalies_uri = lineage.output(execution.id, "anomalies").uri
    anomalies = anomalies_pb2.Anomalies.FromString((Path(anomalies_uri) / "Split-data" / "SchemaDiff.pb").read_bytes())
    assert {"bill_length_mm", "island"} <= set(anomalies.anomaly_info)
    stats = tfdv.load_stats_binary(os.path.join(lineage.output(execution.id, "statistics").uri, "Split-data", "FeatureStats.pb"))
    assert stats.datasets[0].num_examples == 150


def _without(rows, column: str) -> list[dict]:
    return [{k: v for k, v in row.items() if k != column} for row in rows]


def _blank(rows, column: str, every: int) -> list[dict]:
    return [dict(row, **{column: ""}) if i % every == 0 else row for i, row in enumerate(rows)]


def test_monitor_exits_0_on_a_fresh_sample_of_the_same_distribution(home, run_kubetfx, tmp_path):
    data = _write(tmp_path / "fresh.csv", _sample(_rows(), 150, seed=1))
    result = run_kubetfx("monitor", "--home", home, "--data", data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "kubetfx monitor: ok: no drift" in result.stdout and result.stdout.splitlines()[0].endswith(": ok")


def test_production_data_without_the_label_and_with_gaps_is_ok(home, run_kubetfx, tmp_path):
    """The normal production case: no label column; bill_length_mm empty in 1 row of 13
    (7.7%), which breaks the curated schema's presence (95%) but moves the missing rate by
    less than the 0.1 default."""
    rows = _blank(_without(_sample(_rows(), 150, seed=4), "species"), "bill_length_mm", every=13)
    # TF_CPP_MIN_LOG_LEVEL 3: what the CLI sets when a user has not (run_kubetfx sets 2).
    result = run_kubetfx("monitor", "--home", home, "--data", _write(tmp_path / "production.csv", rows),
                         env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stdout + result.stderr
    header = result.stdout.splitlines()[0]
    assert header.endswith(": ok") and f"(trained on {EMBEDDED}, span 0)" in header
    words = verdicts(result.stdout)
    assert "species" not in words and set(words.values()) == {"ok"}, result.stdout
    assert "the label species has no values in the new data: not judged" in result.stdout
    assert " <1%->9% " in next(line for line in result.stdout.splitlines() if line.split()[:1] == ["bill_length_mm"])
    assert result.stderr == "", result.stderr  # no absl or numpy warning lines without --verbose


def test_a_missing_rate_past_the_threshold_is_MISSING_in_rows_header_and_summary(home, run_kubetfx, tmp_path):
    rows = _blank(_without(_sample(_rows(), 150, seed=5), "species"), "sex", every=3)
    result = run_kubetfx("monitor", "--home", home, "--data", _write(tmp_path / "gaps.csv", rows), "--json")
    assert result.returncode == 11, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] == "MISSING" and document["unjudged_label"] == "species"
    by_feature = {f["feature"]: f for f in document["features"]}
    assert by_feature["sex"]["verdict"] == "MISSING" and 0.3 < by_feature["sex"]["missing"] < 0.4
    assert {f["verdict"] for name, f in by_feature.items() if name != "sex"} == {"ok"}
    assert verdicts(result.stderr)["sex"] == "MISSING"  # --json: the table goes to stderr
    assert "(150 rows)" in result.stderr and ": MISSING in sex\n" in result.stderr
    assert "kubetfx monitor: MISSING in sex against version" in result.stderr


def test_retrain_on_data_without_labels_is_refused_on_a_quiet_day_too(home, run_kubetfx, tmp_path):
    """A production feed has no label: with --retrain it passed every quiet day (exit 0)
    and failed only the day drift came, when a retrain was needed. Now it is refused each
    time, in one line, after the verdict is written; nothing is retrained or pushed."""
    import re

    rows = _without(_sample(_rows(), 150, seed=1), "species")
    result = run_kubetfx("monitor", "--home", home, "--data", _write(tmp_path / "unlabelled.csv", rows), "--retrain")
    assert result.returncode == 2, result.stdout + result.stderr
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("kubetfx: error:")]
    assert "--retrain: the new data has no values for the label species" in error and "Traceback" not in result.stderr
    verdict = json.loads(Path(re.search(r"is in (\S+verdict\.json)", error).group(1)).read_text())
    assert verdict["verdict"] == "ok" and verdict["rows"] == 150  # the judgement is kept
    assert len(_models(run_kubetfx, home)) == 1


def test_a_renamed_column_and_an_added_id_are_named_not_silently_dropped(home, run_kubetfx, tmp_path):
    """An export that renamed bill_length_mm and added a row id: the id was dropped without a
    word and bill_length_mm was MISSING, 'absent from the new data', with no hint why."""
    rows = [{("bill_length" if k == "bill_length_mm" else k): v for k, v in row.items()}
            for row in _without(_sample(_rows(), 150, seed=1), "species")]
    rows = [dict(row, row_id=str(1000 + i)) for i, row in enumerate(rows)]
    result = run_kubetfx("monitor", "--home", home, "--data", _write(tmp_path / "renamed.csv", rows), "--json")
    assert result.returncode == 11, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["verdict"] == "MISSING" and document["unknown_columns"] == ["bill_length", "row_id"]
    bill = next(f for f in document["features"] if f["feature"] == "bill_length_mm")
    assert bill["verdict"] == "MISSING" and bill["detail"] == "absent from the new data; renamed 'bill_length'?"
    assert "  not in the model's schema, not judged: bill_length, row_id" in result.stderr.splitlines()


def test_models_of_a_cleaned_serving_directory_names_the_recorded_versions(home, run_kubetfx, tmp_path):
    """Every version directory deleted (a cleanup, a volume not mounted): `models` said "no
    pushed model" as for a home that never pushed, though ML Metadata records the pushes."""
    import shutil

    (served,) = _models(run_kubetfx, home)
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    shutil.rmtree(copy / "serving" / NAME / served["version"])
    result = run_kubetfx("models", "--home", copy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"records 1 pushed version(s) ({served['version']}) whose directories are gone" in result.stdout


def test_a_long_value_is_cut_to_a_readable_width(home, run_kubetfx, tmp_path):
    """A few rows with islands the schema does not know: TFDV's anomaly text lists them all."""
    rows = _sample(_rows(), 150, seed=6)
    rows[:20] = [dict(row, island=f"Unknown island number {i}") for i, row in enumerate(rows[:20])]
    result = run_kubetfx("monitor", "--home", home, "--data", _write(tmp_path / "islands.csv", rows), "--json")
    assert result.returncode == 11, result.stdout + result.stderr
    (text,) = json.loads(result.stdout)["features"][4]["anomalies"]  # the whole text stays in the JSON
    assert len(text) > 400 and "Unknown island number 19" in text
    table = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert verdicts(result.stderr)["island"] == "ANOMALY"
    assert max(len(line) for line in table) <= 200, result.stderr
    island = next(line for line in table if line.split()[:1] == ["island"])
    assert island.endswith("...") and "Unknown island" in island


def test_monitor_json_is_one_document_on_stdout_with_the_same_exit_code(home, run_kubetfx, tmp_path):
    data = _write(tmp_path / "shifted.csv", _shift(_sample(_rows(), 150, seed=3), bill_mm=15))
    result = run_kubetfx("monitor", "--home", home, "--data", data, "--json")
    assert result.returncode == 11, result.stdout + result.stderr
    document = json.loads(result.stdout)  # nothing else on stdout
    assert document["exit_code"] == 11 and document["verdict"] == "DRIFT" and document["rows"] == 150
    by_feature = {f["feature"]: f for f in document["features"]}
    assert not by_feature["bill_length_mm"]["ok"] and by_feature["bill_depth_mm"]["ok"]
    assert by_feature["bill_length_mm"]["verdict"] == "DRIFT" and by_feature["bill_depth_mm"]["verdict"] == "ok"
    assert Path(document["report"]).is_file()
    assert "DRIFT in bill_length_mm" in result.stderr  # the lines for people, on stderr


def test_a_per_feature_threshold_decides_for_that_feature(home, run_kubetfx, tmp_path):
    data = _write(tmp_path / "island.csv", _shift(_sample(_rows(), 150, seed=2), bill_mm=0))
    assert run_kubetfx("monitor", "--home", home, "--data", data).returncode == 11
    result = run_kubetfx("monitor", "--home", home, "--data", data, "--threshold", "island=0.9")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="module")
def store():
    """The moto S3 server on loopback, where the cluster has KFP's MinIO."""
    from kubetfx.pipelines.kubeflow import object_store_server

    with object_store_server.running_with_bucket() as running_and_client:
        yield running_and_client


def _store_env(running) -> dict:
    return {"KUBETFX_OBJECT_STORE_ENDPOINT": running.endpoint, "AWS_ACCESS_KEY_ID": running.access_key,
            "AWS_SECRET_ACCESS_KEY": running.secret_key}


def test_each_pushed_version_carries_its_schema_and_training_statistics(home, run_kubetfx):
    import tensorflow_data_validation as tfdv
    from kubetfx.components.pusher import serving_dir
    from tfx.utils import path_utils

    (served,) = _models(run_kubetfx, home)
    summary = Path(served["path"]) / "assets.extra" / "kubetfx"
    schema = tfdv.load_schema_text(str(summary / "schema.pbtxt"))
    assert {"bill_length_mm", "island", "species"} <= {f.name for f in schema.feature}
    stats = tfdv.load_stats_binary(str(summary / "statistics" / "Split-train" / "FeatureStats.pb"))
    recorded = tfdv.load_stats_binary(os.path.join(served["data"]["statistics_uri"], "Split-train", "FeatureStats.pb"))
    assert stats == recorded and json.loads((summary / "training.json").read_text())["label"] == "species"
    # The summary is not the model: pushing the same model again is still "already served".
    model = path_utils.serving_model_path(served["model_uri"])
    _, version, pushed = serving_dir.publish(model, str(home / "serving" / NAME))
    assert (version, pushed) == (served["version"], False)


def test_models_reads_a_serving_volume_without_its_metadata_store(home, run_kubetfx, tmp_path):
    """The cluster's serving volume, copied out: no ML Metadata of the runs that pushed."""
    (recorded,) = _models(run_kubetfx, home)
    result = run_kubetfx("models", "--home", tmp_path / "empty-home", "--serving-dir", home / "serving" / NAME, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    (version,) = json.loads(result.stdout)["versions"]
    assert version["version"] == recorded["version"] and version["serving"] and not version["pushed_model_id"]
    assert version["summary"] and version["blessed"] is True and version["infra_blessed"] is True
    assert (version["data"]["label"], version["data"]["span"]) == ("species", 0)
    assert version["pushed_at"][:16] == recorded["pushed_at"][:16]  # the version number is the push time
    table = run_kubetfx("models", "--home", tmp_path / "empty-home", "--serving-dir", home / "serving" / NAME)
    assert f"* {version['version']}" in table.stdout and "eval+infra" in table.stdout
    assert "label species (from the summary beside the model)" in table.stdout


def test_monitor_in_a_pod_needs_only_the_serving_volume_and_the_object_store(home, run_kubetfx, tmp_path, store):
    """As the CronJob runs it: an empty home, the serving directory, data in the store."""
    running, s3 = store
    pod_home = tmp_path / "pod-home"
    shifted = _write(tmp_path / "shifted.csv", _shift(_sample(_rows(), 150, seed=2), bill_mm=15))
    fresh = _write(tmp_path / "fresh.csv", _sample(_rows(), 150, seed=1))
    s3.upload_file(str(shifted), "mlpipeline", "kubetfx/incoming/shifted/part-0.csv")
    s3.upload_file(str(fresh), "mlpipeline", "kubetfx/incoming/fresh/part-0.csv")
    args = ["monitor", "--home", pod_home, "--serving-dir", home / "serving" / NAME, "--data"]
    drifted = run_kubetfx(*args, "minio://mlpipeline/kubetfx/incoming/shifted", env=_store_env(running))
    assert drifted.returncode == 11, drifted.stdout + drifted.stderr
    assert "DRIFT in bill_length_mm, island" in drifted.stderr
    assert "minio://mlpipeline/kubetfx/incoming/shifted (150 rows)" in drifted.stdout
    ok = run_kubetfx(*args, "minio://mlpipeline/kubetfx/incoming/fresh/", env=_store_env(running))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert not (pod_home / "metadata").exists()  # nothing but the report files
    assert len(list((pod_home / "monitor" / NAME).glob("*/verdict.json"))) == 2


def test_monitor_with_the_store_down_exits_1_so_the_job_retries(home, run_kubetfx, tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"KUBETFX_OBJECT_STORE_ENDPOINT": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s", "AWS_MAX_ATTEMPTS": "1"}
    result = run_kubetfx("monitor", "--home", tmp_path, "--serving-dir", home / "serving" / NAME,
                         "--data", "minio://mlpipeline/x", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cannot read minio://mlpipeline/x" in result.stderr and result.stderr.count("\n") == 1


def _Server(home, tmp_path) -> ServeProcess:
    return ServeProcess(home, tmp_path, NAME)


def _instance(row: dict) -> dict:
    kinds = {"bill_length_mm": float, "bill_depth_mm": float, "flipper_length_mm": int, "body_mass_g": int, "year": int}
    return {k: kinds.get(k, str)(v) for k, v in row.items() if v != "" and k != "species"}


def test_healthy_requests_with_fields_left_out_are_no_skew(home, run_kubetfx, tmp_path):
    """Rows of the training file sent as clients send them: no label, an empty cell left out
    of the instance (an absent feature, as the CSV gap is in training); the log is moved
    aside afterwards, so the next test's log holds its requests only."""
    rows = _sample(_rows(), 150, seed=7)
    assert any("" in (r["sex"], r["bill_length_mm"]) for r in rows)  # the sample has gaps
    server = _Server(home, tmp_path)
    try:
        for start in range(0, len(rows), 25):
            server.predict([_instance(r) for r in rows[start:start + 25]])
    finally:
        server.stop()
    healthy = tmp_path / "healthy-logs"
    (home / "inference-logs" / NAME).rename(healthy)
    result = run_kubetfx("monitor", "--home", home, "--logs", healthy)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].endswith(": ok") and "(150 rows)" in result.stdout
    assert set(verdicts(result.stdout).values()) == {"ok"} and "species" not in verdicts(result.stdout)


def test_requests_to_serve_are_logged_and_monitor_logs_reports_their_skew(home, run_kubetfx, tmp_path):
    from kubetfx.pipelines.serving import inference_log

    server = _Server(home, tmp_path)
    try:
        served = _models(run_kubetfx, home)[0]["version"]
        # Within the curated schema's 70 mm bound: the model server refuses requests outside it.
        skewed = _shift(_sample(_rows(), 150, seed=3), bill_mm=10)
        for start in range(0, len(skewed), 25):
            answer = server.predict([_instance(r) for r in skewed[start:start + 25]])
            assert answer["model_version"] == served and len(answer["predictions"]) == len(skewed[start:start + 25])
    finally:
        server.stop()
    logged = list(inference_log.read_examples(home / "inference-logs" / NAME))
    assert len(logged) == 150
    import tensorflow as tf
    first = tf.train.Example.FromString(logged[0]).features.feature
    assert first["model_version"].int64_list.value == [int(served)]
    assert first["island"].bytes_list.value == [b"Biscoe"] and first["timestamp_ms"].int64_list.value
    assert len(first["prediction_probabilities"].float_list.value) == 3

    result = run_kubetfx("monitor", "--home", home, "--logs")
    assert result.returncode == 11, result.stdout + result.stderr
    assert "SKEW in bill_length_mm, island" in result.stderr
    assert "(150 rows)" in result.stdout


class _Process:
    """A child process that writes its port to a file; always stopped."""

    def __init__(self, argv: list, tmp_path, name: str, port_file_flag: str, env=None):
        self.port_file = tmp_path / f"{name}.port"
        self.log = open(tmp_path / f"{name}.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", *map(str, argv), port_file_flag, str(self.port_file)],
                                        stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO,
                                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
        deadline = time.monotonic() + 300
        while not self.port_file.exists():
            assert self.process.poll() is None, (tmp_path / f"{name}.log").read_text()
            assert time.monotonic() < deadline, f"{name} did not start"
            time.sleep(0.2)
        self.url = f"http://127.0.0.1:{self.port_file.read_text()}"

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=30)
        finally:
            self.log.close()


def test_requests_through_the_logging_proxy_reach_the_store_and_monitor_reports_their_skew(home, run_kubetfx,
                                                                                          tmp_path, store):
    """The cluster's path on loopback: the model server, the inference-logger in front of
    it shipping to the store, the monitor reading the store with no metadata store."""
    running, s3 = store
    from kubetfx.pipelines.kubeflow import object_store

    serving = home / "serving" / NAME
    uri = f"minio://mlpipeline/kubetfx/inference-logs/{NAME}"
    server = _Process(["kubetfx.components.serving.model_server", "--model_base_path", serving,
                       "--model_name", NAME, "--port", "0"], tmp_path, "model-server", "--port_file")
    try:
        deadline = time.monotonic() + 300
        while True:  # the port answers at once; the model loads after (status LOADING)
            try:
                status = json.loads(urllib.request.urlopen(f"{server.url}/v1/models/{NAME}", timeout=60).read())
                if status["model_version_status"][0]["state"] == "AVAILABLE":
                    break
            except urllib.error.HTTPError:  # 404 until the first look at the directory
                status = None
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        proxy = _Process(["kubetfx.pipelines.cli", "inference-logger", "--upstream", server.url, "--log-dir", uri,
                          "--serving-dir", serving, "--port", "0"], tmp_path, "proxy", "--port-file",
                         env=_store_env(running))
        try:
            # Within the curated schema's 70 mm bound: the model server refuses requests outside it.
            skewed = _shift(_sample(_rows(), 150, seed=3), bill_mm=10)
            for start in range(0, len(skewed), 25):
                body = json.dumps({"instances": [_instance(r) for r in skewed[start:start + 25]]}).encode()
                request = urllib.request.Request(f"{proxy.url}/v1/models/{NAME}:predict", body)
                with urllib.request.urlopen(request, timeout=60) as answer:
                    assert len(json.loads(answer.read())["predictions"]) == len(skewed[start:start + 25])
        finally:
            assert proxy.stop() == 0  # ships the open shard on the way out
    finally:
        server.stop()
    assert [e for e in object_store.list_objects(s3, uri)], "nothing shipped to the store"
    served = status["model_version_status"][0]["version"]
    result = run_kubetfx("monitor", "--home", tmp_path / "pod-home", "--serving-dir", serving, "--logs", uri,
                         env=_store_env(running))
    assert result.returncode == 11, result.stdout + result.stderr
    assert "SKEW in bill_length_mm, island" in result.stderr
    assert f"{uri} (150 rows) against version {served}" in result.stdout


def test_retrain_on_drift_pushes_a_new_version_and_rollback_restores_the_first(home, run_kubetfx, tmp_path, store):
    (first,) = _models(run_kubetfx, home)
    # Drifted but within the curated schema (bill lengths stay under its 70 mm bound), so
    # the gates, not the validator, decide. From the store, as the CronJob reads it: the
    # new version records that address, not the scratch copy deleted when monitor ends.
    running, s3 = store
    s3.upload_file(str(_write(tmp_path / "drifted.csv", _shift(_rows(), bill_mm=4))),
                   "mlpipeline", "kubetfx/incoming/drifted/part-0.csv")
    data = "minio://mlpipeline/kubetfx/incoming/drifted"
    result = run_kubetfx("monitor", "--home", home, "--data", data, "--retrain", env=_store_env(running))
    assert result.returncode == 11, result.stdout + result.stderr
    assert "DRIFT in" in result.stderr and "model pushed to" in result.stdout
    assert f"retraining {NAME} on {data} " in result.stdout
    versions = _models(run_kubetfx, home)
    assert [v["version"] for v in versions][0] == first["version"] and len(versions) == 2
    second = versions[1]
    assert second["serving"] and second["data"]["input_base"] == data and second["blessed"]
    assert _digest(second["path"]) != _digest(first["path"])

    server = _Server(home, tmp_path)
    try:
        instance = _instance(_rows()[0])
        assert server.predict([instance])["model_version"] == second["version"]
        result = run_kubetfx("rollback", first["version"], "--home", home)
        assert result.returncode == 0, result.stdout + result.stderr
        versions = _models(run_kubetfx, home)
        third = versions[-1]
        assert len(versions) == 3 and third["serving"] and third["rollback_of"] == first["version"]
        assert _digest(third["path"]) == _digest(first["path"])  # the first model's content, served
        assert third["data"]["input_base"] == first["data"]["input_base"]  # its record followed too
        deadline = time.monotonic() + 120
        while server.predict([instance])["model_version"] != third["version"]:  # no restart
            assert time.monotonic() < deadline, "the server did not pick up the rollback"
            time.sleep(0.5)
    finally:
        server.stop()
    lineage, (rollback,) = _executions(home, "kubetfx.Rollback")
    assert lineage.input(rollback.id, "pushed_model").id == first["pushed_model_id"]
    assert lineage.output(rollback.id, "pushed_model").id == third["pushed_model_id"]
    history = (home / "serving" / NAME / "rollbacks.jsonl").read_text().splitlines()
    assert json.loads(history[-1])["rollback_of"] == first["version"]
    # Rolling back to what is served changes nothing; an unknown version is bad input.
    assert "already" in run_kubetfx("rollback", third["version"], "--home", home).stdout
    bad = run_kubetfx("rollback", "123", "--home", home)
    assert bad.returncode == 2 and "pushed versions:" in bad.stderr
