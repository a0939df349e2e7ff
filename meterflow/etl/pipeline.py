"""The shared cleaning: readings of one source to daily profiles, nothing lost.

Order of the rules (each on arrays sorted by meter, register and interval):

1. edge checks: unknown meter, missing value, off-grid timestamp, wrong sign -> dropped
2. duplicates: exact copies dropped; conflicting values resolved against the neighbours
3. scale detection (optional): per meter and period, values divided by the error factor
4. outliers beyond contractual power (import) / production (export) for the interval length,
   accounting for the gap before the reading (energy accumulated over it is spread instead)
5. gap filling: spans spread, short gaps interpolated (night rule); longer ones stay missing
6. complete local days only (every register, every interval); the rest dropped as incomplete
7. DST-aware wall-clock slots, resampling to the output resolution, pivot to meter-days

Counting: a *reading* is one row of the readings table (one register value of one interval)
plus every record the source adapter quarantined. Each reading is either kept (its value is
in a profile, possibly corrected) or dropped with exactly one quarantine row (action
``dropped``), so ``readings_in = readings_kept + readings_quarantined``. Corrections and fills
are listed too but counted separately (``readings_corrected``, ``readings_filled``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.etl.accounting import (
    quarantine_table,
    reconciled_counts,
    record_corrections,
    run_metrics,
)
from meterflow.etl.calendar import LocalCalendar
from meterflow.etl.cleaning_state import CleanInput, QuarantineLog
from meterflow.etl.config import CleaningConfig
from meterflow.etl.days import complete_days, daily_profiles, kept_rows
from meterflow.etl.interval import aggregate_fine_readings
from meterflow.etl.quality import quality_table
from meterflow.etl.quarantine import concat_quarantine
from meterflow.etl.readings import REGISTERS, Locator, codes_in, row_locator
from meterflow.etl.repair import repair_readings
from meterflow.etl.result import EtlResult, summarize_corrections
from meterflow.schemas import METERS, READINGS


def clean_readings(
    readings: pd.DataFrame,
    meters: pd.DataFrame,
    config: CleaningConfig,
    *,
    source: str,
    adapter_quarantine: pd.DataFrame | None = None,
    reference_profiles: pd.DataFrame | None = None,
    locate: Locator | None = None,
    end_stamped: bool = False,
) -> EtlResult:
    """Clean one source's readings (any set of meters) into daily profiles (see module doc).

    ``adapter_quarantine`` holds what the source adapter already quarantined (counted in);
    ``locate`` names the store location of quarantined readings (default ``<source> row N``);
    ``end_stamped``: the store stamps interval ends (timestamps are end - raw interval), which
    places the readings of a finer-than-raw series (``etl.interval``);
    ``reference_profiles`` (profiles of the same meters from another source, e.g. the SQL
    historian for the old exports) anchor the scale detection on overlapping days.
    """
    READINGS.validate(readings, where=f"{source} readings")
    METERS.validate(meters, where="meters table")
    locate = locate or row_locator(source)
    readings, adapter_quarantine = _sum_fine_series(
        readings, config, source, locate, end_stamped, adapter_quarantine
    )
    cal = LocalCalendar(config.timezone, config.raw_interval_min)
    inp = _input_arrays(readings, meters, source, locate)
    qlog = QuarantineLog()
    entries, present_regs, corrections = repair_readings(inp, config, cal, qlog, reference_profiles)
    days = complete_days(entries, present_regs, inp.n_series, cal, qlog)
    out = daily_profiles(entries, days, inp, config, cal)
    kept_pos = kept_rows(entries, out.sel)
    is_kept = np.zeros(len(readings), dtype=bool)
    is_kept[kept_pos] = True
    record_corrections(qlog, corrections, is_kept, entries, out)
    quarantine = quarantine_table(qlog, inp, entries, days, out, config, cal, adapter_quarantine)
    counts = reconciled_counts(qlog, inp, kept_pos, adapter_quarantine)
    report = corrections.scale_report
    metrics = run_metrics(quarantine, counts, inp, kept_pos, out.profiles, report)
    quality = quality_table(readings, inp.context, is_kept, quarantine, out.profiles, cal)
    summary = summarize_corrections(quarantine)
    return EtlResult(out.profiles, quarantine, quality, summary, report, metrics)


def _sum_fine_series(
    readings: pd.DataFrame,
    config: CleaningConfig,
    source: str,
    locate: Locator,
    end_stamped: bool,
    adapter_quarantine: pd.DataFrame | None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Readings with finer-than-raw series summed into raw intervals (``etl.interval``), and
    the adapter's quarantine with the rows that says so."""
    readings, interval_q = aggregate_fine_readings(
        readings, config.raw_interval_min, source, locate, end_stamped
    )
    if interval_q is not None:
        adapter_quarantine = concat_quarantine(
            [q for q in (adapter_quarantine, interval_q) if q is not None]
        )
    return readings, adapter_quarantine


def _input_arrays(
    readings: pd.DataFrame, meters: pd.DataFrame, source: str, locate: Locator
) -> CleanInput:
    """The columns of ``readings`` as arrays, meters as codes into the meters table."""
    n = len(readings)
    mids = pd.Index(pd.unique(meters["meter_id"].astype(str)))
    span = readings["span"].to_numpy(np.int64) if "span" in readings else np.ones(n, np.int64)
    ctx = readings["context"].to_numpy(bool) if "context" in readings else np.zeros(n, bool)
    cap_kw = meters.drop_duplicates("meter_id").set_index("meter_id")
    return CleanInput(
        readings=readings,
        source=source,
        locate=locate,
        meter_ids=mids,
        meter=codes_in(readings["meter_id"], mids),
        register=codes_in(readings["register"], list(REGISTERS)),
        ts=readings["timestamp"].to_numpy(dtype="datetime64[ns]").view(np.int64),
        energy=readings["energy_wh"].to_numpy(dtype=np.float64),
        span=span,
        context=ctx,
        import_kw=cap_kw["contractual_power_kw"].reindex(mids).to_numpy(float),
        export_kw=cap_kw["production_kw"].reindex(mids).to_numpy(float),
    )
