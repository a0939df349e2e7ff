"""One self-contained HTML page from report data: inline CSS, figures as base64 PNG data URIs,
no script and no external address, so the MLflow UI (or any browser, offline) shows it as is.

Pure: a ``Report`` in, a string out.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.prose import NA, count, num

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem auto;
       max-width: 72rem; padding: 0 1rem; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.25rem; border-bottom: 1px solid #d0d7de; padding-bottom: .2rem;
     margin-top: 2rem; }
.subtitle, .caption, footer { color: #57606a; font-size: .9rem; }
.missing { color: #9a6700; background: #fff8c5; padding: .4rem .6rem; border-radius: 4px; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .88rem; }
caption { text-align: left; font-weight: 600; padding: .2rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; }
th { background: #f6f8fa; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: .5rem 0 1rem; }
img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
"""


@dataclass(frozen=True)
class Figure:
    caption: str
    png: bytes


@dataclass(frozen=True)
class Table:
    caption: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class Section:
    """One section: sentences, tables and figures, or one line saying why it has none."""

    title: str
    lines: tuple[str, ...] = ()
    tables: tuple[Table, ...] = ()
    figures: tuple[Figure, ...] = ()
    missing: str = ""  # why there is nothing to show ("" when there is)


@dataclass(frozen=True)
class Report:
    title: str
    subtitle: str
    sections: tuple[Section, ...]
    footer: str = ""


def unavailable(title: str, why: str) -> Section:
    """A section that says in one line why this run has nothing for it."""
    return Section(title, missing=f"not available in this run: {why}")


def _cell(value: object) -> tuple[str, bool]:
    """A table cell's text (counts in full, other numbers to 3 significant digits), and whether
    it is a number (right-aligned)."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return NA, False
    if isinstance(value, bool):
        return ("yes" if value else "no"), False
    if isinstance(value, int):
        return count(value), True
    if isinstance(value, float):
        return num(value), True
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M"), False
    return str(value), False


def render_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.frame.columns)
    rows = []
    for record in table.frame.itertuples(index=False):
        cells = []
        for value in record:
            text, numeric = _cell(value)
            cells.append(f"<td{' class=n' if numeric else ''}>{html.escape(text)}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    caption = f"<caption>{html.escape(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def render_figure(figure: Figure) -> str:
    data = base64.b64encode(figure.png).decode("ascii")
    alt = html.escape(figure.caption)
    return (
        f'<figure><img alt="{alt}" src="data:image/png;base64,{data}">'
        f'<figcaption class="caption">{alt}</figcaption></figure>'
    )


def render_section(section: Section) -> str:
    parts = [f"<h2>{html.escape(section.title)}</h2>"]
    if section.missing:
        parts.append(f'<p class="missing">{html.escape(section.missing)}</p>')
    parts += [f"<p>{html.escape(line)}</p>" for line in section.lines]
    parts += [render_figure(f) for f in section.figures]
    parts += [render_table(t) for t in section.tables]
    return f"<section>{''.join(parts)}</section>"


def render(report: Report) -> str:
    """The whole page."""
    body = "\n".join(render_section(s) for s in report.sections)
    footer = f"<footer>{html.escape(report.footer)}</footer>" if report.footer else ""
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        '<link rel=icon href="data:,">'  # no favicon request
        f"<title>{html.escape(report.title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(report.title)}</h1>"
        f'<p class="subtitle">{html.escape(report.subtitle)}</p>\n{body}\n{footer}</body></html>\n'
    )
