"""A staged rollout end to end on loopback (issue 26, "Proof here"): v1 trained and served;
v2, trained on labels corrupted upstream (Adelie and Gentoo swapped in its CSV, so its own
evaluation blesses it), pushed as a candidate at 10% by `kubetfx run` in staged mode; a
bounded load generator sends keyed requests to `kubetfx serve`; the observed split is
within a binomial 99.9% bound; the true outcomes are fed back (`kubetfx feedback`) and
`kubetfx rollout --auto` aborts v2 on them, after which stable answers everybody; v3,
trained on the true labels, is promoted through every step; `kubetfx models` shows both
histories and ML Metadata holds every decision, linked to the candidate's PushedModel.

One module fixture trains all three (three small penguin runs) and keeps one server."""
from __future__ import annotations

import concurrent.futures
import csv
import json
import math
import random
import re
import time
import urllib.request
import uuid

import pytest

from serve_process import ServeProcess
from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.serving]
NAME = "penguin-rollout"
PENGUINS = REPO / "pipelines" / "data" / "penguins" / "penguins.csv"
PLAN = [10, 25, 50, 100]
MIN_SAMPLES = 100
MAX_REQUESTS_PER_ROUND = 1500   # the load generator's bound
ROUNDS_PER_STEP = 4             # a step that stays inconclusive this long fails the test


def _rows() -> list[dict]:
    with open(PENGUINS, newline="") as f:
        return list(csv.DictReader(f))


def _write(path, rows) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def _swapped(rows) -> list[dict]:
    swap = {"Adelie": "Gentoo", "Gentoo": "Adelie"}
    return [{**r, "species": swap.get(r["species"], r["species"])} for r in rows]


def _instance(row: dict) -> dict:
    numbers = {"bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"}
    return {k: (float(v) if k in numbers else int(v) if k == "year" else v)
            for k, v in row.items() if k != "species" and v not in ("", "NA")}


class Traffic:
    """Bounded load: `n` requests, one instance each, 4 at a time, each with its own
    X-Request-Key (a caller) and X-Request-Id; answers kept as (id, key, truth, status,
    version, track)."""

    def __init__(self, url: str, rows: list[dict], seed: int):
        self.url, self.rows, self.rng = url, rows, random.Random(seed)

    def send(self, n: int) -> list[tuple]:
        jobs = [(uuid.uuid4().hex, f"caller-{uuid.uuid4().hex[:12]}", self.rng.choice(self.rows)) for _ in range(n)]
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            return list(pool.map(self._one, jobs, timeout=600))

    def _one(self, job) -> tuple:
        request_id, key, row = job
        body = json.dumps({"instances": [_instance(row)]}).encode()
        request = urllib.request.Request(self.url + ":predict", body,
                                         headers={"X-Request-Id": request_id, "X-Request-Key": key})
        with urllib.request.urlopen(request, timeout=60) as answer:
            return (request_id, key, row["species"], answer.status, int(answer.headers["X-Model-Version"]),
                    answer.headers.get("X-Model-Track"))


@pytest.fixture(scope="module")
def world(tmp_path_factory, run_kubetfx):
    base = tmp_path_factory.mktemp("rollout")
    home = base / "home"
    config = base / "config.yaml"
    config.write_text(json.dumps({
        "name": NAME, "home": str(home), "label": "species", "change_tolerance": 0.2,
        "rollout": {"mode": "staged", "plan": PLAN, "min_samples": MIN_SAMPLES, "max_metric_loss": 0.05}}))
    rows = _rows()
    runs = {}

    def run(tag: str, data_rows) -> int:
        result = run_kubetfx("run", "--config", config, "--label", "species",
                             "--data", _write(base / f"{tag}.csv", data_rows))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        runs[tag] = result.stdout
        return max(int(p.name) for p in (home / "serving" / NAME).iterdir() if p.name.isdigit())

    v1 = run("v1", rows)
    server = ServeProcess(home, base, NAME)
    try:
        yield {"home": home, "config": config, "base": base, "rows": rows, "server": server, "run": run,
               "v1": v1, "runs": runs}
    finally:
        server.stop()


