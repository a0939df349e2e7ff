"""What a harmonization run tells a person in the MLflow UI (pure: tables and numbers in, text
out): the per-source table (meter-days each ETL run brought, kept and lost to another source)
and the Markdown description, verdict first."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from meterflow.etl.story import period, share_of
from meterflow.profiles.harmonize import REASON_INCOMPLETE, REASON_LOWER_PRIORITY
from meterflow.prose import count, description, percent

SOURCE_COLUMNS = (
    "source", "etl_run", "meter_days_in", "kept", "lost_lower_priority", "lost_incomplete",
)  # fmt: skip


def source_table(inputs: list[tuple[str, pd.DataFrame]], losers: pd.DataFrame) -> pd.DataFrame:
    """One row per ETL run merged (``inputs``: run id and its profiles table, one source each):
    the meter-days it brought, how many won their meter-day and how many lost (to a source of
    higher priority, or for being incomplete where another source was complete)."""
    lost = losers.groupby(["source", "reason"]).size()
    rows = []
    for run_id, table in inputs:
        source = str(table["source"].iloc[0]) if len(table) else ""
        low = int(lost.get((source, REASON_LOWER_PRIORITY), 0))
        incomplete = int(lost.get((source, REASON_INCOMPLETE), 0))
        n = len(table)
        rows.append((source, run_id, n, n - low - incomplete, low, incomplete))
    return pd.DataFrame(rows, columns=list(SOURCE_COLUMNS))


@dataclass(frozen=True)
class DtwStory:
    """The DTW matrix of the run: its profiles, pairs computed now and reused from the store."""

    profiles: int
    computed: int
    reused: int
    window: int
    location: str


@dataclass(frozen=True)
class HarmonizationStory:
    """What the description of a harmonization run says."""

    sources: pd.DataFrame  # :func:`source_table`
    profiles: pd.DataFrame  # the harmonized meter-days (Wh)
    losers: int
    overlaps: int
    carried: int  # meter-days kept from the previous run
    resolution_min: int
    normalization: str
    priority: tuple[str, ...]
    dtw: DtwStory | None


def _verdict(story: HarmonizationStory) -> str:
    energy = story.profiles
    won = energy["source"].astype(str).value_counts()
    parts = ", ".join(f"{s} {count(n)}" for s, n in won.items())
    return (
        f"Harmonized {count(len(energy))} meter-days of {count(energy['meter_id'].nunique())} "
        f"meters from {len(won)} source(s) ({parts}); {count(story.overlaps)} meter-days "
        f"covered by several sources resolved, {count(story.losers)} losing candidates listed."
    )


def _sources_line(sources: pd.DataFrame) -> str:
    shown = [
        f"{r.source} {count(r.meter_days_in)} meter-days (run `{r.etl_run}`)"
        for r in sources.itertuples(index=False)
    ]
    return "; ".join(shown) if shown else "none"


def _dtw_text(dtw: DtwStory | None) -> str:
    if dtw is None:
        return "not computed (compute_dtw=false)"
    pairs = dtw.computed + dtw.reused
    window = "unconstrained" if dtw.window == 0 else f"shifts of up to {dtw.window - 1} slots"
    return (
        f"{count(dtw.profiles)} profiles, {window}: {count(dtw.computed)} pairs "
        f"computed, {count(dtw.reused)} reused from the cache "
        f"({percent(share_of(dtw.reused, pairs))}); matrix at {dtw.location}"
    )


def harmonization_description(story: HarmonizationStory) -> str:
    """The Markdown description of a harmonization run."""
    lost = story.sources[["lost_lower_priority", "lost_incomplete"]].sum()
    carried = f"; {count(story.carried)} meter-days carried over from the previous run"
    chosen = (
        f"per meter-day a complete profile before an incomplete one, then priority "
        f"{' > '.join(story.priority)}: {count(lost['lost_lower_priority'])} lost to a "
        f"higher-priority source, {count(lost['lost_incomplete'])} for being incomplete"
        + (carried if story.carried else "")
    )
    result = (
        f"{story.resolution_min}-min slots in Wh (`tables/profiles.parquet`), "
        f"{story.normalization}-normalized shapes for clustering "
        "(`tables/normalized_profiles.parquet`)"
    )
    look = (
        "`previews/sources.csv` (per source), `figures/source_coverage.png`, "
        "`figures/completeness.png`, `previews/losers.csv` (every losing candidate and how far "
        "it was from the winner)"
    )
    bullets = [
        ("Data", f"{_sources_line(story.sources)}; {period(story.profiles)}"),
        ("Chosen", chosen),
        ("Result", result),
        ("DTW", _dtw_text(story.dtw)),
        ("Look next", look),
    ]
    return description(_verdict(story), bullets)
