"""Cumulative registers (one document per meter and read) -> interval energy readings.

Documents are first normalised (``etl.documents``: drifted types read or quarantined).

**Differencing**: per meter, documents are sorted by read time ``ts`` (the END of the interval);
each register value is differenced against the previous usable read of the same meter, so a
reading starts at the previous read and spans ``(ts - ts_prev) / raw interval`` intervals (> 1
across missing documents; the shared gap filling spreads it, conserving energy).

Per register, a negative difference is never passed on as energy:

- **glitch**: one read off its trend and back at the next read (a dip ``v[i] < v[i-1] <=
  v[i+1]`` or a spike ``v[i] > v[i+1] >= v[i-1]``) -> read ``i`` is ignored for that register
  (its interval reading quarantined as ``counter_glitch``) and read ``i+1`` is differenced
  against read ``i-1`` (span 2), so the glitch neither loses nor creates energy;
- **rollover**: the register wrapped at ``rollover_wh`` and the wrapped difference fits the
  contract for the span -> reconstructed (action corrected, reason ``counter_rollover``);
- **reset** (meter replaced, register restarts near 0): the new value fits the contract for the
  span -> the interval is quarantined (``counter_reset``): when in it the new meter started is
  unknown. The next interval is differenced against the new register, so nothing else is lost;
- any other decrease -> quarantined (``counter_decrease``), differencing continues from the new
  value. Too large positive jumps are left to the shared outlier rule.

Document-level problems quarantine both registers' readings: the issues above, missing values
(``missing_value``; detail lists the document's fields), unknown meter, off-grid read time,
duplicates (exact or conflicting, resolved against the neighbouring reads). The first usable
document of a meter has no predecessor (``counter_baseline``) unless ``context`` documents
(already loaded by an earlier run) precede it; context documents are used for differencing
only and never counted. Every quarantine row carries the document's location
(``<collection>/_id=<id>``). A required field without a value in any new document is a schema
change, not damage: the translation fails in one line (``documents.require_fields``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from meterflow.etl.config import CleaningConfig
from meterflow.etl.documents import (
    COERCION_SEP,
    REGISTER_COLUMNS,
    REQUIRED_FIELDS,
    DocumentLocator,
    document_locator,
    normalize_documents,
    require_fields,
)
from meterflow.etl.duplicates import resolve_duplicates
from meterflow.etl.quarantine import Reason, concat_quarantine, quarantine_frame
from meterflow.etl.readings import EXPORT, IMPORT, make_readings
from meterflow.schemas import Action


@dataclass
class _Docs:
    """Per-document arrays of one translation."""

    mid: np.ndarray
    t_ns: np.ndarray
    bad_ts: np.ndarray
    regs: dict[str, np.ndarray]  # Wh
    code: np.ndarray  # position in the meters table, -1 unknown
    ctx: np.ndarray
    locate: DocumentLocator
    issue: np.ndarray
    issue_detail: np.ndarray
    coercions: np.ndarray


def _doc_arrays(docs: pd.DataFrame, meters: pd.DataFrame, locate: DocumentLocator) -> _Docs:
    n = len(docs)
    mid = docs["meter_id"].astype(object).to_numpy()
    ts = pd.to_datetime(docs["ts"], utc=True, errors="coerce")
    known = pd.Index(meters["meter_id"].astype(str))
    return _Docs(
        mid=mid,
        t_ns=ts.to_numpy("datetime64[ns]").view(np.int64),
        bad_ts=ts.isna().to_numpy(),
        regs={r: 1000 * docs[c].to_numpy(np.float64) for r, c in REGISTER_COLUMNS.items()},
        code=pd.Categorical(mid, categories=known).codes.astype(np.int64),
        ctx=docs["context"].to_numpy(bool) if "context" in docs else np.zeros(n, bool),
        locate=locate,
        issue=docs["issue"].fillna("").astype(str).to_numpy(object),
        issue_detail=docs["issue_detail"].fillna("").astype(str).to_numpy(object),
        coercions=docs["coercions"].fillna("").astype(str).to_numpy(object),
    )


class _Rows:
    """Collects the adapter's quarantine rows (context documents are never listed)."""

    def __init__(self, d: _Docs, source: str, raw_ns: int) -> None:
        self.d, self.source, self.raw_ns = d, source, raw_ns
        self.parts: list[pd.DataFrame] = []

    def add(
        self,
        docs: np.ndarray,
        stamp_ns: np.ndarray,
        register: str,
        values: tuple[np.ndarray | float, np.ndarray | float],
        action: Action,
        reason: Reason,
        detail: str | np.ndarray,
    ) -> None:
        """Rows for the ``register`` readings of documents ``docs``: interval start ``stamp_ns``,
        ``values`` = (original, new) in signed Wh."""
        keep = ~self.d.ctx[docs]
        if not keep.any():
            return
        n = len(docs)
        original, new = (np.broadcast_to(np.asarray(v, dtype=float), n)[keep] for v in values)
        self.parts.append(
            quarantine_frame(
                meter_id=self.d.mid[docs[keep]],
                timestamp=np.asarray(stamp_ns)[keep],
                source=self.source,
                original_value=original,
                new_value=new,
                action=action,
                reason=reason,
                detail=detail if isinstance(detail, str) else detail[keep],
                register=register,
                location=self.d.locate(docs[keep]),
            )
        )

    def drop_docs(self, docs: np.ndarray, reason: Reason, detail: str | np.ndarray) -> None:
        """Both register readings of documents ``docs`` dropped."""
        missing = np.iinfo(np.int64).min  # NaT: the document has no usable read time
        stamp = np.where(self.d.bad_ts[docs], missing, self.d.t_ns[docs] - self.raw_ns)
        for r, sign in ((IMPORT, 1.0), (EXPORT, -1.0)):
            value = sign * self.d.regs[r][docs]
            self.add(docs, stamp, r, (value, np.nan), Action.DROPPED, reason, detail)


