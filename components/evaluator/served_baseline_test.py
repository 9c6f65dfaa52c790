"""ServedBaseline: the highest served version becomes the baseline Model, in TFX's layout;
nothing served gives an empty Model that the Evaluator reads as "no baseline"."""
from __future__ import annotations

import os

from tfx.types import standard_artifacts

from kubetfx.components.evaluator import executor as evaluator_executor
from kubetfx.components.evaluator import served_baseline
from kubetfx.pipelines.config import PipelineConfig


def _served(serving_dir, version: str, weights: bytes) -> None:
    """A pushed version as the Pusher leaves it (TF Serving layout: <version>/saved_model.pb)."""
    path = serving_dir / version
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"graph of " + version.encode())
    (path / "variables" / "variables.data-00000-of-00001").write_bytes(weights)
    (path / "variables" / "variables.index").write_bytes(b"index")


def _run(serving_dir, output_dir) -> standard_artifacts.Model:
    baseline = standard_artifacts.Model()
    baseline.uri = str(output_dir)
    served_baseline.Executor().Do({"model": []}, {"baseline_model": [baseline]},
                                  {"serving_dir": str(serving_dir)})
    return baseline


def test_the_highest_integer_version_is_copied_in_tfx_model_layout(tmp_path):
    serving = tmp_path / "serving"
    _served(serving, "99", b"old")
    _served(serving, "1700000000", b"newest")
    _served(serving, "200", b"middle")  # numeric order, not text order
    (serving / ".staging-1800000000-12").mkdir()  # a push in progress is not served
    baseline = _run(serving, tmp_path / "out")
    copied = tmp_path / "out" / "Format-Serving"
    assert (copied / "saved_model.pb").read_bytes() == b"graph of 1700000000"
    assert (copied / "variables" / "variables.data-00000-of-00001").read_bytes() == b"newest"
    assert baseline.get_string_custom_property(served_baseline.SERVED_VERSION_PROPERTY) == "1700000000"
    assert served_baseline.has_saved_model(baseline)


def test_nothing_served_gives_an_empty_model_the_evaluator_drops(tmp_path):
    for serving in (tmp_path / "missing", tmp_path / "empty"):
        (tmp_path / "empty").mkdir(exist_ok=True)
        baseline = _run(serving, tmp_path / f"out-{serving.name}")
        assert os.listdir(baseline.uri) == [served_baseline.NOTHING_SERVED_FILE]  # exists in any object store
        assert not served_baseline.has_saved_model(baseline)
        inputs = {"model": ["candidate"], "baseline_model": [baseline]}
        assert evaluator_executor.without_empty_baseline(inputs) == {"model": ["candidate"]}


def test_a_served_baseline_is_kept_for_the_evaluator(tmp_path):
    _served(tmp_path / "serving", "5", b"w")
    baseline = _run(tmp_path / "serving", tmp_path / "out")
    inputs = {"model": ["candidate"], "baseline_model": [baseline]}
    assert evaluator_executor.without_empty_baseline(inputs) is inputs


def test_the_pipeline_feeds_the_evaluator_from_the_pushers_serving_directory(tmp_path):
    from kubetfx.pipelines import pipeline

    config = PipelineConfig(home=str(tmp_path), task="classification")
    components = {c.id: c for c in pipeline.create_components(config)}
    baseline = components[served_baseline.NODE_ID]
    pusher = components["Pusher"]
    assert baseline.exec_properties["serving_dir"] == str(config.serving_dir)
    assert str(config.serving_dir) in pusher.exec_properties["push_destination"]
    assert components["Evaluator"].inputs["baseline_model"].producer_component_id == served_baseline.NODE_ID
    assert baseline.inputs["model"].producer_component_id == "Trainer"
    assert not any(type(c).__name__ == "Resolver" for c in components.values())


