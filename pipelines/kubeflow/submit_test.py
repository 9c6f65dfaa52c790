"""`kubetfx submit` with the real compiled spec (the golden file, equal to `kubetfx compile`'s
output by kubeflow_compiler_test), the real kfp.Client 2.9, a real S3 server on loopback
(moto) for the data, and a stand-in of the KFP REST API that applies the apiserver's rules."""
from __future__ import annotations

import hashlib
import shutil
import socket
import sys
from pathlib import Path

import pytest

from kubetfx.pipelines import cli, exit_codes
from kubetfx.pipelines.kubeflow import submit
import kfp_api_standin
from kubetfx.pipelines.kubeflow import object_store, object_store_server

GOLDEN = Path(__file__).parent.parent / "testdata" / "kubetfx-penguin.golden.yaml"
DATA_ROOT = "minio://mlpipeline/kubetfx/data/kubetfx-penguin/"


# The real kfp.Client is in every test here; the 3.10 lock has no kfp SDK (deselected there).
pytestmark = pytest.mark.kfp_sdk


@pytest.fixture(scope="module")
def store():
    with object_store_server.running_with_bucket() as running_and_client:
        yield running_and_client


@pytest.fixture
def env(store, monkeypatch):
    running, s3 = store
    for entry in list(object_store.list_objects(s3, "minio://mlpipeline/kubetfx")):
        s3.delete_object(Bucket="mlpipeline", Key=entry["Key"])  # each test starts from an empty store
    monkeypatch.setenv("KUBETFX_OBJECT_STORE_ENDPOINT", running.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", running.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", running.secret_key)
    monkeypatch.delenv("KUBETFX_KFP_TOKEN", raising=False)
    monkeypatch.setattr(submit, "POLL_SECONDS", 0.01)
    return s3


@pytest.fixture
def spec(tmp_path):
    path = tmp_path / "kubetfx-penguin.yaml"
    shutil.copy(GOLDEN, path)
    return path


def _submit(*args):
    return cli.main(["submit", *map(str, args)])


def test_data_spec_and_run_reach_the_api_without_a_frozen_fingerprint(env, spec, monkeypatch, capsys):
    monkeypatch.setenv("KUBETFX_KFP_TOKEN", "s3cret-token")
    with kfp_api_standin.running() as api:
        assert _submit("--host", api.host, "--spec", spec, "--param", "eval_threshold=0.8", "--wait") == submit.OK
    (pipeline,) = api.pipelines.values()
    assert list(pipeline["versions"].values()) == [spec.read_text()]  # the file as compiled
    (run,) = api.runs.values()
    parameters = run["runtime_config"]["parameters"]
    # What the data is, is the run's data-fingerprint task's to say when it starts (data_import.py).
    assert parameters == {"data_root": DATA_ROOT, "eval_threshold": 0.8}
    stored = env.get_object(Bucket="mlpipeline", Key="kubetfx/data/kubetfx-penguin/penguins.csv")["Body"].read()
    embedded = Path(submit.__file__).parent.parent / "data" / "penguins" / "penguins.csv"
    assert hashlib.sha256(stored).digest() == hashlib.sha256(embedded.read_bytes()).digest()
    assert all(h.get("Authorization") == "Bearer s3cret-token" for _, _, h in api.requests)
    out = capsys.readouterr()
    assert "Trainer: RUNNING" in out.out and "SUCCEEDED" in out.out
    assert "s3cret-token" not in out.out + out.err


def test_new_data_is_uploaded_and_the_run_parameters_stay_the_same(env, spec, tmp_path):
    data = tmp_path / "trips"
    data.mkdir()
    (data / "a.csv").write_text("x,label\n1,a\n2,b\n")
    with kfp_api_standin.running() as api:
        for _ in range(2):
            assert _submit("--host", api.host, "--spec", spec, "--data", data) == submit.OK
        (data / "b.csv").write_text("x,label\n3,a\n")
        assert _submit("--host", api.host, "--spec", spec, "--data", data) == submit.OK
    assert [r["runtime_config"]["parameters"] for r in api.runs.values()] == [{"data_root": DATA_ROOT}] * 3
    assert sorted(e["Key"].rsplit("/", 1)[1] for e in object_store.list_objects(env, DATA_ROOT)) == ["a.csv", "b.csv"]
    (pipeline,) = api.pipelines.values()
    assert len(pipeline["versions"]) == 3  # one pipeline, a new version per submit