def _document_rules(d: _Docs, rows: _Rows, raw_ns: int) -> np.ndarray:
    """Quarantine documents that cannot give readings; return the mask of the others."""
    n = len(d.mid)
    alive = np.ones(n, dtype=bool)
    for code in sorted(set(d.issue[d.issue != ""])):  # an order no block changes
        hit = np.flatnonzero(d.issue == code)
        rows.drop_docs(hit, Reason(code), d.issue_detail[hit])
        alive[hit] = False
    no_imp, no_exp = ~np.isfinite(d.regs[IMPORT]), ~np.isfinite(d.regs[EXPORT])
    rules = [
        (d.bad_ts | pd.isna(d.mid), Reason.MISSING_KEY, "read time or meter missing"),
        (d.code < 0, Reason.UNKNOWN_METER, "meter not in the meters table"),
        (no_imp | no_exp, Reason.MISSING_VALUE, None),
        (d.t_ns % raw_ns != 0, Reason.OFF_GRID, "read not on the raw interval grid"),
    ]
    for mask, reason, detail in rules:
        hit = np.flatnonzero(mask & alive)
        if detail is None:  # which registers are missing
            names = np.where(no_imp[hit], REGISTER_COLUMNS[IMPORT], "").astype(object)
            both = np.where(no_imp[hit] & no_exp[hit], " and ", "").astype(object)
            names = names + both + np.where(no_exp[hit], REGISTER_COLUMNS[EXPORT], "")
            detail = (names + " missing").astype(object)
        rows.drop_docs(hit, reason, detail)
        alive[hit] = False
    return alive


