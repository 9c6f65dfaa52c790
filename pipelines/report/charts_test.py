"""The SVG charts are well-formed and draw what they are given, to scale."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from kubetfx.pipelines.report import charts

SVG = "{http://www.w3.org/2000/svg}"


def _rects(svg: str) -> list:
    root = ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))
    return [r for r in root.iter(SVG + "rect")]


def test_histogram_bars_are_proportional_to_each_splits_share():
    svg = charts.histogram([("train", [(0, 1, 10), (1, 2, 30)]), ("eval", [(0, 1, 5), (1, 2, 5)])])
    heights = [float(r.get("height")) for r in _rects(svg)]
    assert len(heights) == 4 and all(h > 0 for h in heights)
    train_low, train_high, eval_low, eval_high = heights
    assert abs(train_high / train_low - 3.0) < 1e-6  # 75% vs 25% of train
    assert abs(eval_low - eval_high) < 1e-6 and abs(train_high / eval_high - 1.5) < 1e-6  # 75% vs 50%


def test_bars_put_every_splits_top_values_on_shared_rows():
    svg = charts.bars([("train", [("Adelie", 90), ("Gentoo", 10)], 100), ("eval", [("Gentoo", 40), ("Emperor", 10)], 50)])
    titles = [r.find(SVG + "title").text for r in _rects(svg)]
    assert len(titles) == 6  # 3 values x 2 splits, a zero-width bar where a split lacks the value
    assert "train: Adelie: 90 (90.0%)" in titles and "eval: Emperor: 10 (20.0%)" in titles


def test_top_value_shares_are_over_the_splits_examples_not_the_listed_values():
    # TFDV listed 3 values of a 137-example split: each share is of the 137 (issue 22).
    svg = charts.bars([("train", [("a", 5), ("b", 1), ("c", 1)], 137)])
    titles = [r.find(SVG + "title").text for r in _rects(svg)]
    assert titles == ["train: a: 5 (3.6%)", "train: b: 1 (0.7%)", "train: c: 1 (0.7%)"]
    assert ">1%</text>" in svg and ">4%</text>" in svg and ">14%</text>" not in svg


def test_the_statistics_table_shows_each_columns_missing_share_and_count():
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from kubetfx.components import artifacts
    from kubetfx.pipelines.report import page

    feature = statistics_pb2.FeatureNameStatistics(name="city", type=statistics_pb2.FeatureNameStatistics.STRING)
    feature.string_stats.common_stats.num_non_missing = 130
    feature.string_stats.common_stats.num_missing = 7
    feature.string_stats.unique = 2
    feature.string_stats.top_values.add(value="oslo", frequency=100)
    stats = artifacts._feature(feature, 137).categorical
    assert (stats.examples, stats.num_missing) == (137, 7)
    assert page._categorical_cells(stats)[:2] == ["130", "5.1% (7)"]
    assert "oslo: 100 (73.0%)" in charts.bars([("train", stats.top, stats.examples)])


def test_timeline_places_stages_on_one_axis_and_escapes_names():
    svg = charts.timeline([("Gen<1>", "complete", 100.0, 2.0), ("Train", "failed", 102.0, 6.0)])
    rects = _rects(svg)
    assert float(rects[1].get("x")) > float(rects[0].get("x"))
    assert rects[1].get("fill") == charts.STATE_COLOURS["failed"]
    assert "Gen&lt;1&gt;" in svg


def test_nothing_to_draw_is_an_empty_chart_not_an_error():
    assert 'class="chart empty"' in charts.histogram([("train", [])])
    assert 'class="chart empty"' in charts.bars([])
