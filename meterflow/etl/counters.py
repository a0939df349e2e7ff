"""Cumulative registers (one document per meter and read) -> interval energy readings.

Per meter, documents are sorted by read time ``ts`` (the END of the interval); each register
value is differenced against the previous usable document of the same meter, so a reading
starts at the previous read and spans ``(ts - ts_prev) / raw interval`` intervals (> 1 across
missing documents; the shared gap filling spreads it, conserving energy).

Per register, a negative difference is never passed on as energy:

- **rollover**: the register wrapped at ``rollover_wh`` and the wrapped difference fits the
  contract for the span -> reconstructed (action corrected, reason ``counter_rollover``);
- **reset** (meter replaced, register restarts near 0): the new value fits the contract for the
  span -> the interval is quarantined (``counter_reset``): when in it the new meter started is
  unknown. The next interval is differenced against the new register, so nothing else is lost;
- any other decrease -> quarantined (``counter_decrease``), differencing continues from the new
  value. Too large positive jumps are left to the shared outlier rule.

Document-level problems quarantine both registers' readings: missing/unparseable values
(``missing_value``), unknown meter, off-grid read time, duplicates (exact or conflicting,
resolved against the neighbouring reads). The first usable document of a meter has no
predecessor (``counter_baseline``) unless ``context`` documents (already loaded by an earlier
run) precede it; context documents are used for differencing only and never counted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from meterflow.errors import SourceError
from meterflow.etl.config import CleaningConfig
from meterflow.etl.duplicates import resolve_duplicates
from meterflow.etl.quarantine import Reason, concat_quarantine, quarantine_frame
from meterflow.etl.readings import EXPORT, IMPORT, make_readings
from meterflow.schemas import Action

REGISTER_COLUMNS = {IMPORT: "import_kwh", EXPORT: "export_kwh"}


def registers_to_readings(
    documents: pd.DataFrame,
    meters: pd.DataFrame,
    config: CleaningConfig,
    *,
    source: str,
    rollover_kwh: float,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Translate register documents (meter_id, ts UTC, import_kwh, export_kwh, optional bool
    ``context``) into (readings, adapter quarantine) as described in the module docstring."""
    missing = [c for c in ("meter_id", "ts", *REGISTER_COLUMNS.values()) if c not in documents]
    if missing:
        raise SourceError(f"documents lack field(s) {missing}", source=source)
    n = len(documents)
    raw_ns = config.raw_interval_min * 60 * 10**9
    ctx = documents["context"].to_numpy(bool) if "context" in documents else np.zeros(n, bool)
    mid = documents["meter_id"].astype(object).to_numpy()
    ts = pd.to_datetime(documents["ts"], utc=True, errors="coerce")
    t_ns = ts.to_numpy("datetime64[ns]").view(np.int64)
    bad_ts = ts.isna().to_numpy()
    regs = {
        r: 1000 * pd.to_numeric(documents[c], errors="coerce").to_numpy(np.float64)
        for r, c in REGISTER_COLUMNS.items()
    }
    known = pd.Index(meters["meter_id"].astype(str))
    code = pd.Categorical(mid, categories=known).codes.astype(np.int64)
    tol = 1 + config.outlier_tolerance
    per_interval = {
        IMPORT: meters["contractual_power_kw"].to_numpy(float),
        EXPORT: meters["production_kw"].to_numpy(float),
    }
    q_parts: list[pd.DataFrame] = []

    def drop_docs(idx: np.ndarray, reason: Reason, detail: str | np.ndarray) -> None:
        idx = idx[~ctx[idx]]
        if len(idx) == 0:
            return
        stamp = np.where(bad_ts[idx], 0, t_ns[idx] - raw_ns)
        for r, sign in ((IMPORT, 1.0), (EXPORT, -1.0)):
            q_parts.append(
                quarantine_frame(
                    meter_id=mid[idx], timestamp=stamp, source=source,
                    original_value=sign * regs[r][idx], new_value=np.nan,
                    action=Action.DROPPED, reason=reason, detail=detail, register=r,
                )
            )  # fmt: skip

    alive = np.ones(n, dtype=bool)
    doc_rules = [
        (bad_ts | pd.isna(mid), Reason.MALFORMED_ROW, "read time or meter missing/unparseable"),
        (code < 0, Reason.UNKNOWN_METER, "meter not in the meters table"),
        (~np.isfinite(regs[IMPORT]) | ~np.isfinite(regs[EXPORT]), Reason.MISSING_VALUE,
         "register value missing or not numeric"),
        (t_ns % raw_ns != 0, Reason.OFF_GRID, "read not on the raw interval grid"),
    ]  # fmt: skip
    for mask, reason, detail in doc_rules:
        hit = np.flatnonzero(mask & alive)
        drop_docs(hit, reason, detail)
        alive[hit] = False

    pos = np.flatnonzero(alive)
    pos = pos[np.lexsort((t_ns[pos], code[pos]))]
    vals = np.stack([regs[IMPORT][pos], regs[EXPORT][pos]], axis=1)
    exact, conflicting, chosen = resolve_duplicates(code[pos], t_ns[pos] // raw_ns, vals)
    drop_docs(pos[exact], Reason.DUPLICATE, "document repeated with the same registers")
    drop_docs(
        pos[conflicting], Reason.CONFLICTING_DUPLICATE,
        np.char.add("kept import_kwh ", (vals[chosen, 0] / 1000).astype(str)).astype(object),
    )  # fmt: skip
    keep = np.ones(len(pos), dtype=bool)
    keep[exact] = keep[conflicting] = False
    pos = pos[keep]

    first = np.r_[True, code[pos][1:] != code[pos][:-1]]
    prev = np.r_[0, np.arange(len(pos) - 1)]
    baseline = pos[first]
    drop_docs(baseline, Reason.COUNTER_BASELINE, "first register read of the meter: no interval")
    cur = pos[~first]
    before = pos[prev[~first]]
    span = (t_ns[cur] - t_ns[before]) // raw_ns
    rollover_wh = rollover_kwh * 1000
    out_parts = []
    for r, sign in ((IMPORT, 1.0), (EXPORT, -1.0)):
        d = regs[r][cur] - regs[r][before]
        bound = per_interval[r][code[cur]] * config.raw_interval_min / 60 * 1000 * tol * span
        bound = bound + config.outlier_abs_tolerance_wh
        neg = d < -config.outlier_abs_tolerance_wh
        wrapped = d + rollover_wh
        roll = neg & (regs[r][before] >= 0.5 * rollover_wh) & (wrapped >= 0) & (wrapped <= bound)
        reset = neg & ~roll & (regs[r][cur] <= bound)
        decrease = neg & ~roll & ~reset
        energy = np.where(roll, wrapped, d)
        for mask, reason, action in (
            (reset, Reason.COUNTER_RESET, Action.DROPPED),
            (decrease, Reason.COUNTER_DECREASE, Action.DROPPED),
            (roll, Reason.COUNTER_ROLLOVER, Action.CORRECTED),
        ):
            hit = np.flatnonzero(mask & ~ctx[cur])
            if len(hit):
                q_parts.append(
                    quarantine_frame(
                        meter_id=mid[cur[hit]], timestamp=t_ns[before[hit]], source=source,
                        original_value=sign * d[hit],
                        new_value=sign * wrapped[hit] if action == Action.CORRECTED else np.nan,
                        action=action, reason=reason,
                        detail=np.char.add(
                            np.char.add("register ", (regs[r][before[hit]] / 1000).astype(str)),
                            np.char.add(" -> ", (regs[r][cur[hit]] / 1000).astype(str)),
                        ).astype(object),
                        register=r,
                    )
                )  # fmt: skip
        ok = ~(reset | decrease)
        out_parts.append(
            make_readings(
                mid[cur[ok]], t_ns[before[ok]], sign * energy[ok], source=source, register=r,
                span=span[ok].astype(np.int32), row=cur[ok], context=ctx[cur[ok]],
            )
        )  # fmt: skip
    readings = pd.concat(out_parts, ignore_index=True)
    readings["meter_id"] = pd.Categorical(readings["meter_id"].astype(object))
    readings["register"] = pd.Categorical(
        readings["register"].astype(object), categories=[IMPORT, EXPORT]
    )
    return readings, concat_quarantine(q_parts)
