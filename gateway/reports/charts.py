"""Bar charts as small SVG documents, drawn on the server: a thin client shows them with
no script, and the PDF embeds the same drawing. Colours are SVG attributes, not CSS, so
the pages' Content-Security-Policy (no inline styles) lets them through. Every text in
the drawing is escaped."""
from __future__ import annotations

from xml.sax.saxutils import escape

COLOURS = ("#2f6db3", "#e08a1e", "#3a9a52", "#b3403a")
WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 28, 44


def _attr(value) -> str:
    return escape(str(value), {'"': "&quot;"})


def _nice_top(value: float) -> float:
    """A round number at or above `value` for the axis (1, 2 or 5 times a power of 10)."""
    if value <= 0:
        return 1
    step = 1
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10


def _short(value: float, unit: str) -> str:
    if unit == "rupiah":
        for size, suffix in ((1e9, " M"), (1e6, " jt"), (1e3, " rb")):
            if value >= size:
                return f"{value / size:g}{suffix}"
    return f"{value:g}"


def bar_chart(categories: list[str], series: dict[str, list[float]], *, title: str = "",
              labels: dict[str, str] | None = None, unit: str = "count") -> str:
    """Grouped bars, one group per category, one colour per series, with a legend."""
    labels = labels or {}
    names = list(series)
    top = _nice_top(max((v for values in series.values() for v in values), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    n = max(1, len(categories))
    group_w = plot_w / n
    bar_w = max(1.0, group_w * 0.8 / max(1, len(names)))
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{_attr(title)}" '
           'font-family="DejaVu Sans, sans-serif" font-size="11">',
           f'<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#ffffff"/>']
    if title:
        out.append(f'<text x="{LEFT}" y="16" font-size="13" fill="#222">{escape(title)}</text>')
    for i in range(5):  # the grid and the axis figures
        value = top * i / 4
        y = TOP + plot_h - plot_h * i / 4
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
                   f'stroke="#dddddd" stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#555">'
                   f'{escape(_short(value, unit))}</text>')
    every = max(1, -(-n // 12))  # at most about a dozen labels under the axis
    for c, category in enumerate(categories):
        x0 = LEFT + c * group_w + group_w * 0.1
        for s, name in enumerate(names):
            values = series[name]
            value = values[c] if c < len(values) else 0
            h = plot_h * (value or 0) / top
            out.append(f'<rect x="{x0 + s * bar_w:.1f}" y="{TOP + plot_h - h:.1f}" '
                       f'width="{bar_w:.1f}" height="{h:.1f}" '
                       f'fill="{COLOURS[s % len(COLOURS)]}">'
                       f'<title>{escape(f"{category}: {labels.get(name, name)} {value:g}")}'
                       '</title></rect>')
        if c % every == 0:
            out.append(f'<text x="{LEFT + c * group_w + group_w / 2:.1f}" '
                       f'y="{TOP + plot_h + 14}" text-anchor="middle" fill="#333">'
                       f'{escape(str(category)[:16])}</text>')
    x = LEFT
    for s, name in enumerate(names):  # the legend, under the axis labels
        label = str(labels.get(name, name))
        out.append(f'<rect x="{x}" y="{HEIGHT - 16}" width="10" height="10" '
                   f'fill="{COLOURS[s % len(COLOURS)]}"/>')
        out.append(f'<text x="{x + 14}" y="{HEIGHT - 7}" fill="#333">{escape(label)}</text>')
        x += 24 + 7 * len(label)
    out.append("</svg>")
    return "".join(out)