def test_files_in_the_data_root_that_are_not_in_the_data_are_refused(env, spec, tmp_path, capsys):
    (tmp_path / "old.csv").write_text("x\n1\n")
    object_store.upload_tree(env, tmp_path / "old.csv", DATA_ROOT)
    with kfp_api_standin.running() as api:
        assert _submit("--host", api.host, "--spec", spec) == exit_codes.USAGE
    assert not api.runs
    err = capsys.readouterr().err.strip()
    assert "old.csv" in err and "\n" not in err and "Traceback" not in err


def test_the_token_never_comes_from_argv(env, spec, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        _submit("--host", "http://127.0.0.1:1", "--spec", spec, "--token", "visible-in-ps")
    assert exit_.value.code == exit_codes.USAGE
    assert "KUBETFX_KFP_TOKEN" in capsys.readouterr().err
    token_file = tmp_path / "token"
    token_file.write_text("from-a-file\n")
    with kfp_api_standin.running() as api:
        assert _submit("--host", api.host, "--spec", spec, "--token-file", token_file) == submit.OK
    assert all(h.get("Authorization") == "Bearer from-a-file" for _, _, h in api.requests)


def test_help_says_where_the_token_comes_from(capsys):
    with pytest.raises(SystemExit):
        cli.main(["submit", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "$KUBETFX_KFP_TOKEN or --token-file" in out and "--token " not in out.replace("--token-file", "")


def test_a_yaml_that_is_not_a_kfp_spec_is_a_usage_error_before_anything_is_sent(env, tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("name: trips\nlabel: fare\n")
    with kfp_api_standin.running() as api:
        assert _submit("--host", api.host, "--spec", config) == exit_codes.USAGE
    assert not api.requests
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "is not a pipeline spec KFP accepts (unknown template format)" in err


def test_a_run_the_apiserver_refuses_shows_its_message(env, spec, capsys):
    with kfp_api_standin.running() as api:
        code = _submit("--host", api.host, "--spec", spec, "--param", "eval_threshold=high")
    assert code == submit.UNREACHABLE_OR_REJECTED and not api.runs
    err = capsys.readouterr().err
    assert "HTTP 400" in err and "input parameter eval_threshold requires type double or integer" in err
    assert "Traceback" not in err


def test_a_failed_run_exits_non_zero(env, spec):
    with kfp_api_standin.running(final_state="FAILED") as api:
        assert _submit("--host", api.host, "--spec", spec, "--wait") == submit.RUN_FAILED


def test_an_api_error_while_waiting_has_its_own_exit_code(env, spec, capsys):
    with kfp_api_standin.running(fail_get_run=500) as api:
        assert _submit("--host", api.host, "--spec", spec, "--wait") == submit.API_ERROR_WHILE_WAITING
    err = capsys.readouterr().err
    assert "lost the run while waiting (HTTP 500" in err and "may still be running" in err


def test_waiting_ends_at_the_timeout(env, spec, capsys):
    with kfp_api_standin.running(polls_before_final=10**9) as api:
        assert _submit("--host", api.host, "--spec", spec, "--wait", "--timeout", "0.2") == submit.WAIT_TIMEOUT
    assert "still RUNNING after 0 s (--timeout)" in capsys.readouterr().err


def test_an_api_that_does_not_answer_is_cut_off_by_the_request_timeout(env, spec, capsys):
    with kfp_api_standin.running(stall_seconds=5) as api:
        code = _submit("--host", api.host, "--spec", spec, "--request-timeout", "0.3")
    assert code == submit.UNREACHABLE_OR_REJECTED
    assert "did not answer within 0.3 s (--request-timeout)" in capsys.readouterr().err


def test_unreachable_host_is_one_clear_line(env, spec, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    assert _submit("--host", f"http://127.0.0.1:{port}", "--spec", spec) == submit.UNREACHABLE_OR_REJECTED
    assert "(connection refused)" in capsys.readouterr().err


def test_schedule_creates_a_recurring_run_with_the_specs_own_caching(env, spec, capsys):
    with kfp_api_standin.running() as api:
        assert _submit("--host", api.host, "--spec", spec, "--schedule", "0 3 * * *") == submit.OK
    assert not api.runs
    (job,) = api.recurring_runs.values()
    assert job["trigger"]["cron_schedule"]["cron"] == "0 0 3 * * *"
    assert job["runtime_config"]["parameters"]["data_root"] == DATA_ROOT
    assert job["pipeline_version_reference"]["pipeline_id"] in api.pipelines
    assert job["max_concurrency"] == "1" or job["max_concurrency"] == 1
    assert "recurring run" in capsys.readouterr().out
    with kfp_api_standin.running() as api:
        assert _submit("--host", api.host, "--spec", spec, "--schedule", "every day") == exit_codes.USAGE


def test_schedule_again_replaces_its_own_recurring_run_and_no_other(env, spec, capsys):
    with kfp_api_standin.running() as api:
        assert _submit("--host", api.host, "--spec", spec, "--schedule", "0 3 * * *") == submit.OK
        assert _submit("--host", api.host, "--spec", spec, "--pipeline-name", "other", "--schedule",
                       "0 4 * * *") == submit.OK
        (first, other) = api.recurring_runs
        assert _submit("--host", api.host, "--spec", spec, "--schedule", "0 5 * * *") == submit.OK
    jobs = {b["display_name"]: (i, b["trigger"]["cron_schedule"]["cron"]) for i, b in api.recurring_runs.items()}
    assert set(jobs) == {"kubetfx-penguin-schedule", "other-schedule"}
    assert jobs["kubetfx-penguin-schedule"][1] == "0 0 5 * * *" and jobs["kubetfx-penguin-schedule"][0] != first
    assert jobs["other-schedule"] == (other, "0 0 4 * * *")
    assert f"replacing {first}" in capsys.readouterr().out
    # Disabled before the new one exists, deleted after: never two enabled at once.
    order = [(m, p.rsplit("/", 1)[1]) for m, p, _ in api.requests if "/recurringruns" in p and m != "GET"]
    assert order[-3:] == [("POST", f"{first}:disable"), ("POST", "recurringruns"), ("DELETE", first)]


def test_without_an_object_store_endpoint_submit_says_how_to_give_one(env, spec, monkeypatch, capsys):
    monkeypatch.delenv("KUBETFX_OBJECT_STORE_ENDPOINT")
    with kfp_api_standin.running() as api:
        assert _submit("--host", api.host, "--spec", spec) == exit_codes.USAGE
    assert "--object-store-endpoint" in capsys.readouterr().err


def test_missing_spec_and_bad_params_are_usage_errors(tmp_path, spec, capsys):
    assert _submit("--host", "http://127.0.0.1:1", "--spec", tmp_path / "none.yaml") == submit.USAGE
    assert "make compile" in capsys.readouterr().err
    assert _submit("--host", "http://127.0.0.1:1", "--spec", spec, "--param", "novalue") == submit.USAGE


def test_without_the_kfp_sdk_submit_says_which_install_has_it(spec, monkeypatch, capsys):
    # The Python 3.10 lock cannot hold kfp 2 (protobuf cap of TFX 1.16 there): no import, one line.
    monkeypatch.setitem(sys.modules, "kfp", None)
    assert _submit("--host", "http://127.0.0.1:1", "--spec", spec) == submit.USAGE
    err = capsys.readouterr().err
    assert "Python 3.11" in err and "Traceback" not in err


def test_the_stand_in_refuses_at_upload_what_the_apiserver_refuses(spec, tmp_path):
    """Straight through kfp.Client, past submit's own check: the 2.0.0 spec of earlier kubetfx."""
    import kfp

    old = tmp_path / "old.yaml"
    old.write_text(spec.read_text().replace("schemaVersion: 2.1.0", "schemaVersion: 2.0.0"))
    with kfp_api_standin.running() as api:
        client = kfp.Client(host=api.host)
        with pytest.raises(kfp.client.client.kfp_server_api.ApiException) as err:
            client.upload_pipeline(str(old), pipeline_name="kubetfx-penguin")
        client.upload_pipeline(str(spec), pipeline_name="kubetfx-penguin")
    assert err.value.status == 400
    assert "KFP only supports schema version 2.1.0, but the pipeline spec has version 2.0.0" in err.value.body
    assert len(api.pipelines) == 1
