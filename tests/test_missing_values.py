"""Missing means missing, from the CSV gap to the served request: a real run on a table with
empty cells, then the served model asked twice about the same rows, once with the
tf.Examples ExampleGen wrote and once as a client asks (a feature dict that leaves the
empty cells out). Both must be the same input to the model, so the same prediction."""
from __future__ import annotations

import base64
import csv
import glob
import json
import random
import urllib.request

import numpy as np
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.serving]

LABEL = "kind"
COLOURS = ["red", "green", "blue"]
REGIONS = ["north", "south"]


def _table(path, rows: int = 300, seed: int = 5):
    """A classification table with empty cells in a float, an int and a string column
    (5-10% each) and none in the other; the label follows size and colour and is empty in
    about 4% of the rows (drawn apart, so the other cells are as they were)."""
    rng, unlabeled = random.Random(seed), random.Random(seed + 1)
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["size", "count", "colour", "region", LABEL])
        for _ in range(rows):
            size, count, colour = round(rng.uniform(0, 10), 3), rng.randrange(1, 50), rng.choice(COLOURS)
            kind = "big" if size > 6 else "blue" if colour == "blue" else "small"
            out.writerow(["" if rng.random() < 0.08 else size, "" if rng.random() < 0.06 else count,
                          "" if rng.random() < 0.05 else colour, rng.choice(REGIONS),
                          "" if unlabeled.random() < 0.04 else kind])
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory, run_kubetfx):
    """(home, pipeline name, the CSV's rows) after a run that pushed a model."""
    folder = tmp_path_factory.mktemp("gaps")
    data = _table(folder / "gaps.csv")
    config = folder / "config.yaml"
    config.write_text("max_epochs: 10\n")
    home = folder / "home"
    result = run_kubetfx("run", "--home", home, "--data", data, "--label", LABEL, "--config", config,
                         "--eval-threshold", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    (name,) = [p.name for p in (home / "serving").iterdir()]
    with open(data, newline="") as f:
        return home, name, list(csv.DictReader(f))


def test_rows_without_a_label_are_no_class(run):
    """An empty label cell was the class "": the model learned to answer "no label"."""
    home, name, rows = run
    assert sum(row[LABEL] == "" for row in rows) >= 5
    (vocabulary,) = glob.glob(str(home / "pipelines" / name / "Transform" / "transform_graph" / "*"
                                  / "transform_fn" / "assets" / "label"))
    with open(vocabulary, encoding="utf-8") as f:
        classes = f.read().splitlines()
    assert sorted(classes) == ["big", "blue", "small"]


def _written_examples(home, name: str) -> list:
    """Every tf.Example ExampleGen wrote (both splits), serialized as written."""
    import tensorflow as tf

    files = sorted(glob.glob(str(home / "pipelines" / name / "*ExampleGen" / "examples" / "*" / "Split-*" / "*.gz")))
    assert files
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _values(example) -> dict:
    """{feature: its values}, whatever the representation of a missing value (rows are
    paired by what they hold; the tests then compare representations)."""
    features = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind and getattr(feature, kind).value:
            features[name] = tuple(getattr(feature, kind).value)
    return features


def _request_instance(row: dict) -> dict:
    """The row as a client sends it: numbers as JSON numbers, an empty cell left out."""
    instance = {}
    for name, text in row.items():
        if name == LABEL or text == "":
            continue
        instance[name] = text if name in ("colour", "region") else float(text) if name == "size" else int(text)
    return instance


def _same_row(example, instance: dict) -> bool:
    values = {n: v for n, v in _values(example).items() if n != LABEL}
    if set(values) != set(instance):
        return False
    for name, value in instance.items():
        (written,) = values[name]
        if isinstance(value, str) and written != value.encode() or \
                not isinstance(value, str) and not np.isclose(written, value, rtol=1e-6):
            return False
    return True


@pytest.fixture(scope="module")
def rows_both_ways(run):
    """[(serialized Example as ExampleGen wrote it, the same CSV row as a request instance)]
    for every row of the table."""
    import tensorflow as tf

    home, name, rows = run
    pairs, unmatched = [], [_request_instance(r) for r in rows]
    for record in _written_examples(home, name):
        example = tf.train.Example.FromString(record)
        index = next(i for i, instance in enumerate(unmatched) if _same_row(example, instance))
        pairs.append((record, unmatched.pop(index)))
    assert not unmatched and len(pairs) == len(rows)
    return pairs


@pytest.fixture(scope="module")
def served(run):
    from kubetfx.components.serving import model_server

    home, name, _ = run
    server = model_server.ModelServer(str(home / "serving" / name), name, poll_seconds=0.5)
    port = server.start(0)
    assert server.wait_until_available(120) is not None
    yield f"http://127.0.0.1:{port}/v1/models/{name}:predict"
    server.shutdown()


def _predict(url: str, instances: list) -> np.ndarray:
    body = json.dumps({"instances": instances}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200
        return np.array([p["probabilities"] for p in json.loads(response.read())["predictions"]])


def test_a_gap_is_written_as_the_request_that_leaves_the_field_out_writes_it(rows_both_ways):
    """ExampleGen's Example of a row with an empty cell is, but for the label, the very
    Example the server builds from a request that leaves that field out."""
    import tensorflow as tf

    from kubetfx.components.serving import rest_api

    types = {"size": "float", "count": "int64", "colour": "string", "region": "string"}
    gapped = 0
    for record, instance in rows_both_ways:
        written = tf.train.Example.FromString(record)
        if LABEL in written.features.feature:  # an empty label cell is no feature either
            del written.features.feature[LABEL]
        requested = tf.train.Example.FromString(rest_api.example_from_features(instance, types))
        assert written == requested, (instance, written)
        gapped += len(instance) < 4
    assert gapped >= 30  # ~18% of the 300 rows have an empty cell


def test_a_request_that_leaves_a_field_out_gets_the_prediction_of_the_row_with_that_cell_empty(
        rows_both_ways, served):
    records = [{"b64": base64.b64encode(record).decode()} for record, _ in rows_both_ways]
    as_trained = _predict(served, records)
    as_requested = _predict(served, [instance for _, instance in rows_both_ways])
    assert as_trained.shape == (len(rows_both_ways), 3)
    np.testing.assert_allclose(as_requested, as_trained, rtol=1e-6, atol=1e-7)
    gaps = [i for i, (_, instance) in enumerate(rows_both_ways) if len(instance) < 4]
    # The rows with gaps are predicted, not refused, and not all alike (the model reads them).
    assert len(gaps) >= 30 and len({tuple(np.round(p, 4)) for p in as_requested[gaps]}) > 5


def test_the_transform_fills_a_gap_with_the_mean_or_the_empty_string_token(run, rows_both_ways):
    """Inside the served model: a missing number is 0 after scaling (the mean), a missing
    string takes the "" token's id, the same for the request as for the written Example."""
    import tensorflow as tf

    from kubetfx.components.serving import rest_api

    home, name, _ = run
    version = sorted(glob.glob(str(home / "serving" / name / "*")))[-1]
    transform = tf.saved_model.load(version).signatures["transform_features"]
    types = {"size": "float", "count": "int64", "colour": "string", "region": "string"}
    records = [record for record, _ in rows_both_ways]
    requests = [rest_api.example_from_features(instance, types) for _, instance in rows_both_ways]
    written = {k: v.numpy() for k, v in transform(examples=tf.constant(records)).items()}
    requested = {k: v.numpy() for k, v in transform(examples=tf.constant(requests)).items()}
    for name in ("size", "count", "colour", "region"):
        np.testing.assert_array_equal(requested[name], written[name], err_msg=name)
    for name in ("size", "count"):
        missing = [i for i, (_, instance) in enumerate(rows_both_ways) if name not in instance]
        assert missing and np.all(written[name].reshape(-1)[missing] == 0.0), name
    missing_colour = [i for i, (_, instance) in enumerate(rows_both_ways) if "colour" not in instance]
    present_ids = {int(written["colour"].reshape(-1)[i]) for i, (_, instance) in enumerate(rows_both_ways)
                   if "colour" in instance}
    assert missing_colour and len({int(written["colour"].reshape(-1)[i]) for i in missing_colour}) == 1
    assert int(written["colour"].reshape(-1)[missing_colour[0]]) not in present_ids
