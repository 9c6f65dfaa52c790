"""The report page: one self-contained HTML file (inline CSS and SVG, nothing fetched).

Sections, in the order a reader asks: did it work (banner, stages), what was the data
(statistics, schema, anomalies), how good is the model (evaluation, blessings), what is
served (model and its signature). A section whose stage did not run says so."""
from __future__ import annotations

import datetime
import os
from html import escape

from kubetfx.components import stage_outputs
from kubetfx.pipelines.record import failure
from kubetfx.components import artifacts
from kubetfx.pipelines.report import charts
from kubetfx.pipelines.report.run_record import RunRecord

CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --ok:#2e8b57; --bad:#c0392b; --warn:#c77c02; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "DejaVu Sans", Arial, sans-serif; }
main { max-width:1120px; margin:0 auto; padding:28px 28px 60px; }
h1 { font-size:22px; margin:0 0 4px; font-weight:600; }
h2 { font-size:17px; margin:0 0 12px; font-weight:600; }
h3 { font-size:14px; margin:18px 0 8px; font-weight:600; color:var(--muted); text-transform:uppercase; letter-spacing:.04em; }
.sub { color:var(--muted); margin:0 0 18px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:18px 20px; margin:0 0 18px; }
.banner { border-radius:8px; padding:14px 18px; margin:0 0 18px; color:#fff; font-size:15px; font-weight:500; }
.banner-ok { background:var(--ok); } .banner-bad { background:var(--bad); } .banner-warn { background:var(--warn); }
.banner small { display:block; font-weight:400; opacity:.92; margin-top:3px; }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
th, td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line); vertical-align:top; }
th { font-weight:600; color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.03em; background:#fafbfc; }
td.num, th.num { text-align:right; }
.pill { display:inline-block; padding:1px 9px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; }
.pill.complete, .pill.yes { background:var(--ok); } .pill.cached { background:#6c8ebf; }
.pill.failed, .pill.no, .pill.interrupted { background:var(--bad); } .pill.running, .pill.canceled, .pill.new { background:#8a8a8a; }
.pill.ERROR { background:var(--bad); } .pill.WARNING { background:var(--warn); }
.feature { display:grid; grid-template-columns: 1fr 310px; gap:16px; padding:12px 0; border-bottom:1px solid var(--line); }
.feature:last-child { border-bottom:0; }
.feature .name { font-weight:600; } .feature .type { color:var(--muted); font-size:12px; margin-left:6px; }
.feature table td, .feature table th { padding:3px 8px; font-size:13px; }
.key { margin-right:14px; color:var(--muted); font-size:13px; }
.swatch { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px; vertical-align:-1px; }
svg.chart text { font-size:11px; fill:#52606d; }
code, pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size:12.5px; }
pre { background:#f0f3f6; padding:10px 12px; border-radius:6px; overflow-x:auto; white-space:pre-wrap; }
.error { border-left:4px solid var(--bad); background:#fdf2f1; padding:10px 14px; border-radius:4px; margin:10px 0; }
.error .msg { font-weight:600; white-space:pre-wrap; }
.muted { color:var(--muted); }
.ok { color:var(--ok); font-weight:600; } .bad { color:var(--bad); font-weight:600; }
details summary { cursor:pointer; color:var(--muted); margin-top:6px; }
"""


def _guard(title: str, anchor: str, build) -> str:
    """A section that could not be read says why instead of failing the whole page."""
    try:
        body = build()
    except Exception as err:  # a report of a broken run must still render
        body = f'<p class="bad">could not read: {escape(type(err).__name__)}: {escape(str(err))}</p>'
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def _not_run(record: RunRecord, stage_name: str) -> str:
    stopped = record.failed or record.interrupted
    why = f" (the run stopped at {escape(stopped.node_id)})" if stopped else ""
    return f'<p class="muted">{escape(stage_name)} did not run in this run{why}.</p>'


def _fmt(x) -> str:
    if x is None:
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    return f"{x:.4g}" if abs(x) < 1e5 else f"{x:,.0f}"


# ---- banner and stages ----------------------------------------------------------------------


def _banner(record: RunRecord) -> str:
    failed = record.failed
    _, pushed = record.output("PushedModel")
    interrupted = record.interrupted
    if failed is None and interrupted is not None:
        return (f'<div class="banner banner-bad">Interrupted at {escape(interrupted.node_id)}: the run ended while '
                f'it ran, and no kubetfx process holds the home (killed, out of memory, or the machine stopped)'
                f'<small>Stages after it did not run; nothing was pushed.</small></div>')
    if failed is not None:
        reason = failure.explain_text(failed.error).error if failed.error else "see the run's log"
        first = reason.splitlines()[0] if reason else ""
        return (f'<div class="banner banner-bad">Stopped at {escape(failed.node_id)}: {escape(first)}'
                f'<small>Stages after it did not run; nothing was pushed.</small></div>')
    stage = record.stage("Pusher")
    if pushed is not None and stage.prop("PushedModel", "pushed"):
        return (f'<div class="banner banner-ok">Model trained, blessed and pushed'
                f'<small>{escape(str(stage.prop("PushedModel", "pushed_destination")))}</small></div>')
    if stage is not None:
        blessed = record.stage("Evaluator")
        infra = record.stage("InfraValidator")
        why = []
        refusal = _acceptance(record)
        refusal = refusal.refusal() if refusal else None
        if refusal:
            why.append(refusal.replace("model NOT pushed: ", ""))
        elif blessed and not blessed.prop("ModelBlessing", "blessed"):
            why.append("the Evaluator did not bless the model")
        if infra and not infra.prop("InfraBlessing", "blessed"):
            why.append("the InfraValidator did not bless the model")
        return (f'<div class="banner banner-warn">Model NOT pushed'
                f'<small>{escape("; ".join(why) or "not blessed")}</small></div>')
    return '<div class="banner banner-warn">Run incomplete<small>the Pusher has not run</small></div>'


def _safe_banner(record: RunRecord) -> str:
    try:
        return _banner(record)
    except Exception as err:  # the sections below still say what they can
        return f'<div class="banner banner-warn">Run state unknown<small>{escape(str(err))}</small></div>'


def _stages(record: RunRecord) -> str:
    rows = []
    for s in record.stages:
        try:
            result = stage_outputs.describe(s.node_id, s.outputs) if s.outputs else ""
        except Exception as err:  # one unreadable artifact must not hide the others
            result = f"(no detail: {err})"
        if s.state == "failed" and s.error:
            result = failure.explain_text(s.error).error.splitlines()[0]
        rows.append(f'<tr><td>{escape(s.node_id)}</td><td><span class="pill {s.state}">{s.state}</span></td>'
                    f'<td class="num">{s.seconds:.1f}s</td><td>{escape(result)}</td></tr>')
    table = ('<table><thead><tr><th>stage</th><th>status</th><th class="num">time</th><th>result</th></tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table>')
    timeline = charts.timeline([(s.node_id, s.state, s.started, s.seconds) for s in record.stages])
    return table + "<h3>Timeline</h3>" + timeline + _failure(record)


def _failure(record: RunRecord) -> str:
    failed = record.failed
    if failed is None:
        return ""
    if not failed.error:
        return (f'<div class="error"><div class="msg">{escape(failed.node_id)} failed.</div>'
                '<div class="muted">No error was recorded with it; see the run\'s log under '
                '&lt;home&gt;/logs/.</div></div>')
    modules = {failed.module_file: f"{failed.module_file} (your module file)"} if failed.module_file else {}
    explanation = failure.explain_text(failed.error, modules)
    frames = "".join(f"<div><code>{escape(f.file)}:{f.line}</code> in <code>{escape(f.function)}</code>"
                     + (f"<pre>{escape(f.code)}</pre>" if f.code else "") + "</div>" for f in explanation.frames)
    return (f'<h3 id="failure">Why {escape(failed.node_id)} failed</h3><div class="error">'
            f'<div class="msg">{escape(explanation.error)}</div>{frames}'
            f'<details><summary>full traceback</summary><pre>{escape(failed.error)}</pre></details></div>')


# ---- data -----------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{x:.1%}" if x else "0%"


NUMERIC_COLUMNS = ("count", "missing", "mean", "std dev", "zeros", "min", "median", "max")
CATEGORICAL_COLUMNS = ("count", "missing", "unique", "top value", "avg length")


def _missing_cell(stats) -> str:
    """Share and count of examples without the feature: "3.2% (7)"."""
    return f"{_pct(stats.missing)} ({stats.num_missing:,})" if stats.num_missing else _pct(stats.missing)


def _numeric_cells(n) -> list:
    return [f"{n.count:,}", _missing_cell(n), _fmt(n.mean), _fmt(n.std), _pct(n.zeros), _fmt(n.min),
            _fmt(n.median), _fmt(n.max)]


def _categorical_cells(c) -> list:
    return [f"{c.count:,}", _missing_cell(c), f"{c.unique:,}", f"{c.top[0][0]} ({c.top[0][1]:g})" if c.top else "–",
            f"{c.avg_length:.1f}"]


def _feature_block(name: str, per_split: list, columns: tuple, cells, chart) -> str:
    """One feature: a row of `cells(stats)` per split beside `chart([(split, stats)])`."""
    kind = per_split[0][1].type
    head = "".join(f'<th class="{"" if c == "top value" else "num"}">{c}</th>' for c in columns)
    rows = "".join(f"<tr><td>{escape(split)}</td>" + "".join(
        f'<td class="{"" if c == "top value" else "num"}">{escape(v)}</td>' for c, v in zip(columns, cells(f)))
        + "</tr>" for split, f in per_split)
    return (f'<div class="feature" data-feature="{escape(name)}"><div><span class="name">{escape(name)}</span>'
            f'<span class="type">{kind}</span><table><thead><tr><th>split</th>{head}</tr></thead>'
            f'<tbody>{rows}</tbody></table></div>{chart(per_split)}</div>')


def _statistics(record: RunRecord) -> str:
    stage, artifact = record.output("ExampleStatistics")
    if artifact is None:
        return _not_run(record, "StatisticsGen")
    splits = artifacts.statistics(artifact.uri)
    counts = ", ".join(f"{split}: {n:,} examples" for split, (n, _) in splits.items())
    out = [f'<p class="sub">{escape(counts)} &nbsp; {charts.legend(list(splits))}</p>']
    features = sorted({name for _, feats in splits.values() for name in feats})
    kinds = (
        ("Numeric", "numeric", NUMERIC_COLUMNS, _numeric_cells,
         lambda per_split: charts.histogram([(s, f.numeric.histogram) for s, f in per_split])),
        ("Categorical", "categorical", CATEGORICAL_COLUMNS, _categorical_cells,
         lambda per_split: charts.bars([(s, f.categorical.top, f.categorical.examples) for s, f in per_split])),
    )
    for title, attr, columns, cells, chart in kinds:
        blocks = []
        for name in features:
            per_split = [(split, feats[name]) for split, (_, feats) in splits.items()
                         if name in feats and getattr(feats[name], attr) is not None]
            if per_split:
                blocks.append(_feature_block(name, per_split, columns,
                                             lambda f, cells=cells, attr=attr: cells(getattr(f, attr)), chart))
        if blocks:
            out.append(f"<h3>{title} features ({len(blocks)})</h3>" + "".join(blocks))
    return "".join(out)


def _schema(record: RunRecord) -> str:
    stage, artifact = record.output("Schema")
    if artifact is None:
        return _not_run(record, "SchemaGen")
    rows = "".join(f"<tr><td>{escape(f.name)}</td><td>{f.type}</td><td>{f.presence}</td><td>{f.valency}</td>"
                   f"<td>{escape(f.domain)}</td></tr>" for f in artifacts.schema(artifact.uri))
    return (f'<p class="sub">from {escape(stage.node_id)}: <code>{escape(artifact.uri)}</code></p>'
            '<table><thead><tr><th>feature</th><th>type</th><th>presence</th><th>values per example</th><th>domain</th></tr></thead>'
            f"<tbody>{rows}</tbody></table>")


def _anomalies(record: RunRecord) -> str:
    stage = record.stage("ExampleValidator")
    if stage is None:
        return _not_run(record, "ExampleValidator")
    note = ""
    rows = None
    if "ExampleAnomalies" in stage.outputs:
        rows = artifacts.anomalies(stage.outputs["ExampleAnomalies"].uri)
    if rows is None and "ExampleStatistics" in stage.inputs and "Schema" in stage.inputs:
        rows = artifacts.recomputed_anomalies(stage.inputs["ExampleStatistics"].uri, stage.inputs["Schema"].uri)
        note = ('<p class="muted">Recomputed from this stage\'s inputs with tfdv.validate_statistics, as '
                "ExampleValidator does: TFX removes a failed stage's output directory.</p>")
    if rows is None:
        return '<p class="muted">No anomalies artifact was recorded.</p>'
    if not rows:
        return '<p class="ok">No anomalies: every split matches the schema.</p>'
    body = "".join(f'<tr><td>{escape(a.split)}</td><td>{escape(a.feature)}</td><td><span class="pill {a.severity}">'
                   f'{a.severity.lower()}</span></td><td>{escape(a.short)}</td><td>{escape(a.description)}</td></tr>'
                   for a in rows)
    return (f'<p class="bad">{len(rows)} anomalies</p>{note}<table><thead><tr><th>split</th><th>feature</th>'
            f"<th>severity</th><th>problem</th><th>detail</th></tr></thead><tbody>{body}</tbody></table>")


# ---- model ----------------------------------------------------------------------------------


def _evaluation(record: RunRecord) -> str:
    stage, artifact = record.output("ModelEvaluation")
    if artifact is None:
        return _not_run(record, "Evaluator")
    ev = artifacts.evaluation(artifact.uri)
    rows = []
    for m in ev.rows:
        verdict = ('<span class="bad">failed</span>' if m.failures else
                   ('<span class="ok">passed</span>' if (m.value_bound or m.change_bound) else '<span class="muted">–</span>'))
        bounds = "; ".join(b for b in (m.value_bound, m.change_bound) if b) or "–"
        detail = "".join(f"<div class='muted'>{escape(x)}</div>" for x in m.failures)
        rows.append(f"<tr><td>{escape(m.name)}</td><td class='num'>{_fmt(m.candidate)}</td>"
                    f"<td class='num'>{_fmt(m.baseline)}</td><td class='num'>{_fmt(m.change)}</td>"
                    f"<td>{escape(bounds)}</td><td>{verdict}{detail}</td></tr>")
    baseline = ("compared with the baseline, the model served when the run started" if ev.has_baseline
                else "no baseline: no model of this pipeline was served yet")
    held_out = _acceptance(record)
    acceptance_line = (f'<p class="acceptance">Acceptance test: {escape(held_out.line())}. The test split is '
                       "held out from training, early stopping, tuning, Transform's analysis and the blessing "
                       "above; it is measured once, for a blessed model.</p>" if held_out else "")
    return (f'<p class="sub">Overall slice, eval split; {baseline}.</p><table><thead><tr><th>metric</th>'
            '<th class="num">candidate</th><th class="num">baseline</th><th class="num">change</th><th>threshold</th>'
            f'<th>result</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{acceptance_line}')


def _acceptance(record: RunRecord):
    """The acceptance test recorded on the Evaluator's blessing (acceptance.py), or None."""
    from kubetfx.components.evaluator import acceptance

    stage = record.stage("Evaluator")
    return acceptance.read(stage.outputs.get("ModelBlessing")) if stage is not None else None


def _blessings(record: RunRecord) -> str:
    rows = []
    for stage_name, type_name, what in (("Evaluator", "ModelBlessing", "metrics meet the thresholds and the baseline"),
                                        ("InfraValidator", "InfraBlessing", "loads in a model server and answers canary requests")):
        stage = record.stage(stage_name)
        if stage is None or type_name not in stage.outputs:
            verdict = '<span class="pill new">not run</span>'
        else:
            blessed = bool(stage.prop(type_name, "blessed"))
            verdict = f'<span class="pill {"yes" if blessed else "no"}">{"blessed" if blessed else "NOT blessed"}</span>'
        rows.append(f"<tr><td>{stage_name}</td><td>{verdict}</td><td class='muted'>{what}</td></tr>")
    held_out = _acceptance(record)
    if held_out is not None:
        verdict = ('<span class="pill new">measured</span>' if held_out.passed is None else
                   f'<span class="pill {"yes" if held_out.passed else "no"}">{"passed" if held_out.passed else "FAILED"}</span>')
        rows.append(f"<tr><td>Acceptance test</td><td>{verdict}</td><td class='muted'>"
                    f"{escape(held_out.line())}</td></tr>")
    return ("<table><thead><tr><th>gate</th><th>verdict</th><th>checks that the model</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _model(record: RunRecord) -> str:
    pusher = record.stage("Pusher")
    trainer = record.stage("Trainer")
    if pusher is not None and pusher.prop("PushedModel", "pushed"):
        where = str(pusher.prop("PushedModel", "pushed_destination"))
        head = f'<p>Pushed to <code>{escape(where)}</code> (version {escape(os.path.basename(where))}).</p>'
        head += _rollout(record, os.path.basename(where.rstrip("/")))
    elif trainer is not None and "Model" in trainer.outputs:
        where = artifacts.model_dir(trainer.outputs["Model"].uri)
        head = f'<p class="bad">Not pushed.</p><p>Trained model (not served): <code>{escape(where)}</code></p>'
    else:
        return _not_run(record, "Trainer")
    parts = [head]
    for sig in artifacts.signatures(where):
        def table(tensors):
            return "".join(f"<tr><td><code>{escape(n)}</code></td><td>{escape(t)}</td><td><code>{escape(s)}</code></td></tr>"
                           for n, t, s in tensors)
        parts.append(f'<h3>signature {escape(sig.name)}</h3><table class="signature"><thead><tr><th>tensor</th>'
                     f'<th>dtype</th><th>shape</th></tr></thead><tbody><tr><td colspan="3" class="muted">inputs</td></tr>'
                     f'{table(sig.inputs)}<tr><td colspan="3" class="muted">outputs</td></tr>{table(sig.outputs)}'
                     "</tbody></table>")
    return "".join(parts)


def _rollout(record: RunRecord, version: str) -> str:
    """The version's staged-rollout decisions so far (rollout_history), if it was a candidate."""
    from kubetfx.pipelines.record import rollout_history

    line = rollout_history.by_candidate(rollout_history.from_metadata(record.metadata_path, record.pipeline)).get(version)
    return f'<p class="rollout">Staged rollout: {escape(line)}</p>' if line else ""


def render(record: RunRecord) -> str:
    started = min((s.started for s in record.stages), default=0)
    when = datetime.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S") if started else "?"
    total = max((s.started + s.seconds for s in record.stages), default=started) - started
    body = [
        f"<h1>{escape(record.pipeline)}</h1>",
        f'<p class="sub">run <code>{escape(record.run_id)}</code> · started {when} · {total:.1f} s · '
        f"{len(record.stages)} stages · metadata <code>{escape(record.metadata_path)}</code></p>",
        _safe_banner(record),
        _guard("Stages", "stages", lambda: _stages(record)),
        _guard("Statistics", "statistics", lambda: _statistics(record)),
        _guard("Schema", "schema", lambda: _schema(record)),
        _guard("Anomalies", "anomalies", lambda: _anomalies(record)),
        _guard("Evaluation", "evaluation", lambda: _evaluation(record)),
        _guard("Blessings", "blessings", lambda: _blessings(record)),
        _guard("Model", "model", lambda: _model(record)),
    ]
    return ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(record.pipeline)} · {escape(record.run_id)}</title>"
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head>'
            f'<body><main>{"".join(body)}</main></body></html>\n')
