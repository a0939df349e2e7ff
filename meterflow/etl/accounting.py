"""What the shared cleaning (``etl.pipeline``) reports: the quarantine table (every dropped,
corrected or filled reading with its reason and location), the reconciled counts
(``readings_in = readings_kept + readings_quarantined``) and the run metrics.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from meterflow.errors import MeterflowError
from meterflow.etl.calendar import LocalCalendar
from meterflow.etl.cleaning_state import (
    KIND_READING,
    KIND_SPREAD,
    CleanInput,
    CleanOutput,
    Corrections,
    Entries,
    MeterDays,
    QuarantineLog,
)
from meterflow.etl.config import CleaningConfig
from meterflow.etl.profiles import WallClockDays
from meterflow.etl.quarantine import Reason, concat_quarantine, quarantine_frame
from meterflow.etl.readings import REGISTERS
from meterflow.schemas import Action

log = logging.getLogger(__name__)


def record_corrections(
    qlog: QuarantineLog, corr: Corrections, is_kept: np.ndarray, entries: Entries, out: CleanOutput
) -> None:
    """Log the corrections (scale, spread spans, DST merges) of the kept readings."""
    sc = is_kept[corr.scale_pos]
    qlog.add(
        corr.scale_pos[sc],
        Action.CORRECTED,
        Reason.SCALE,
        "scale factor removed",
        new_value=corr.scale_value[sc],
    )
    spread = corr.spread
    sp = is_kept[spread.pos]
    accumulated = np.isin(spread.pos, corr.accumulated_pos)[sp]
    detail = np.where(
        accumulated,
        "energy accumulated over the preceding gap, spread",
        "register difference across missing documents, spread",
    ).astype(object)
    qlog.add(
        spread.pos[sp],
        Action.CORRECTED,
        Reason.ACCUMULATED_OVER_GAP,
        detail,
        new_value=spread.new_value[sp],
        stamp_ns=spread.stamp_ns[sp],
    )
    merged = out.wall.merged_entry if out.sel is None else out.sel[out.wall.merged_entry]
    mr = entries.kind[merged] == KIND_READING
    qlog.add(
        entries.pos[merged[mr]],
        Action.CORRECTED,
        Reason.DST_FALLBACK_MERGE,
        "mean of the two occurrences of the repeated hour",
        new_value=out.wall.merged_value[mr],
    )


def quarantine_table(
    qlog: QuarantineLog,
    inp: CleanInput,
    entries: Entries,
    days: MeterDays,
    out: CleanOutput,
    config: CleaningConfig,
    cal: LocalCalendar,
    adapter_quarantine: pd.DataFrame | None,
) -> pd.DataFrame:
    """The quarantine table: the adapter's rows, the logged entries, the fills and the
    skipped-hour fills (context readings, accounted for in an earlier run, left out)."""
    fills = _fill_rows(out.sel, entries, inp, cal)
    parent = fills.pop("parent").to_numpy()
    fills["location"] = inp.locate(inp.readings.iloc[parent]) if len(parent) else ""
    ok_md = out.ok_md
    spring = _spring_rows(
        out.wall, days.md_meter[ok_md], days.md_day[ok_md], inp.meter_ids, cal, config, inp.source
    )
    adapter = [] if adapter_quarantine is None else [adapter_quarantine]
    return concat_quarantine([*adapter, *_logged_rows(qlog, inp), fills, spring])


def _logged_rows(qlog: QuarantineLog, inp: CleanInput) -> list[pd.DataFrame]:
    """Quarantine rows of the logged entries, context readings left out."""
    parts = []
    for p, action, reason, detail, new_value, stamp in qlog.entries:
        keep_c = ~inp.context[p]
        if not keep_c.any():
            continue
        p2 = p[keep_c]
        det = detail if isinstance(detail, str) else np.asarray(detail, dtype=object)[keep_c]
        parts.append(
            quarantine_frame(
                meter_id=_mid(inp.readings, p2),
                timestamp=inp.ts[p2] if stamp is None else stamp[keep_c],
                source=inp.source,
                original_value=inp.energy[p2],
                new_value=new_value[keep_c],
                action=action,
                reason=reason,
                detail=det,
                register=np.asarray(REGISTERS, dtype=object)[np.maximum(inp.register[p2], 0)],
                location=inp.locate(inp.readings.iloc[p2]),
            )
        )
    return parts


def reconciled_counts(
    qlog: QuarantineLog,
    inp: CleanInput,
    kept_pos: np.ndarray,
    adapter_quarantine: pd.DataFrame | None,
) -> tuple[int, int, int]:
    """Readings in, kept and quarantined (context readings not counted); raises unless
    in = kept + quarantined with each reading dropped at most once."""
    ctx = inp.context
    dropped = qlog.dropped()
    dropped = dropped[~ctx[dropped]]
    adapter_dropped = 0
    if adapter_quarantine is not None:
        adapter_dropped = int((adapter_quarantine["action"] == str(Action.DROPPED)).sum())
    n_in = int((~ctx).sum()) + adapter_dropped
    n_kept = int((~ctx[kept_pos]).sum())
    n_quar = len(dropped) + adapter_dropped
    if n_in != n_kept + n_quar or len(np.unique(dropped)) != len(dropped):
        raise MeterflowError(
            f"{inp.source}: counts do not reconcile "
            f"(in={n_in}, kept={n_kept}, quarantined={n_quar})"
        )
    return n_in, n_kept, n_quar


def _mid(readings: pd.DataFrame, p: np.ndarray) -> np.ndarray:
    """Meter ids of input rows ``p``."""
    col = readings["meter_id"]
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.categories.to_numpy(object)[col.cat.codes.to_numpy()[p]]
    return col.to_numpy(object)[p]


def _fill_rows(
    sel: np.ndarray | None, entries: Entries, inp: CleanInput, cal: LocalCalendar
) -> pd.DataFrame:
    """Quarantine rows (``filled``) of the gap fills in the profiles, with a ``parent`` column:
    the input row of the reading they stem from; context fills left out."""
    kind, ctx = entries.kind, inp.context
    if sel is None:  # all entries
        f = np.flatnonzero(kind != KIND_READING)
        f = f[~ctx[entries.pos[f]]]
    else:
        f = sel[(kind[sel] != KIND_READING) & ~ctx[entries.pos[sel]]]
    spread = kind[f] == KIND_SPREAD
    detail = np.where(
        spread,
        "share of a reading spanning several intervals (cumulative energy interpolated)",
        np.char.add(
            "linear interpolation over missing intervals: ", entries.gap_len[f].astype(str)
        ),
    ).astype(object)
    series = entries.series[f]
    rows = quarantine_frame(
        meter_id=inp.meter_ids.to_numpy(object)[series // 2],
        timestamp=cal.k_to_utc(entries.k[f]),
        source=inp.source,
        original_value=np.nan,
        new_value=entries.energy[f],
        action=Action.FILLED,
        reason=Reason.GAP,
        detail=detail,
        register=np.asarray(REGISTERS, dtype=object)[series % 2],
    )
    return rows.assign(parent=entries.pos[f])


def _spring_rows(
    wall: WallClockDays,
    md_meter: np.ndarray,
    md_day: np.ndarray,
    mids: pd.Index,
    cal: LocalCalendar,
    config: CleaningConfig,
    source: str,
) -> pd.DataFrame:
    """Quarantine rows (``filled``, register ``net``) of the interpolated skipped-hour slots of
    spring-forward days; ``md_meter``/``md_day`` are per row of the wall-clock matrix."""
    if not len(wall.spring_row):
        return quarantine_frame(
            meter_id=np.array([], object),
            timestamp=pd.DatetimeIndex([], tz="UTC"),
            source=source,
            original_value=np.array([]),
            new_value=np.array([]),
            action=Action.FILLED,
            reason=Reason.DST_SPRING_GAP,
            detail=np.array([], object),
            register="net",
        )
    rows = wall.spring_row
    day = md_day[rows]
    # the skipped wall-clock hour has no instant: stamp the fill with the UTC instant at which
    # the wall clock jumped (first interval after the gap) and name the wall-clock slot
    wall_min = wall.spring_slot * config.raw_interval_min
    local_ns = day * 86400 * 10**9 + wall_min * 60 * 10**9
    stamp = pd.DatetimeIndex(local_ns).tz_localize(
        config.timezone, nonexistent="shift_forward", ambiguous=True
    )
    detail = np.char.add(
        "skipped wall-clock slot ",
        pd.DatetimeIndex(local_ns).strftime("%H:%M").to_numpy(dtype=str),
    ).astype(object)
    return quarantine_frame(
        meter_id=mids.to_numpy(object)[md_meter[rows]],
        timestamp=stamp,
        source=source,
        original_value=np.nan,
        new_value=wall.spring_value,
        action=Action.FILLED,
        reason=Reason.DST_SPRING_GAP,
        detail=detail,
        register="net",
    )


def run_metrics(
    quarantine: pd.DataFrame,
    counts: tuple[int, int, int],
    inp: CleanInput,
    kept_pos: np.ndarray,
    profiles: pd.DataFrame,
    scale_report: pd.DataFrame,
) -> dict[str, float]:
    """The run's metrics (logged in short)."""
    n_in, n_kept, n_quar = counts
    metrics = _metrics(quarantine, n_in, n_kept, n_quar, profiles, scale_report)
    metrics["readings_context_kept"] = float(inp.context[kept_pos].sum())
    log.info(
        "%s: in=%d kept=%d quarantined=%d filled=%d meter-days=%d",
        inp.source,
        n_in,
        n_kept,
        n_quar,
        metrics["readings_filled"],
        len(profiles),
    )
    return metrics


