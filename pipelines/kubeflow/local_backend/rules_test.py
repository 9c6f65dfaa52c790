"""The local backend's rules one by one, each against the KFP source it reproduces; no
Docker, no object store (see backend_container_test.py for those)."""
from __future__ import annotations

import copy

import pytest

from kubetfx.pipelines.kubeflow.local_backend import dag, driver, importer, launcher, metadata, retry, versions

V24, V241, V25 = versions.parse("2.4"), versions.parse("2.4.1"), versions.parse("2.5")
EXAMPLES_SCHEMA = "title: tfx.Examples\ntype: object\n"


def small_spec(schema_version="2.1.0"):
    """Two tasks and an importer, shaped as the KFP SDK and kubetfx's compiler write them."""
    return {
        "pipelineInfo": {"name": "tiny"}, "schemaVersion": schema_version, "sdkVersion": "kfp-2.9.0",
        "root": {
            "inputDefinitions": {"parameters": {
                "data_root": {"parameterType": "STRING", "defaultValue": "minio://mlpipeline/data/tiny/"},
                "steps": {"parameterType": "NUMBER_INTEGER", "defaultValue": 3},
                "note": {"parameterType": "STRING", "isOptional": True}}},
            "dag": {"tasks": {
                "data": {"taskInfo": {"name": "data"}, "componentRef": {"name": "comp-data"},
                         "inputs": {"parameters": {"uri": {"componentInputParameter": "data_root"}}}},
                "make": {"taskInfo": {"name": "make"}, "componentRef": {"name": "comp-make"},
                         "dependentTasks": ["data"], "cachingOptions": {"enableCache": True},
                         "retryPolicy": {"maxRetryCount": 2, "backoffDuration": "30s", "backoffFactor": 2.0,
                                         "backoffMaxDuration": "300s"},
                         "inputs": {"parameters": {"steps": {"componentInputParameter": "steps"},
                                                   "label": {"runtimeValue": {"constant": "species"}}},
                                    "artifacts": {"kubetfx_data": {"taskOutputArtifact": {
                                        "producerTask": "data", "outputArtifactKey": "artifact"}}}}},
                "use": {"taskInfo": {"name": "use"}, "componentRef": {"name": "comp-use"},
                        "dependentTasks": ["make"],
                        "inputs": {"artifacts": {"examples": {"taskOutputArtifact": {
                            "producerTask": "make", "outputArtifactKey": "examples"}}}}},
            }}},
        "components": {
            "comp-data": {"executorLabel": "exec-data", "inputDefinitions": {"parameters": {"uri": {"parameterType": "STRING"}}},
                          "outputDefinitions": {"artifacts": {"artifact": {"artifactType": {"schemaTitle": "system.Dataset"}}}}},
            "comp-make": {"executorLabel": "exec-make",
                          "inputDefinitions": {"parameters": {"steps": {"parameterType": "NUMBER_INTEGER"},
                                                              "label": {"parameterType": "STRING"},
                                                              "extra": {"parameterType": "STRING", "defaultValue": "x"}},
                                               "artifacts": {"kubetfx_data": {"artifactType": {"schemaTitle": "system.Dataset"}}}},
                          "outputDefinitions": {"artifacts": {"examples": {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}}}}},
            "comp-use": {"executorLabel": "exec-use",
                         "inputDefinitions": {"artifacts": {"examples": {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}}}},
                         "outputDefinitions": {"artifacts": {"out": {"artifactType": {"schemaTitle": "system.Artifact"}}}}},
        },
        "deploymentSpec": {"executors": {
            "exec-data": {"importer": {"artifactUri": {"runtimeParameter": "uri"},
                                       "typeSchema": {"schemaTitle": "system.Dataset"}}},
            "exec-make": {"container": {"image": "kubetfx/pipeline:0.1.0", "command": ["sh", "-c"], "args": ["{{$}}"]}},
            "exec-use": {"container": {"image": "kubetfx/pipeline:0.1.0", "command": ["sh", "-c"], "args": ["true"]}},
        }},
    }