def test_the_run_summary_says_which_version_is_the_baseline(tmp_path):
    from kubetfx.components import stage_outputs

    nothing = _run(tmp_path / "none", tmp_path / "out-none")
    assert stage_outputs.describe(served_baseline.NODE_ID, {"Model": nothing.mlmd_artifact}) == (
        "baseline: nothing served yet (no comparison)")
    _served(tmp_path / "serving", "42", b"w")
    served = _run(tmp_path / "serving", tmp_path / "out")
    assert stage_outputs.describe(served_baseline.NODE_ID, {"Model": served.mlmd_artifact}) == (
        "baseline: served version 42")


def test_what_is_served_when_the_pipeline_is_built_is_in_the_local_cache_key(tmp_path):
    """A push or rollback between two runs must re-run ServedBaseline even when the Trainer
    is cached (a new threshold re-evaluating the same model compares with what is served)."""
    from kubetfx.pipelines import pipeline

    config = PipelineConfig(home=str(tmp_path), task="classification")

    def served_at_build():
        components = {c.id: c for c in pipeline.create_components(config)}
        return components[served_baseline.NODE_ID].exec_properties.get(served_baseline.SERVED_AT_BUILD_KEY)

    assert not served_at_build()
    _served(config.serving_dir, "1700000000", b"w1")
    assert served_at_build() == "1700000000"
    _served(config.serving_dir, "1700000100", b"w2")
    assert served_at_build() == "1700000100"


def test_kfp_never_caches_the_baseline_lookup_but_caches_the_stages():
    """KFP's cache key cannot see the serving volume (v2/cacheutils/cache.go), so the task
    that reads it is never cached in the compiled spec; the stages before it are."""
    import yaml

    golden = os.path.join(os.path.dirname(__file__), "..", "..", "pipelines", "testdata",
                          "kubetfx-penguin.golden.yaml")
    with open(golden) as f:
        spec = next(yaml.safe_load_all(f))
    tasks = spec["root"]["dag"]["tasks"]
    assert tasks[served_baseline.NODE_ID]["cachingOptions"] == {"enableCache": False}
    assert tasks["Trainer"]["cachingOptions"] == {"enableCache": True}


def test_a_torn_version_above_the_served_one_is_never_the_baseline(tmp_path):
    serving = tmp_path / "serving"
    _served(serving, "5", b"good")
    torn = serving / "6"  # a graph with weights whose variables/ is gone (a killed copy)
    torn.mkdir()
    (torn / "saved_model.pb").write_bytes(b"graph with a VarHandleOp")
    baseline = _run(serving, tmp_path / "out")
    assert baseline.get_string_custom_property(served_baseline.SERVED_VERSION_PROPERTY) == "5"
    assert (tmp_path / "out" / "Format-Serving" / "saved_model.pb").read_bytes() == b"graph of 5"


def test_the_baseline_is_what_everybody_is_served_not_a_candidate_on_disk(tmp_path):
    """During a staged rollout and after its abort the highest version is the candidate;
    the Evaluator must compare with the stable one everybody meets."""
    from dataclasses import replace

    from kubetfx.components.serving import rollout_state

    serving = tmp_path / "serving"
    _served(serving, "5", b"stable")
    _served(serving, "6", b"candidate")
    running = rollout_state.RolloutState.begin(5, 6, plan=[10, 100], key="header")
    rollout_state.write(serving, running)
    baseline = _run(serving, tmp_path / "during")
    assert baseline.get_string_custom_property(served_baseline.SERVED_VERSION_PROPERTY) == "5"
    rollout_state.write(serving, replace(running, status="aborted", candidate_percent=0.0))
    baseline = _run(serving, tmp_path / "aborted")
    assert baseline.get_string_custom_property(served_baseline.SERVED_VERSION_PROPERTY) == "5"
    _served(serving, "7", b"a later push")  # supersedes the finished rollout
    baseline = _run(serving, tmp_path / "later")
    assert baseline.get_string_custom_property(served_baseline.SERVED_VERSION_PROPERTY) == "7"