def _metrics(
    quarantine: pd.DataFrame,
    n_in: int,
    n_kept: int,
    n_quar: int,
    profiles: pd.DataFrame,
    scale_report: pd.DataFrame,
) -> dict[str, float]:
    """Run metrics: counts, and one count per (action, reason) of the quarantine."""
    counts = quarantine.groupby(["action", "reason"], observed=True).size()
    m: dict[str, float] = {
        "readings_in": float(n_in),
        "readings_kept": float(n_kept),
        "readings_quarantined": float(n_quar),
        "readings_filled": float(counts.get(str(Action.FILLED), pd.Series(dtype=int)).sum()),
        "readings_corrected": float(
            quarantine.loc[quarantine["action"] == str(Action.CORRECTED)]
            .drop_duplicates(["meter_id", "timestamp", "register"])
            .shape[0]
        ),
        "meter_days_out": float(len(profiles)),
        "meters_out": float(profiles["meter_id"].nunique()),
        "scale_corrections": float(len(scale_report)),
    }
    for (action, reason), c in counts.items():
        prefix = {"dropped": "quarantined", "filled": "filled", "corrected": "corrected"}[action]
        m[f"{prefix}_{reason}"] = float(c)
    m["quarantined_share"] = n_quar / n_in if n_in else 0.0
    return m
