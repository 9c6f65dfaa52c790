"""Same data, same command, same model (issue 22, item 8): a re-run of `kubetfx run` on an
unchanged file is a cache hit at every stage and pushes nothing; new data is still checked
against the served model's schema. Real runs, real ML Metadata."""
from __future__ import annotations

import os
import random

import pytest

from conftest import executions_by_stage

NAME = "kubetfx-customers"
STAGES = ("CsvExampleGen", "StatisticsGen", "ExampleValidator", "Transform", "Trainer", "ServedBaseline",
          "Evaluator", "InfraValidator", "Pusher")


def _write(path, rows: int, seed: int):
    rng = random.Random(seed)
    lines = ["customer_id,age,spend,city,churned"]
    for i in range(rows):
        age, spend = rng.randint(18, 80), round(rng.gauss(50, 15), 2)
        lines.append(f"{1000 + 7 * i},{age},{spend},{rng.choice(['oslo', 'rome', 'lima'])},"
                     f"{'yes' if spend + age / 3 > 65 else 'no'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _versions(home):
    return sorted(os.listdir(home / "serving" / NAME))


def _last_states(home) -> dict:
    return {stage: states[-1] for stage, states in executions_by_stage(home / "metadata" / f"{NAME}.sqlite").items()}


@pytest.mark.slow
@pytest.mark.serving
def test_a_rerun_on_unchanged_data_is_all_cached_and_pushes_nothing(tmp_path, run_kubetfx):
    home, data = tmp_path / "home", _write(tmp_path / "customers.csv", 300, seed=1)
    command = ("run", "--home", home, "--data", data, "--label", "churned")
    first = run_kubetfx(*command)
    assert first.returncode == 0, first.stdout + first.stderr
    (version,) = _versions(home)

    second = run_kubetfx(*command)
    assert second.returncode == 0, second.stdout + second.stderr
    states = executions_by_stage(home / "metadata" / f"{NAME}.sqlite")
    for stage in (*STAGES, "SchemaGen"):
        assert states[stage] == ["COMPLETE", "CACHED"], (stage, states)
    assert "ImportSchemaGen" not in states
    assert _versions(home) == [version]
    assert f"kubetfx: nothing new: serving version {version}" in second.stdout
    assert "model pushed to" not in second.stdout

    # New data is validated against the schema of the model served now (ImportSchemaGen);
    # running that same command again is all cached too.
    _write(data, 330, seed=2)
    third = run_kubetfx(*command)
    assert third.returncode in (0, 4), third.stdout + third.stderr  # pushed, or not better
    assert _last_states(home)["ImportSchemaGen"] == "COMPLETE" and _last_states(home)["Transform"] == "COMPLETE"
    served = _versions(home)
    fourth = run_kubetfx(*command)
    assert fourth.returncode == third.returncode, fourth.stdout + fourth.stderr
    last = _last_states(home)
    assert all(last[stage] == "CACHED" for stage in (*STAGES, "ImportSchemaGen")), last
    assert _versions(home) == served
