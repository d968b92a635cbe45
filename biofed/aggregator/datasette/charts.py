"""Server-rendered SVG charts: no JavaScript, readable without it, and every chart has its table beside it."""

from __future__ import annotations

from markupsafe import Markup, escape

REGION_COLOUR = "#1b6a8c"   # contrast >= 4.5:1 on white for the text drawn in it
EUROPE_COLOUR = "#b6c9d3"


def share_bars(title: str, rows: list[dict], *, region_label: str, chart_id: str) -> Markup:
    """Paired horizontal bars: each value's share of the region's actors with data, and of Europe's.

    rows: [{"label", "region_share", "europe_share"}] with shares in 0..1.
    """
    label_width, bar_width, row_height, top = 250, 260, 34, 34
    height = top + row_height * len(rows) + 8
    width = label_width + bar_width + 70
    peak = max([r["region_share"] for r in rows] + [r["europe_share"] for r in rows] + [0.01])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="biofed-chart" role="img" aria-labelledby="{chart_id}-title"'
        f' viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<rect x="{label_width}" y="6" width="12" height="12" fill="{REGION_COLOUR}"/>',
        f'<text x="{label_width + 18}" y="16" font-size="12">{escape(region_label)}</text>',
        f'<rect x="{label_width + 170}" y="6" width="12" height="12" fill="{EUROPE_COLOUR}"/>',
        f'<text x="{label_width + 188}" y="16" font-size="12">Europe</text>',
    ]
    for n, row in enumerate(rows):
        y = top + n * row_height
        parts.append(f'<text x="{label_width - 8}" y="{y + 17}" font-size="12" text-anchor="end">'
                     f'{escape(_shorten(row["label"], 40))}</text>')
        for offset, share, colour in ((0, row["region_share"], REGION_COLOUR),
                                      (14, row["europe_share"], EUROPE_COLOUR)):
            length = round(bar_width * share / peak, 1)
            parts.append(f'<rect x="{label_width}" y="{y + offset}" width="{length}" height="12" fill="{colour}"/>')
            parts.append(f'<text x="{label_width + length + 4}" y="{y + offset + 10}" font-size="10">'
                         f'{share * 100:.0f}%</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