def _rollout(run_kubetfx, world, *args) -> dict:
    result = run_kubetfx("rollout", *args, "--config", world["config"], "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _feed(run_kubetfx, world, answers, tag: str) -> dict:
    path = world["base"] / f"labels-{tag}.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["request_id", "label"])
        writer.writerows((a[0], a[2]) for a in answers)
    result = run_kubetfx("feedback", path, "--home", world["home"], "--name", NAME, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def _split_bound(n: int, p: float) -> float:
    return 3.29 * math.sqrt(p * (1 - p) / n)  # two-sided 99.9% normal bound on a binomial share


def _round_until_decided(run_kubetfx, world, traffic, state: dict, tag: str) -> dict:
    """Sends enough requests for MIN_SAMPLES labelled candidate answers at this step, feeds
    the outcomes back, applies the rule; again while it waits (bounded)."""
    for attempt in range(ROUNDS_PER_STEP):
        n = min(MAX_REQUESTS_PER_ROUND, int(1.4 * MIN_SAMPLES * 100 / state["candidate_percent"]) + 50)
        answers = traffic.send(n)
        assert all(a[3] == 200 for a in answers)
        tracks = {track: {a[4] for a in answers if a[5] == track} for track in ("stable", "candidate")}
        assert tracks == {"stable": {state["stable"]}, "candidate": {state["candidate"]}}, tracks
        _feed(run_kubetfx, world, answers, f"{tag}-{attempt}")
        out = _rollout(run_kubetfx, world, "--auto")
        if out["decision"] != "wait":
            return {**out, "answers": answers}
    pytest.fail(f"the rule still waits after {ROUNDS_PER_STEP} rounds: {out['evidence']}")


def test_a_corrupted_candidate_is_aborted_and_a_good_one_promoted(world, run_kubetfx):
    home, server, v1 = world["home"], world["server"], world["v1"]
    traffic = Traffic(server.url, world["rows"], seed=26)

    # v2: the labels swapped upstream; the push becomes a candidate at 10%, v1 stays stable
    v2 = world["run"]("v2", _swapped(world["rows"]))
    assert v2 > v1
    assert f"version {v2} is the candidate for 10% of callers beside stable {v1}" in world["runs"]["v2"]
    state = _rollout(run_kubetfx, world, "status")["state"]
    assert (state["stable"], state["candidate"], state["candidate_percent"]) == (v1, v2, 10.0)

    outcome = _round_until_decided(run_kubetfx, world, traffic, state, "v2")
    answers = outcome["answers"]
    on_candidate = sum(a[5] == "candidate" for a in answers)
    assert {a[4] for a in answers if a[5] == "candidate"} == {v2}
    assert {a[4] for a in answers if a[5] == "stable"} == {v1}
    assert abs(on_candidate / len(answers) - 0.10) <= _split_bound(len(answers), 0.10), on_candidate
    assert outcome["decision"] == "abort", outcome["evidence"]
    evidence = outcome["evidence"]
    assert evidence["candidate"]["labelled"] >= MIN_SAMPLES and evidence["stable"]["labelled"] >= MIN_SAMPLES
    assert evidence["candidate"]["metric"] < evidence["stable"]["metric"] - 0.3
    assert 0 <= evidence["js_distance"] <= 1  # similar class shares: swapping two moves little
    assert (outcome["state"]["status"], outcome["state"]["candidate_percent"]) == ("aborted", 0.0)

    # after the abort stable answers everybody (the server re-reads the state every poll)
    deadline = time.monotonic() + 30
    while {a[4] for a in traffic.send(50)} != {v1}:
        assert time.monotonic() < deadline, "requests still reach the aborted candidate"

    # v3: the true labels again; a candidate beside v1 (not beside the aborted v2)
    v3 = world["run"]("v3", list(reversed(world["rows"])))
    assert v3 > v2
    state = _rollout(run_kubetfx, world, "status")["state"]
    assert (state["stable"], state["candidate"], state["status"]) == (v1, v3, "running")
    percents = [state["candidate_percent"]]
    while True:
        outcome = _round_until_decided(run_kubetfx, world, traffic, state, f"v3-{len(percents)}")
        assert outcome["decision"] in ("advance", "promote"), outcome["evidence"]
        state = outcome["state"]
        if outcome["decision"] == "promote":
            break
        percents.append(state["candidate_percent"])
    assert percents == PLAN[:-1]
    assert (state["status"], state["stable"]) == ("promoted", v3)
    deadline = time.monotonic() + 30
    while {a[4] for a in traffic.send(50)} != {v3}:
        assert time.monotonic() < deadline, "the promoted version does not answer everybody"

    # the history: in `kubetfx models` and in ML Metadata, linked to each candidate's push
    result = run_kubetfx("models", "--home", home, "--name", NAME)
    assert result.returncode == 0, result.stderr
    waits = r"(, \d+% wait( x\d+)?)?"
    assert re.search(rf"rollout: 10% start{waits}, 10% abort\n", result.stdout), result.stdout
    assert re.search(rf"rollout: 10% start{waits}, 25% advance{waits}, 50% advance{waits}, 100% promote\n",
                     result.stdout), result.stdout
    page = world["base"] / "report.html"
    result = run_kubetfx("report", "--home", home, "--name", NAME, "--output", page)
    assert result.returncode == 0, result.stderr
    assert re.search(rf"Staged rollout: 10% start{waits}, 25% advance", page.read_text()), "no rollout in the report"
    from kubetfx.pipelines.record import rollout_history

    decisions = rollout_history.from_metadata(home / "metadata" / f"{NAME}.sqlite", NAME)
    assert [(d["candidate"], d["decision"]) for d in decisions if d["decision"] != "wait"] == [
        (str(v2), "start"), (str(v2), "abort"),
        (str(v3), "start"), (str(v3), "advance"), (str(v3), "advance"), (str(v3), "promote")]
    assert all(d["pushed_model_id"] is not None for d in decisions)
    abort = next(d for d in decisions if d["decision"] == "abort")
    assert abort["evidence"]["decision"]["upper"] < -0.05
