"""A stage's views as Markdown for the Kubeflow Pipelines UI: written as a `system.Markdown`
output artifact, the run page shows it in the task's Visualizations tab (KFP 2.x frontend
`frontend/src/components/viewers/MarkdownViewer.tsx` renders the artifact's file).

`markdown_for(stage, artifacts)`: `stage` is the node id (or any name ending with the stage,
e.g. "CsvExampleGen"), `artifacts` maps artifact type names ("ExampleStatistics",
"ModelBlessing", ...) to their local paths (or objects with `.uri`). Blessings are read from
their marker files, as TFX writes them, so no MLMD is needed inside the task's container."""
from __future__ import annotations

import os

from kubetfx.components import artifacts as read

# TFX 1.16 tfx/components/evaluator/constants.py BLESSED_FILE_NAME / NOT_BLESSED_FILE_NAME,
# tfx/components/infra_validator/executor.py _BLESSED_FILENAME / _NOT_BLESSED_FILENAME.
BLESSING_FILES = {"ModelBlessing": ("BLESSED", "NOT_BLESSED"), "InfraBlessing": ("INFRA_BLESSED", "INFRA_NOT_BLESSED")}


def _uri(value) -> str:
    return getattr(value, "uri", value)


def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list, rows: list) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _num(x) -> str:
    return "–" if x is None else (f"{x:,}" if isinstance(x, int) else f"{x:.4g}")


def statistics(uri: str) -> str:
    parts = ["## Statistics"]
    for split, (count, features) in read.statistics(uri).items():
        parts.append(f"### {split}: {count:,} examples")
        numeric = [f for f in features.values() if f.numeric]
        categorical = [f for f in features.values() if f.categorical]
        if numeric:
            parts.append(_table(["feature", "type", "count", "missing", "mean", "std dev", "min", "median", "max"],
                                [[f.name, f.type, _num(f.numeric.count), f"{f.numeric.missing:.1%}", _num(f.numeric.mean),
                                  _num(f.numeric.std), _num(f.numeric.min), _num(f.numeric.median), _num(f.numeric.max)]
                                 for f in numeric]))
        if categorical:
            parts.append(_table(["feature", "type", "count", "missing", "unique", "top values"],
                                [[f.name, f.type, _num(f.categorical.count), f"{f.categorical.missing:.1%}",
                                  _num(f.categorical.unique),
                                  ", ".join(f"{v} ({c:g})" for v, c in f.categorical.top[:5])] for f in categorical]))
    return "\n\n".join(parts)


def schema(uri: str) -> str:
    return "## Schema\n\n" + _table(["feature", "type", "presence", "values per example", "domain"],
                                    [[f.name, f.type, f.presence, f.valency, f.domain] for f in read.schema(uri)])


def anomalies(uri: str) -> str:
    rows = read.anomalies(uri)
    if rows is None:
        return "## Anomalies\n\nNo anomalies files were written."
    if not rows:
        return "## Anomalies\n\n**No anomalies**: every split matches the schema."
    return f"## Anomalies\n\n**{len(rows)} anomalies**\n\n" + _table(
        ["split", "feature", "severity", "problem", "detail"],
        [[a.split, a.feature, a.severity.lower(), a.short, a.description] for a in rows])


def blessing(type_name: str, uri: str) -> str:
    yes, no = BLESSING_FILES[type_name]
    if os.path.exists(os.path.join(uri, yes)):
        return f"**{type_name}: blessed**"
    if os.path.exists(os.path.join(uri, no)):
        return f"**{type_name}: NOT blessed**"
    return f"{type_name}: no verdict written"


def evaluation(uri: str) -> str:
    ev = read.evaluation(uri)
    rows = [[m.name, _num(m.candidate), _num(m.baseline), _num(m.change),
             "; ".join(b for b in (m.value_bound, m.change_bound) if b) or "–",
             "failed: " + "; ".join(m.failures) if m.failures else "passed"] for m in ev.rows]
    verdict = "passed" if ev.validation_ok else "FAILED"
    return (f"## Evaluation (validation {verdict})\n\n"
            + _table(["metric", "candidate", "baseline", "change", "threshold", "result"], rows))


def signature(model_dir: str) -> str:
    parts = ["## Model signatures"]
    for sig in read.signatures(read.model_dir(model_dir)):
        parts.append(f"### {sig.name}")
        parts.append(_table(["", "tensor", "dtype", "shape"],
                            [["input", *t] for t in sig.inputs] + [["output", *t] for t in sig.outputs]))
    return "\n\n".join(parts)


def markdown_for(stage: str, artifacts: dict) -> str:
    """The Markdown view of the stage's outputs; "" when the stage has none to show."""
    uris = {type_name: _uri(value) for type_name, value in artifacts.items()}
    parts = []
    if "ExampleStatistics" in uris:
        parts.append(statistics(uris["ExampleStatistics"]))
    if "Schema" in uris and stage.endswith("SchemaGen"):
        parts.append(schema(uris["Schema"]))
    if "ExampleAnomalies" in uris:
        parts.append(anomalies(uris["ExampleAnomalies"]))
    if "ModelEvaluation" in uris:
        parts.append(evaluation(uris["ModelEvaluation"]))
    for type_name in BLESSING_FILES:
        if type_name in uris:
            parts.append(blessing(type_name, uris[type_name]))
    if "Model" in uris and stage.endswith("Trainer"):
        parts.append(signature(uris["Model"]))
    return ("# " + stage + "\n\n" + "\n\n".join(parts) + "\n") if parts else ""