def _usable_sequence(d: _Docs, alive: np.ndarray, rows: _Rows, raw_ns: int):
    """Usable documents sorted by (meter, ts) without duplicates, and the first of each meter
    (the baseline, quarantined unless it is context)."""
    pos = np.flatnonzero(alive)
    pos = pos[np.lexsort((d.t_ns[pos], d.code[pos]))]
    vals = np.stack([d.regs[IMPORT][pos], d.regs[EXPORT][pos]], axis=1)
    exact, conflicting, chosen = resolve_duplicates(d.code[pos], d.t_ns[pos] // raw_ns, vals)
    rows.drop_docs(pos[exact], Reason.DUPLICATE, "document repeated with the same registers")
    rows.drop_docs(
        pos[conflicting],
        Reason.CONFLICTING_DUPLICATE,
        np.char.add("kept import_kwh ", (vals[chosen, 0] / 1000).astype(str)).astype(object),
    )
    keep = np.ones(len(pos), dtype=bool)
    keep[exact] = keep[conflicting] = False
    pos = pos[keep]
    first = np.r_[True, d.code[pos][1:] != d.code[pos][:-1]] if len(pos) else np.zeros(0, bool)
    rows.drop_docs(pos[first], Reason.COUNTER_BASELINE, "first register read of the meter")
    return pos, first


def _glitches(v: np.ndarray, first: np.ndarray, tol: float) -> np.ndarray:
    """Reads off their trend and back at the next read of the same meter (dip or spike)."""
    g = np.zeros(len(v), dtype=bool)
    if len(v) < 3:
        return g
    prev, mid, nxt = v[:-2], v[1:-1], v[2:]
    interior = ~first[1:-1] & ~first[2:]
    back = nxt - prev >= -tol  # the next read is at or above the one before the glitch
    g[1:-1] = interior & back & ((mid - prev < -tol) | (mid - nxt > tol))
    return g


def _kwh(wh: np.ndarray) -> np.ndarray:
    return np.round(wh / 1000, 6).astype(str)


@dataclass(frozen=True)
class _Limits:
    per_interval_wh: np.ndarray  # contract bound of one interval, per meter
    tol_wh: float
    rollover_wh: float


def _register_readings(
    d: _Docs,
    pos: np.ndarray,
    first: np.ndarray,
    r: str,
    lim: _Limits,
    rows: _Rows,
    raw_ns: int,
    source: str,
) -> pd.DataFrame:
    """Readings of register ``r`` from the usable sequence (glitches, rollovers, resets and
    decreases handled as in the module docstring)."""
    sign = 1.0 if r == IMPORT else -1.0
    glitch = _drop_glitches(d, pos, first, r, sign, lim.tol_wh, rows)
    seq, seq_first = pos[~glitch], first[~glitch]  # a glitch is never the first read
    later = np.flatnonzero(~seq_first)
    cur, before = seq[later], seq[later - 1]
    span = (d.t_ns[cur] - d.t_ns[before]) // raw_ns
    energy, ok = _register_differences(d, cur, before, span, r, lim, rows)
    _coercion_rows(d, cur[ok], d.t_ns[before[ok]], r, sign * energy[ok], rows)
    return make_readings(
        d.mid[cur[ok]],
        d.t_ns[before[ok]],
        sign * energy[ok],
        source=source,
        register=r,
        span=span[ok].astype(np.int32),
        row=cur[ok],
        context=d.ctx[cur[ok]],
    )


def _drop_glitches(
    d: _Docs, pos: np.ndarray, first: np.ndarray, r: str, sign: float, tol: float, rows: _Rows
) -> np.ndarray:
    """Mask of the glitch reads of register ``r`` in ``pos``, their readings quarantined."""
    v = d.regs[r][pos]
    glitch = _glitches(v, first, tol)
    g = np.flatnonzero(glitch)
    detail = np.char.add(
        np.char.add(np.char.add("register ", _kwh(v[g - 1])), np.char.add(" -> ", _kwh(v[g]))),
        np.char.add(" -> ", _kwh(v[g + 1])),
    ).astype(object)
    values = (sign * (v[g] - v[g - 1]), np.nan)
    stamp_ns = d.t_ns[pos[g - 1]]
    rows.add(pos[g], stamp_ns, r, values, Action.DROPPED, Reason.COUNTER_GLITCH, detail)
    return glitch


def _register_differences(
    d: _Docs,
    cur: np.ndarray,
    before: np.ndarray,
    span: np.ndarray,
    r: str,
    lim: _Limits,
    rows: _Rows,
) -> tuple[np.ndarray, np.ndarray]:
    """Energy (unsigned) of register ``r`` from read ``before`` to read ``cur`` (rollovers
    unwrapped) and the positions kept; resets and decreases quarantined."""
    sign = 1.0 if r == IMPORT else -1.0
    diff = d.regs[r][cur] - d.regs[r][before]
    bound = lim.per_interval_wh[d.code[cur]] * span + lim.tol_wh
    neg = diff < -lim.tol_wh
    wrapped = diff + lim.rollover_wh
    roll = neg & (d.regs[r][before] >= 0.5 * lim.rollover_wh) & (wrapped >= 0) & (wrapped <= bound)
    reset = neg & ~roll & (d.regs[r][cur] <= bound)
    decrease = neg & ~roll & ~reset
    for mask, reason, action in (
        (reset, Reason.COUNTER_RESET, Action.DROPPED),
        (decrease, Reason.COUNTER_DECREASE, Action.DROPPED),
        (roll, Reason.COUNTER_ROLLOVER, Action.CORRECTED),
    ):
        h = np.flatnonzero(mask)
        new = sign * wrapped[h] if action == Action.CORRECTED else np.nan
        change = np.char.add(
            np.char.add("register ", _kwh(d.regs[r][before[h]])),
            np.char.add(" -> ", _kwh(d.regs[r][cur[h]])),
        ).astype(object)
        rows.add(cur[h], d.t_ns[before[h]], r, (sign * diff[h], new), action, reason, change)
    return np.where(roll, wrapped, diff), np.flatnonzero(~(reset | decrease))


def _coercion_rows(
    d: _Docs, docs: np.ndarray, stamp_ns: np.ndarray, r: str, energy: np.ndarray, rows: _Rows
) -> None:
    """``coerced_value`` rows for the register ``r`` readings of documents read with a
    coercion of their meter id, read time or this register."""
    name = REGISTER_COLUMNS[r]
    picked, details, own = [], [], []
    for j in np.flatnonzero(d.coercions[docs] != ""):
        parts = [
            p
            for p in d.coercions[docs[j]].split(COERCION_SEP)
            if p.split(" ", 1)[0] in ("meter_id", "ts", name)
        ]
        if parts:
            picked.append(j)
            details.append(COERCION_SEP.join(parts))
            own.append(any(p.startswith(name + " ") for p in parts))
    if not picked:
        return
    j = np.asarray(picked, dtype=np.int64)
    original = np.where(own, np.nan, energy[j])  # a register stored as text had no number
    rows.add(
        docs[j],
        stamp_ns[j],
        r,
        (original, energy[j]),
        Action.CORRECTED,
        Reason.COERCED_VALUE,
        np.asarray(details, dtype=object),
    )


def registers_to_readings(
    documents: pd.DataFrame,
    meters: pd.DataFrame,
    config: CleaningConfig,
    *,
    source: str,
    rollover_kwh: float,
    locate: DocumentLocator | None = None,
    where: str = "the documents",
    require: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Translate register documents (meter_id, ts UTC, import_kwh, export_kwh, optional
    ``_id``, bool ``context`` and the issue columns of :func:`normalize_documents`; raw documents
    are normalised first) into (readings, adapter quarantine) as in the module docstring.

    ``locate``: where documents sit (default :func:`document_locator`); readings' ``row``
    indexes ``documents``. A required field without a value in every new (not context) document
    raises SourceError naming ``where`` (see :func:`~meterflow.etl.documents.require_fields`)
    unless ``require`` is False (the caller checks a read of several blocks as a whole).
    """
    normalised = "issue" in documents and all(f in documents for f in REQUIRED_FIELDS)
    docs = (documents if normalised else normalize_documents(documents)).reset_index(drop=True)
    if require:
        new = docs[~docs["context"].to_numpy(bool)] if "context" in docs else docs
        require_fields(new, where=where, source=source)
    raw_ns = config.raw_interval_min * 60 * 10**9
    d = _doc_arrays(docs, meters, locate or document_locator(docs))
    rows = _Rows(d, source, raw_ns)
    alive = _document_rules(d, rows, raw_ns)
    pos, first = _usable_sequence(d, alive, rows, raw_ns)
    interval_h = config.raw_interval_min / 60
    scale = interval_h * 1000 * (1 + config.outlier_tolerance)
    per_interval = {
        IMPORT: meters["contractual_power_kw"].to_numpy(float) * scale,
        EXPORT: meters["production_kw"].to_numpy(float) * scale,
    }
    parts = []
    for r in (IMPORT, EXPORT):
        lim = _Limits(per_interval[r], config.outlier_abs_tolerance_wh, rollover_kwh * 1000)
        parts.append(_register_readings(d, pos, first, r, lim, rows, raw_ns, source))
    readings = pd.concat(parts, ignore_index=True)
    readings["meter_id"] = pd.Categorical(readings["meter_id"].astype(object))
    readings["register"] = pd.Categorical(
        readings["register"].astype(object), categories=[IMPORT, EXPORT]
    )
    return readings, concat_quarantine(rows.parts)
