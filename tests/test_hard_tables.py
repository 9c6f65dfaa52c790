"""Tables that broke a run (issue 23), each one real run: Unicode names and values train and
push; 1,000 classes over 5,000 rows are refused up front, or with --on-anomalies warn train
without the Trainer crashing on classes only the eval split has; the module-file template
`kubetfx init-module` writes trains as it is."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from conftest import executions_by_stage
from testing_models import serialized_example

pytestmark = pytest.mark.slow

VILLES = ["Île", "日本語", "Montréal", "Zürich"]


@pytest.fixture(scope="module")
def unicode_table(tmp_path_factory) -> Path:
    """300 rows: a categorical column named 'Île' with non-ASCII values, 'prix €' and
    'größe' numbers, a label 'espèce' with accented classes that the columns predict."""
    rnd = random.Random(0)
    lines = ["Île,prix €,größe,espèce"]
    for _ in range(300):
        ville, prix = rnd.choice(VILLES), round(rnd.uniform(0, 10), 2)
        label = "élevé" if prix + (3 if ville == "日本語" else 0) > 6 else "bas"
        lines.append(f"{ville},{prix},{rnd.randint(1, 100)},{label}")
    path = tmp_path_factory.mktemp("unicode") / "villes.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _pushed(home: Path, name: str) -> list:
    folder = home / "serving" / name
    return sorted(folder.iterdir()) if folder.exists() else []


def _predict(version: Path, rows: list) -> list:
    import tensorflow as tf

    model = tf.saved_model.load(str(version))
    examples = [serialized_example(row) for row in rows]
    out = model.signatures["serving_default"](examples=tf.constant(examples))
    return [c.decode() for c in out["classes"].numpy()] if "classes" in out else out["probabilities"].numpy()


@pytest.mark.serving
def test_unicode_column_names_and_values_train_and_are_pushed(tmp_path, run_kubetfx, unicode_table):
    home = tmp_path / "home"
    result = run_kubetfx("run", "--home", home, "--data", unicode_table, "--label", "espèce")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "not a valid scope name" not in result.stdout + result.stderr
    versions = _pushed(home, "kubetfx-villes")
    assert len(versions) == 1
    classes = _predict(versions[0], [{"Île": "日本語", "prix €": 9.5, "größe": 50},
                                     {"Île": "Zürich", "prix €": 0.5, "größe": 50}])
    assert classes == ["élevé", "bas"]
    # The column keeps its name in the transform's output; its vocabulary file is ASCII.
    graph = next((home / "pipelines" / "kubetfx-villes" / "Transform" / "transform_graph").iterdir())
    assert [p.name for p in (graph / "transform_fn" / "assets").iterdir() if p.name.startswith("vocab_Ile_")]


def _many_classes(path: Path) -> Path:
    """5,000 rows, 1,000 classes of 5 rows: enough in the whole table, not in the train split."""
    rnd = random.Random(0)
    lines = ["x,colour,label"] + [f"{i % 1000 / 100 + rnd.random():.3f},{['red', 'blue', 'green'][i % 3]},class{i % 1000}"
                                  for i in range(5000)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_thousand_classes_refused_up_front_or_trained_with_warn(tmp_path, run_kubetfx):
    data, home = _many_classes(tmp_path / "many.csv"), tmp_path / "home"
    refused = run_kubetfx("run", "--home", home, "--data", data, "--label", "label")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert re.fullmatch(r"kubetfx: error: label column 'label': \d+ classes would have fewer than 3 rows in the "
                        r"train split .*\n", refused.stderr), refused.stderr
    assert not (home / "pipelines").exists()

    result = run_kubetfx("run", "--home", home, "--data", data, "--label", "label", "--on-anomalies", "warn")
    # Trained (no "label value of -1 outside [0, N)"), judged, and rightly not pushed.
    assert result.returncode == 4, result.stdout + result.stderr
    assert "kubetfx: warning (--on-anomalies warn): label column 'label'" in result.stderr
    states = executions_by_stage(home / "metadata" / "kubetfx-many.sqlite")
    assert states["Trainer"] == ["COMPLETE"] and states["Evaluator"] == ["COMPLETE"], states
    assert _pushed(home, "kubetfx-many") == []

    # The classes only the eval split has: the label vocabulary's OOV id, after the last class.
    import tensorflow_transform as tft

    graph = tft.TFTransformOutput(str(next((home / "pipelines" / "kubetfx-many" / "Transform" / "transform_graph").iterdir())))
    known = set(c.decode() for c in graph.vocabulary_by_name("label"))
    assert 900 < len(known) < 1000
    unseen = sorted(f"class{i}" for i in range(1000) if f"class{i}" not in known)[0]
    import tensorflow as tf

    example = tf.train.Example()
    example.features.feature["label"].bytes_list.value.append(unseen.encode())
    example.features.feature["x"].float_list.value.append(1.0)
    example.features.feature["colour"].bytes_list.value.append(b"red")
    raw = tf.io.parse_example(tf.constant([example.SerializeToString()]), graph.raw_feature_spec())
    ids = graph.transform_features_layer()(raw)["label"]
    assert int(ids[0]) == len(known)


@pytest.mark.serving
def test_the_module_template_trains_as_it_is(tmp_path, run_kubetfx, unicode_table):
    """Every 10th row's label cell is empty: no class of its own (before: a third class "")."""
    module = tmp_path / "my_module.py"
    written = run_kubetfx("init-module", module)
    assert written.returncode == 0 and module.is_file(), written.stderr
    header, *rows = unicode_table.read_text(encoding="utf-8").splitlines()
    rows = [row.rsplit(",", 1)[0] + "," if i % 10 == 0 else row for i, row in enumerate(rows)]
    table = tmp_path / "villes.csv"
    table.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    home = tmp_path / "home"
    result = run_kubetfx("run", "--home", home, "--data", table, "--label", "espèce", "--module-file", module)
    assert result.returncode == 0, result.stdout + result.stderr
    versions = _pushed(home, "kubetfx-villes")
    assert len(versions) == 1
    probabilities = _predict(versions[0], [{"Île": "日本語", "prix €": 9.5, "größe": 50}])
    assert probabilities.shape == (1, 2)