# ---- driver: parameters ---------------------------------------------------------------
def test_root_defaults_are_filled_and_overrides_type_checked():
    spec = small_spec()
    assert driver.run_parameters(spec, {}) == {"data_root": "minio://mlpipeline/data/tiny/", "steps": 3}
    assert driver.run_parameters(spec, {"steps": 5})["steps"] == 5
    with pytest.raises(driver.DriverError, match="type mismatch: expect NUMBER_INTEGER, got string"):
        driver.run_parameters(spec, {"steps": "5"})
    with pytest.raises(driver.DriverError, match="has no parameter 'stpes'"):
        driver.run_parameters(spec, {"stpes": 5})


def test_task_parameters_strings_take_json_text_and_null_is_refused():
    assert driver.check_parameter("p", 0.6, "STRING") == "0.6"
    assert driver.check_parameter("p", {"a": 1}, "STRING") == '{"a":1}'
    assert driver.check_parameter("p", True, "BOOLEAN") is True
    with pytest.raises(driver.DriverError, match="got null"):
        driver.check_parameter("p", None, "NUMBER_DOUBLE")
    with pytest.raises(driver.DriverError, match="expect BOOLEAN, got number"):
        driver.check_parameter("p", 1, "BOOLEAN")


# ---- driver: the executor input -----------------------------------------------------
def _data_artifact():
    return {"id": 7, "uri": "minio://mlpipeline/data/tiny/", "schema": "title: system.Dataset",
            "custom_properties": {"store_session_info": "{}"}}


@pytest.mark.parametrize("version, logs", [(V24, False), (V241, False), (V25, True)])
def test_executor_input_inputs_as_mlmd_gives_them_outputs_as_declared(version, logs):
    spec = small_spec()
    params = driver.run_parameters(spec, {})
    produced = {("data", "artifact"): _data_artifact()}
    executor_input = driver.executor_input(
        "make", spec["root"]["dag"]["tasks"]["make"], spec["components"]["comp-make"], params,
        lambda task, key: produced.get((task, key)), "minio://mlpipeline/v2/artifacts", "tiny", "run-1", version,
        salt="u1")
    assert executor_input["inputs"]["parameterValues"] == {"steps": 3, "label": "species"}  # default left to the launcher
    assert executor_input["inputs"]["artifacts"]["kubetfx_data"]["artifacts"] == [{
        "name": "7", "uri": "minio://mlpipeline/data/tiny/", "metadata": {"store_session_info": "{}"},
        "type": {"instanceSchema": ""}}]
    outputs = executor_input["outputs"]
    assert outputs["outputFile"] == "/tmp/kfp_outputs/output_metadata.json"
    assert outputs["artifacts"]["examples"]["artifacts"] == [
        {"uri": "minio://mlpipeline/v2/artifacts/tiny/run-1/make/u1/examples", "type": {"instanceSchema": EXAMPLES_SCHEMA}}]
    assert ("executor-logs" in outputs["artifacts"]) is logs
    if logs:
        assert outputs["artifacts"]["executor-logs"]["artifacts"][0] == {
            "uri": "minio://mlpipeline/v2/artifacts/tiny/run-1/make/u1/executor-logs",
            "type": {"schemaTitle": "system.Artifact"}}


def test_a_missing_upstream_output_is_the_driver_s_error():
    spec = small_spec()
    with pytest.raises(driver.DriverError, match="cannot find output artifact key 'examples' in producer task 'make'"):
        driver.resolve_artifacts(spec["root"]["dag"]["tasks"]["use"], lambda task, key: None)


