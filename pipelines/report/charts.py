"""Charts as inline SVG strings: no JavaScript, no fonts or libraries fetched, so a report
opens offline and prints as it looks. Each split gets one colour across the page."""
from __future__ import annotations

from html import escape

SPLIT_COLOURS = ("#3b6fb6", "#e08a2c", "#4f9a63", "#b3476b", "#7a5fb5")
STATE_COLOURS = {"complete": "#2e8b57", "cached": "#6c8ebf", "failed": "#c0392b", "interrupted": "#c0392b",
                 "running": "#d4a017", "canceled": "#8a8a8a", "new": "#8a8a8a"}


def split_colour(index: int) -> str:
    return SPLIT_COLOURS[index % len(SPLIT_COLOURS)]


def _fmt(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-2:
        return f"{x:.2g}"
    return f"{x:.4g}" if abs(x) < 100 else f"{x:.0f}"


def histogram(per_split: list, width: int = 300, height: int = 120) -> str:
    """`per_split`: [(split, [(low, high, count)])]. Bars show each split's share of its
    own examples per bucket (splits of different sizes stay comparable, as in Facets)."""
    series = [(split, buckets) for split, buckets in per_split if buckets]
    if not series:
        return '<svg class="chart empty" width="0" height="0"></svg>'
    low = min(b[0] for _, bs in series for b in bs)
    high = max(b[1] for _, bs in series for b in bs)
    span = (high - low) or 1.0
    top = max(c / (sum(x[2] for x in bs) or 1) for _, bs in series for _, _, c in bs) or 1.0
    pad_l, pad_b, pad_t = 4, 18, 6
    plot_w, plot_h = width - 2 * pad_l, height - pad_b - pad_t
    parts = [f'<svg class="chart histogram" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="histogram">']
    parts.append(f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{pad_l + plot_w}" y2="{pad_t + plot_h}" '
                 'stroke="#9aa3ad" stroke-width="1"/>')
    for index, (split, buckets) in enumerate(series):
        total = sum(b[2] for b in buckets) or 1
        colour = split_colour(index)
        for b_low, b_high, count in buckets:
            x = pad_l + (b_low - low) / span * plot_w
            w = max((b_high - b_low) / span * plot_w - 1, 1.0)
            h = count / total / top * plot_h
            if h <= 0:
                continue
            parts.append(f'<rect x="{x:.1f}" y="{pad_t + plot_h - h:.1f}" width="{w:.1f}" height="{h:.1f}" '
                         f'fill="{colour}" fill-opacity="0.55"><title>{escape(split)}: {_fmt(b_low)} to '
                         f'{_fmt(b_high)}: {count:g} ({count / total:.1%})</title></rect>')
    parts.append(f'<text x="{pad_l}" y="{height - 4}" class="axis">{_fmt(low)}</text>')
    parts.append(f'<text x="{pad_l + plot_w}" y="{height - 4}" class="axis" text-anchor="end">{_fmt(high)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bars(per_split: list, width: int = 300, max_values: int = 8) -> str:
    """`per_split`: [(split, [(value, count)], examples)]: the most frequent values, as
    horizontal bars grouped by value, each split's share of its own examples. The share is
    over the split's examples, not over the values listed: TFDV lists only the top values,
    so a value seen once in 137 rows is 0.7%, however few other values made the list."""
    series = [(split, dict(top), examples or 1) for split, top, examples in per_split if top]
    if not series:
        return '<svg class="chart empty" width="0" height="0"></svg>'
    order: list = []
    for _, top, _ in series:
        for value in sorted(top, key=lambda v: -top[v]):
            if value not in order:
                order.append(value)
    order = order[:max_values]
    bar_h, gap, label_w = 9, 7, 96
    row_h = bar_h * len(series) + gap
    height = row_h * len(order) + 4
    plot_w = width - label_w - 44
    share_max = max(top.get(v, 0) / total for _, top, total in series for v in order) or 1.0
    parts = [f'<svg class="chart bars" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="top values">']
    for row, value in enumerate(order):
        y0 = row * row_h + 2
        label = value if len(value) <= 14 else value[:13] + "…"
        parts.append(f'<text x="{label_w - 6}" y="{y0 + bar_h * len(series) / 2 + 4:.1f}" class="label" '
                     f'text-anchor="end">{escape(label)}</text>')
        for index, (split, top, total) in enumerate(series):
            share = top.get(value, 0) / total
            w = max(share / share_max * plot_w, 0.5 if share else 0)
            y = y0 + index * bar_h
            parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 1}" '
                         f'fill="{split_colour(index)}"><title>{escape(split)}: {escape(value)}: '
                         f'{top.get(value, 0):g} ({share:.1%})</title></rect>')
            parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + bar_h - 1}" class="value">{share:.0%}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline(stages: list, width: int = 720) -> str:
    """`stages`: [(name, state, start seconds, duration seconds)] on one time axis."""
    if not stages:
        return '<svg class="chart empty" width="0" height="0"></svg>'
    t0 = min(s[2] for s in stages)
    t1 = max(s[2] + s[3] for s in stages)
    span = (t1 - t0) or 1.0
    label_w, row_h, pad_b = 200, 20, 22
    plot_w = width - label_w - 60
    height = row_h * len(stages) + pad_b
    parts = [f'<svg class="chart timeline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="stage timeline">']
    for row, (name, state, start, seconds) in enumerate(stages):
        y = row * row_h + 3
        x = label_w + (start - t0) / span * plot_w
        w = max(seconds / span * plot_w, 2.0)
        colour = STATE_COLOURS.get(state, "#8a8a8a")
        parts.append(f'<text x="{label_w - 8}" y="{y + 11}" class="label" text-anchor="end">{escape(name)}</text>')
        parts.append(f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 7}" rx="2" fill="{colour}">'
                     f'<title>{escape(name)}: {state}, {seconds:.1f}s</title></rect>')
        parts.append(f'<text x="{x + w + 5:.1f}" y="{y + 11}" class="value">{seconds:.1f}s</text>')
    axis_y = row_h * len(stages) + 4
    parts.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#9aa3ad"/>')
    parts.append(f'<text x="{label_w}" y="{axis_y + 14}" class="axis">0 s</text>')
    parts.append(f'<text x="{label_w + plot_w}" y="{axis_y + 14}" class="axis" text-anchor="end">{span:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


def legend(splits: list) -> str:
    return "".join(f'<span class="key"><span class="swatch" style="background:{split_colour(i)}"></span>'
                   f'{escape(s)}</span>' for i, s in enumerate(splits))
