"""The loop after the push on data that looks like production, not like the penguins
(issue 22, "Must show"): a table with ~3% empty cells, an integer customer id and a sign-up
date; new data that arrives without the label; requests that leave a gappy field out.

One run for the module: train and push, then `monitor --data` on new unlabelled rows and
`monitor --logs` after healthy requests to `kubetfx serve` must both stay quiet (exit 0),
while shifted data must alarm (exit 11). Demo data hides what this shows."""
from __future__ import annotations

import csv
import datetime
import json
import random
import time
from pathlib import Path

import pytest

from serve_process import ServeProcess

pytestmark = [pytest.mark.slow]
NAME = "churn"
LABEL = "churned"
PLANS = ["basic", "plus", "pro"]
REGIONS = ["north", "south", "east", "west"]
GAPPY = ("age", "monthly_spend", "plan")  # columns with ~3% empty cells


def _rows(n: int, seed: int, first_id: int = 100_000, spend_shift: float = 0.0) -> list[dict]:
    """Customers whose churn depends on spend, tenure and plan, so a model can learn it."""
    rng = random.Random(seed)
    start = datetime.date(2021, 1, 1)
    rows = []
    for i in range(n):
        age = rng.randint(18, 80)
        spend = round(rng.gauss(60, 20) + spend_shift, 2)
        plan = rng.choice(PLANS)
        tenure = rng.randint(1, 72)
        score = 0.04 * (60 - spend) + 0.05 * (24 - tenure) + (1.0 if plan == "basic" else -0.5)
        row = {"customer_id": first_id + i, "signup_date": (start + datetime.timedelta(days=rng.randrange(900))).isoformat(),
               "age": age, "monthly_spend": spend, "plan": plan, "tenure_months": tenure,
               "region": rng.choice(REGIONS), LABEL: "yes" if score + rng.gauss(0, 0.5) > 0 else "no"}
        for column in GAPPY:
            if rng.random() < 0.03:
                row[column] = ""
        rows.append(row)
    return rows


def _write(path: Path, rows: list[dict], *, label: bool = True) -> Path:
    fields = [f for f in rows[0] if label or f != LABEL]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _instance(row: dict) -> dict:
    """A request as a client sends it: gaps left out, numbers as numbers, no label."""
    kinds = {"customer_id": int, "age": int, "monthly_spend": float, "tenure_months": int}
    return {k: kinds.get(k, str)(v) for k, v in row.items() if v != "" and k != LABEL}


@pytest.fixture(scope="module")
def home(tmp_path_factory, run_kubetfx):
    home = tmp_path_factory.mktemp("churn-home")
    data = _write(home.parent / "customers.csv", _rows(1500, seed=11))
    result = run_kubetfx("run", "--home", home, "--name", NAME, "--data", data, "--label", LABEL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list((home / "serving" / NAME).glob("*/saved_model.pb")), result.stdout
    return home


def test_the_integer_id_is_named_an_identifier_and_not_fed_to_the_model(home):
    from kubetfx.pipelines.record import mlmd
    store = mlmd.open_store(home / "metadata" / f"{NAME}.sqlite")
    transform_types = {t.id for t in store.get_execution_types() if t.name.endswith("Transform")}
    (transform,) = [e for e in store.get_executions() if e.type_id in transform_types]
    roles = json.loads(transform.custom_properties["custom_config"].string_value)["column_roles"]
    assert roles["identifiers"] == ["customer_id"] and roles["datetimes"] == ["signup_date"], roles


def test_monitor_on_new_unlabelled_rows_of_the_same_distribution_exits_0(home, run_kubetfx, tmp_path):
    data = _write(tmp_path / "new.csv", _rows(400, seed=12, first_id=300_000), label=False)
    result = run_kubetfx("monitor", "--home", home, "--name", NAME, "--data", data)
    assert result.returncode == 0, result.stdout + result.stderr
    assert LABEL not in result.stdout.replace(f"label {LABEL}", ""), result.stdout


def test_monitor_on_shifted_unlabelled_rows_exits_11(home, run_kubetfx, tmp_path):
    data = _write(tmp_path / "shifted.csv", _rows(400, seed=13, first_id=400_000, spend_shift=60), label=False)
    result = run_kubetfx("monitor", "--home", home, "--name", NAME, "--data", data)
    assert result.returncode == 11, result.stdout + result.stderr
    assert "monthly_spend" in result.stderr


class _Server(ServeProcess):
    """`kubetfx serve` on the churn home, waited for until a version answers."""

    def __init__(self, home, tmp_path):
        super().__init__(home, tmp_path, NAME)
        deadline = time.monotonic() + 180
        while self.post({"instances": [_instance(_rows(1, seed=0)[0])]})[0] != 200:  # a version loaded
            assert time.monotonic() < deadline, self.log_path.read_text()
            time.sleep(0.5)


def test_healthy_requests_are_answered_and_monitor_logs_exits_0(home, run_kubetfx, tmp_path):
    server = _Server(home, tmp_path)
    try:
        rows = _rows(300, seed=14, first_id=500_000)
        assert any(v == "" for row in rows for v in row.values())  # some requests leave fields out
        for start in range(0, len(rows), 25):
            status, answer = server.post({"instances": [_instance(r) for r in rows[start:start + 25]]})
            assert status == 200, answer
            assert len(answer["predictions"]) == len(rows[start:start + 25])
        # A misspelled feature is refused by name, not answered with a meaningless prediction.
        bad = dict(_instance(rows[0]), monthly_spnd=12.0)
        status, answer = server.post({"instances": [bad]})
        assert status == 400 and "monthly_spnd" in answer["error"], answer
    finally:
        server.stop()
    result = run_kubetfx("monitor", "--home", home, "--name", NAME, "--logs")
    assert result.returncode == 0, result.stdout + result.stderr