# ---- launcher -----------------------------------------------------------------------------
def test_placeholders_include_defaults_paths_and_go_number_text():
    executor_input = {"inputs": {"parameterValues": {"steps": 3.0, "rate": 0.5, "flag": True},
                                 "artifacts": {"kubetfx_data": {"artifacts": [{"uri": "minio://b/data"}]}}},
                      "outputs": {"artifacts": {"examples": {"artifacts": [{"uri": "s3://b/x/examples"}]}}}}
    component = {"inputDefinitions": {"parameters": {"extra": {"parameterType": "STRING", "defaultValue": "x"}}}}
    found = launcher.placeholders(launcher.add_default_params(executor_input, component))
    assert found["{{$.inputs.parameters['steps']}}"] == "3"
    assert found["{{$.inputs.parameters['rate']}}"] == "0.5"
    assert found["{{$.inputs.parameters['flag']}}"] == "true"
    assert found["{{$.inputs.parameters['extra']}}"] == "x"
    assert found["{{$.inputs.artifacts['kubetfx_data'].path}}"] == "/minio/b/data"
    assert found["{{$.outputs.artifacts['examples'].path}}"] == "/s3/b/x/examples"
    assert '"extra":"x"' in found["{{$}}"] and "extra" not in executor_input["inputs"]["parameterValues"]


def test_the_executor_output_merges_uri_and_metadata_into_the_provisioned_artifact():
    target = {"uri": "minio://b/t/examples", "type": {"instanceSchema": EXAMPLES_SCHEMA}, "metadata": {"a": 1}}
    launcher.merge_runtime_artifacts({"uri": "", "metadata": {"split_names": '["train"]'}}, target)
    assert target == {"uri": "minio://b/t/examples", "type": {"instanceSchema": EXAMPLES_SCHEMA},
                      "metadata": {"a": 1, "split_names": '["train"]'}}
    launcher.merge_runtime_artifacts({"uri": "minio://b/elsewhere"}, target)
    assert target["uri"] == "minio://b/elsewhere"


def test_outputs_are_recorded_with_display_name_and_session_info_and_mlmd_types(tmp_path):
    store = metadata.MetadataStore(tmp_path / "m.sqlite")
    recorded = launcher.record_outputs(store, "tiny", {"examples": {
        "uri": "minio://b/x", "type": {"schemaTitle": "system.Dataset"},
        "metadata": {"n": 1, "ok": True, "splits": ["train"], "spec": {"a": 1}}}})
    artifact = recorded["examples"]
    assert artifact["type"] == "system.Dataset" and artifact["schema"] == "title: system.Dataset"
    # KFP 2.5.0 env.go getDefaultMinioSessionInfo, marshalled by Go (keys sorted)
    session = ('{"Provider":"minio","Params":{"accessKeyKey":"accesskey","disableSSL":"true",'
               '"endpoint":"minio-service.kubeflow:9000","fromEnv":"false","region":"minio",'
               '"secretKeyKey":"secretkey","secretName":"mlpipeline-minio-artifact"}}')
    properties = artifact["custom_properties"]
    assert properties == {"n": 1.0, "ok": 1, "splits": {"list": ["train"]}, "spec": {"struct": {"a": 1}},
                          "display_name": "examples", "store_session_info": session}
    assert type(properties["n"]) is float and type(properties["ok"]) is int  # converter.go StructValueToMLMDValue
    handed_on = metadata.to_runtime_artifact(artifact)["metadata"]
    assert handed_on["ok"] == 1 and handed_on["splits"] == {"list": ["train"]}  # not True, not the bare list
    with pytest.raises(ValueError, match="unknown/unsupported value type NoneType"):
        store.record("tiny", "minio://b/y", "title: system.Dataset", {"gone": None})
    assert metadata.imported_session_info("minio://b/d") == '{"Provider":"minio","Params":{"fromEnv":"true"}}'
    s3 = launcher.record_outputs(store, "tiny", {"x": {"uri": "s3://b/x", "type": {"schemaTitle": "system.Artifact"}}})
    assert s3["x"]["custom_properties"]["store_session_info"] == '{"Provider":"s3","Params":{"fromEnv":"true"}}'


