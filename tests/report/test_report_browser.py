"""The night's HTML report, built from a realistic night with real matplotlib figures, opened in
headless Chromium: every section there, every image decoded, no error, nothing fetched; a
section whose inputs are missing says why in one line."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from meterflow.orchestration.story import FAILED, StepOutcome
from meterflow.report.collect import RunTables, build_report
from meterflow.report.figures import durations_figure, png
from meterflow.report.render import render
from meterflow.report.sections import ALERTS, CLUSTERS, FORECASTS, NIGHT, QUALITY
from tests import demo_night as nights
from tests.report.browser import open_in_chromium

SECTIONS = [NIGHT, QUALITY, CLUSTERS, FORECASTS, ALERTS]
PARENT = "f" * 32


def _page(night, available, tmp_path: Path) -> tuple[str, Path]:
    durations = png(durations_figure(night.outcomes)) if night.outcomes else None
    report = build_report(night, RunTables(nights.reader(available)), durations, PARENT)
    page = render(report)
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    return page, path


def test_the_report_of_a_night_opens_in_chromium_whole_and_without_errors(tmp_path: Path):
    page, path = _page(nights.night(), nights.tables(), tmp_path)
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"?(https?:)?//", page), "an external address"
    seen = open_in_chromium(path)
    assert seen.console_errors == [] and seen.page_errors == []
    assert seen.requests == []
    assert seen.headings == ["meterflow retrain night of 2026-12-07", *SECTIONS]
    # steps, quarantine reasons, centroids, forecast errors, horizon
    assert len(seen.image_widths) == 5 and all(w > 0 for w in seen.image_widths)
    assert "not available in this run" not in page
    expected = (
        "evening peak", "midday dip (solar)", "110 alerts raised, on", "incomplete_day",
        "MAE 382 Wh vs dshw 388 Wh (1.5 % better)", "challenger", "reused",
    )  # fmt: skip
    for text in expected:
        assert text in page, text


def test_sections_without_their_inputs_say_why_in_one_line(tmp_path: Path):
    """A night that failed at clustering, before the forecast and the alerts, and whose ETL
    runs logged no corrections_summary: the page still opens cleanly."""
    failed = StepOutcome("clustering", FAILED, nights.run_id("clustering"), 3.0, "k_max < k_min")
    outcomes = (*nights.night().outcomes[:5], failed)
    night = replace(
        nights.night(), outcomes=outcomes, promotions=(), alerts=None, failure="step failed"
    )
    page, path = _page(night, {}, tmp_path)
    assert "The retrain night failed at step clustering: k_max &lt; k_min." in page
    assert "not available in this run: the clustering step failed" in page
    assert "not available in this run: the forecasting step was not reached" in page
    assert "not available in this run: the anomaly step was not reached" in page
    assert "Quarantine reasons: not available in this run" in page
    seen = open_in_chromium(path)
    assert seen.console_errors == [] and seen.page_errors == [] and seen.requests == []
    assert seen.headings[1:] == SECTIONS
    assert len(seen.image_widths) == 1 and seen.image_widths[0] > 0  # the step durations


def test_a_table_with_another_layout_leaves_its_section_out_naming_why(tmp_path: Path):
    available = nights.tables()
    key = (nights.run_id("forecasting"), "candidates")
    available[key] = available[key].drop(columns=["test_mae"])
    page, _ = _page(nights.night(), available, tmp_path)
    assert "not available in this run: KeyError: &#x27;test_mae&#x27;" in page
    assert "evening peak" in page  # the other sections are whole
