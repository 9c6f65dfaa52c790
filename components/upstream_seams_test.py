"""The private upstream names resolve on the pinned libraries, and one that is gone or
reshaped is one log line and None (the caller's cue to take the stock path)."""
import importlib

import pytest

from kubetfx.components import upstream_seams

LIBRARIES = {"tfdv": upstream_seams.TFDV, "tfma": upstream_seams.TFMA,
             "tensorflow": upstream_seams.TENSORFLOW, "tfx": upstream_seams.TFX}


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_every_name_resolves_on_the_pinned_versions(library):
    found = getattr(upstream_seams, library)()
    assert found is not None and set(vars(found)) == set(LIBRARIES[library])
    assert all(callable(value) for value in vars(found).values())


@pytest.mark.parametrize("library", sorted(LIBRARIES))
def test_a_name_gone_is_one_log_line_and_none(library, monkeypatch, caplog):
    key, (module, attribute, _) = next(iter(LIBRARIES[library].items()))
    owner = importlib.import_module(module)
    *path, last = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    monkeypatch.delattr(owner, last)
    with caplog.at_level("WARNING"):
        assert getattr(upstream_seams, library)() is None
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("kubetfx:")]
    assert len(lines) == 1 and f"{module}.{attribute} is gone" in lines[0], lines


def test_a_reshaped_name_is_one_log_line_and_none(monkeypatch, caplog):
    from tensorflow_model_analysis.writers import eval_config_writer

    monkeypatch.setattr(eval_config_writer, "_serialize_eval_run", lambda eval_config, location: "")
    with caplog.at_level("WARNING"):
        assert upstream_seams.tfma() is None
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("kubetfx:")]
    assert len(lines) == 1 and "_serialize_eval_run takes ('eval_config', 'location')" in lines[0], lines


def test_the_infra_validator_defaults_are_tfx_1_16_s_and_survive_a_move(monkeypatch, caplog):
    from tfx.components.infra_validator import executor

    assert vars(upstream_seams.tfx_infra_validator_defaults()) == upstream_seams.TFX_1_16_INFRA_VALIDATOR
    monkeypatch.delattr(executor, "_DEFAULT_NUM_TRIES")
    with caplog.at_level("WARNING"):
        assert vars(upstream_seams.tfx_infra_validator_defaults()) == upstream_seams.TFX_1_16_INFRA_VALIDATOR
    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("kubetfx:")] == [
        "kubetfx: InfraValidator: tfx.components.infra_validator.executor._DEFAULT_NUM_TRIES is gone "
        "(an upgrade moved it): TFX 1.16's defaults (5 tries, 300 s, 1 s) apply"]


def test_tft_names_resolve_on_the_pinned_version():
    found = upstream_seams.tft()
    assert found is not None and set(vars(found)) == set(upstream_seams.TFT) | {"TENSOR_REPLACEMENTS"}
    assert found.TENSOR_REPLACEMENTS == "tft_tensor_replacements"
