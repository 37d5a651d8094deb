"""The report as one self-contained HTML file: headline figures, SVG charts drawn by pygal, and the tables."""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

__all__ = ["render_html"]

_STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
main{max-width:72rem;margin:0 auto;padding:16px}
h1{font-size:1.5rem;margin:.5rem 0}h2{font-size:1.15rem;margin:1.5rem 0 .5rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(9rem,1fr));gap:12px}
.card{background:#fff;border-radius:8px;padding:12px}.card b{display:block;font-size:1.4rem}
figure{margin:0;background:#fff;border-radius:8px;padding:8px}figure svg{width:100%;height:auto;display:block}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,30rem),1fr));gap:12px}
.scroll{overflow-x:auto;background:#fff;border-radius:8px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;text-align:right;white-space:nowrap;border-bottom:1px solid #e4e7eb}
th:first-child,td:first-child{text-align:left}
"""
_COLUMNS = ("sent", "clicked", "settled", "recovered", "median days")


def _money(recovered: dict[str, str]) -> str:
    return ", ".join(f"{amount} {currency}" for currency, amount in recovered.items()) or "–"


def _notice_label(row: dict[str, Any]) -> str:
    return row["notice"] if row["stage"] is None else f"{row['notice']} {row['stage']}"


def _chart(kind: str, title: str, labels: list[str], series: dict[str, list[float]]) -> Markup:
    import pygal  # loaded only when an HTML report is written

    # Charts scale with the page's width: fonts sized for a phone's half-size rendering stay readable there.
    style = pygal.style.CleanStyle(label_font_size=17, major_label_font_size=17, legend_font_size=19,
                                   title_font_size=21, font_family="system-ui, sans-serif")
    chart = getattr(pygal, kind)(js=[], disable_xml_declaration=True, width=560, height=380, title=title,
                                 x_label_rotation=30, legend_at_bottom=True, legend_at_bottom_columns=3,
                                 style=style, truncate_label=-1, margin_bottom=24,
                                 show_minor_y_labels=False)
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, values)
    svg = Markup(chart.render(is_unicode=True))
    return Markup('<figure class="chart" aria-label="{}">{}</figure>').format(title, svg)


def _charts(report: dict[str, Any]) -> list[Markup]:
    notices, weeks, locales = report["by_notice"], report["by_week"], report["by_locale"]
    def counts(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
        return {name: [row[name] for row in rows] for name in ("sent", "clicked", "settled")}
    currencies = sorted({c for row in notices for c in row["recovered"]})
    return [
        _chart("Bar", "Emails, clicks and settlements by notice", [_notice_label(r) for r in notices], counts(notices)),
        _chart("Line", "By week of the email", [r["week"] for r in weeks], counts(weeks)),
        _chart("Bar", "Recovered by notice", [_notice_label(r) for r in notices],
               {c: [float(r["recovered"].get(c, 0)) for r in notices] for c in currencies}),
        _chart("Bar", "Settled per 100 emails, by language", [r["locale"] for r in locales],
               {"settled": [round(100 * r["settled"] / r["sent"], 1) if r["sent"] else 0 for r in locales]}),
    ]


def _table(title: str, label: str, rows: list[tuple[str, dict[str, Any]]]) -> Markup:
    head = Markup("").join(Markup("<th>{}</th>").format(c) for c in (label, *_COLUMNS))
    body = Markup("").join(
        Markup("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>").format(
            name, row["sent"], row["clicked"], row["settled"], _money(row["recovered"]),
            "–" if row["median_days_to_settle"] is None else row["median_days_to_settle"])
        for name, row in rows)
    return Markup('<h2>{}</h2><div class="scroll"><table><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>'
                  ).format(title, head, body)


def render_html(report: dict[str, Any]) -> str:
    """The report (as report_dict gives it) as a page that needs nothing but itself (no file, no network)."""
    overall, period = report["overall"], report["period"]
    cards = [("recovered", _money(overall["recovered"])), ("emails sent", overall["sent"]),
             ("clicked", overall["clicked"]), ("settled", overall["settled"]),
             ("median days to settle", "–" if overall["median_days_to_settle"] is None
              else overall["median_days_to_settle"])]
    tables = [
        _table("By notice", "notice", [(_notice_label(r), r) for r in report["by_notice"]]),
        _table("By language", "locale", [(r["locale"], r) for r in report["by_locale"]]),
        _table("By segment", "segment", [(r["segment"] or "(none)", r) for r in report["by_segment"]]),
        _table("By week", "week of", [(r["week"], r) for r in report["by_week"]]),
    ]
    body = Markup(
        '<main><h1>Recovery report</h1><p>Emails sent {} to {}; a settlement counts for the last email sent to its '
        'group at most {} days before it.</p><section class="cards">{}</section><h2>Charts</h2>'
        '<section class="charts">{}</section>{}</main>').format(
        period.get("from") or "from the start", period.get("to") or "now", report["window_days"],
        Markup("").join(Markup('<div class="card"><b>{}</b>{}</div>').format(v, k) for k, v in cards),
        Markup("").join(_charts(report)), Markup("").join(tables))
    return str(Markup('<!doctype html><html lang="en"><head><meta charset="utf-8">'
                      '<meta name="viewport" content="width=device-width,initial-scale=1">'
                      '<title>dunning: recovery report</title><style>{}</style></head><body>{}</body></html>')
               .format(Markup(_STYLE), body))