# ---- importer ----------------------------------------------------------------------------------
def test_the_importer_reuses_the_artifact_of_the_same_uri_unless_reimport(tmp_path):
    spec = small_spec()
    store = metadata.MetadataStore(tmp_path / "m.sqlite")
    task, component = spec["root"]["dag"]["tasks"]["data"], spec["components"]["comp-data"]
    imp = spec["deploymentSpec"]["executors"]["exec-data"]["importer"]
    params = driver.run_parameters(spec, {})
    first = importer.run(imp, task, component, params, store, "tiny")["artifact"]
    assert first["uri"] == "minio://mlpipeline/data/tiny/" and first["type"] == "system.Dataset"
    assert importer.run(imp, task, component, params, store, "tiny")["artifact"]["id"] == first["id"]
    assert importer.run({**imp, "reimport": True}, task, component, params, store, "tiny")["artifact"]["id"] != first["id"]
    other = importer.run(imp, task, component, {**params, "data_root": "minio://mlpipeline/data/other/"}, store, "tiny")
    assert other["artifact"]["id"] != first["id"]
    constant = copy.deepcopy(imp)
    constant["artifactUri"] = {"constant": "s3://b/fixed"}
    assert importer.run(constant, task, component, params, store, "tiny")["artifact"]["uri"] == "s3://b/fixed"
    with pytest.raises(driver.DriverError, match="no provider scheme"):
        importer.run(imp, task, component, {**params, "data_root": "/local/path"}, store, "tiny")


# ---- retries ---------------------------------------------------------------------------------------
def test_no_retries_on_2_4_0_argo_s_backoff_from_2_4_1():
    task = small_spec()["root"]["dag"]["tasks"]["make"]
    assert retry.strategy_for(task, V24) == retry.RetryStrategy()
    strategy = retry.strategy_for(task, V241)
    assert strategy == retry.RetryStrategy(limit=2, duration=30, factor=2, max_duration=300)
    assert retry.strategy_for(task, V25) == strategy
    # duration * factor^(attempts - 1): 30 s, then 60 s, then no third retry
    assert strategy.next_wait(1, first_started=0, last_finished=10) == 30
    assert strategy.next_wait(2, first_started=0, last_finished=100) == 60
    assert strategy.next_wait(3, first_started=0, last_finished=200) is None


def test_backoff_stops_at_max_duration_and_the_factor_is_truncated_as_go_does():
    strategy = retry.strategy_for({"retryPolicy": {"maxRetryCount": 5, "backoffDuration": "10.9s",
                                                   "backoffFactor": 1.5, "backoffMaxDuration": "25s"}}, V25)
    assert (strategy.duration, strategy.factor) == (10, 1)
    assert strategy.next_wait(1, first_started=0, last_finished=5) == 10
    assert strategy.next_wait(2, first_started=0, last_finished=20) is None  # 20 + 10 > 25


# ---- the DAG -------------------------------------------------------------------------------------------
def test_independent_tasks_run_side_by_side_and_a_failure_stops_new_launches():
    import threading

    tasks = {"a": {}, "b": {"dependentTasks": ["a"]}, "c": {"dependentTasks": ["a"]}, "d": {"dependentTasks": ["b", "c"]}}
    both_started = threading.Barrier(2, timeout=10)
    ran = []

    def execute(name):
        ran.append(name)
        if name in ("b", "c"):
            both_started.wait()  # fails (BrokenBarrierError) unless b and c run at the same time
    dag.run(tasks, execute, parallelism=2)
    assert ran[0] == "a" and set(ran[1:3]) == {"b", "c"} and ran[3] == "d"

    ran.clear()

    def failing(name):
        ran.append(name)
        if name == "a":
            raise RuntimeError("a failed")
    with pytest.raises(RuntimeError, match="a failed"):
        dag.run(tasks, failing, parallelism=2)
    assert ran == ["a"]


def test_a_cycle_is_refused():
    with pytest.raises(ValueError, match="cycle"):
        dag.run({"a": {"dependentTasks": ["b"]}, "b": {"dependentTasks": ["a"]}}, lambda n: None)
