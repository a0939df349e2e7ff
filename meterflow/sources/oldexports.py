"""Old exports: a folder of per-meter CSV files in local wall-clock time -> readings.

Each ``<meter_id>.csv`` has ``meter_id, datetime, active_import, active_export`` (see
``formats``): ``datetime`` is the naive local START of the interval in ``LOCAL_TIMEZONE``, so
the spring-forward day has 92 rows and the fall-back day 100, with the repeated hour written
twice in time order. Times are localised with the repeated hour inferred by order: a row of an
ambiguous wall-clock time is in summer time until the file jumps back into that hour on that
date, in standard time after. Rows at wall-clock times that do not exist (the skipped hour) are
quarantined.

Each CSV row gives two readings: import (Wh, >= 0) and export (Wh, negated).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig, EtlResult, Reason, clean_readings, make_readings
from meterflow.etl.quarantine import concat_quarantine, quarantine_frame
from meterflow.etl.readings import EXPORT, IMPORT, concat_readings
from meterflow.etl.result import merge_results
from meterflow.schemas import Action
from meterflow.sources.formats import OLD_EXPORT_COLUMNS, SOURCE_OLDMONGO

log = logging.getLogger(__name__)

OnError = Literal["raise", "quarantine"]
_VALUE_COLUMNS = ("active_import", "active_export")


def list_export_files(folder: str | Path) -> list[Path]:
    """The ``*.csv`` files of an old-exports folder, sorted; SourceError when there are none."""
    root = Path(folder)
    if not root.is_dir():
        raise SourceError("old-exports folder not found", source=SOURCE_OLDMONGO, file=str(root))
    files = sorted(root.glob("*.csv"))
    if not files:
        raise SourceError("no <meter_id>.csv files", source=SOURCE_OLDMONGO, file=str(root))
    return files


def read_export_file(
    path: str | Path, *, timezone: str, on_error: OnError = "raise"
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Read one CSV into (readings, quarantine) with localised UTC timestamps.

    Structural problems raise SourceError naming the file and line (line 1 is the header):
    missing column, truncated last line, and -- with ``on_error="raise"`` -- values of the
    wrong type. With ``on_error="quarantine"`` rows with unparseable values are quarantined
    (reason ``malformed_row``) instead.
    """
    path = Path(path)
    name = path.name
    raw = _read_typed(path)
    if raw is None:  # some value is not a number: parse as text to find and name it
        raw = _read_text(path)
    missing = [c for c in OLD_EXPORT_COLUMNS if c not in raw.columns]
    if missing:
        raise SourceError(
            f"missing column(s) {missing}; found {list(raw.columns)}",
            source=SOURCE_OLDMONGO, file=name, row=1,
        )  # fmt: skip
    line = np.arange(len(raw), dtype=np.int64) + 2
    meter = raw["meter_id"].astype(str).str.strip()
    naive = pd.to_datetime(raw["datetime"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    if pd.api.types.is_float_dtype(raw["active_import"]) and pd.api.types.is_float_dtype(
        raw["active_export"]
    ):
        values = {c: raw[c] for c in _VALUE_COLUMNS}
        wrong = np.zeros(len(raw), dtype=bool)
    else:
        values = {c: pd.to_numeric(raw[c].str.strip(), errors="coerce") for c in _VALUE_COLUMNS}
        blank = {c: raw[c].str.strip() == "" for c in _VALUE_COLUMNS}
        wrong = np.logical_or.reduce([(values[c].isna() & ~blank[c]).to_numpy() for c in values])
    bad_type = naive.isna().to_numpy() | (meter == "").to_numpy() | wrong
    if len(raw) and _truncated(path, len(raw.columns)):
        raise SourceError(
            "file is truncated: last line incomplete", source=SOURCE_OLDMONGO, file=name,
            meter=path.stem, row=int(line[-1]),
        )  # fmt: skip
    if bad_type.any() and on_error == "raise":
        i = int(np.flatnonzero(bad_type)[0])
        raise SourceError(
            f"wrong type in row {dict(raw.iloc[i])}", source=SOURCE_OLDMONGO, file=name,
            meter=str(meter.iloc[i]) or path.stem, row=int(line[i]),
        )  # fmt: skip

    utc, nonexistent = localise_by_order(pd.DatetimeIndex(naive), timezone)
    q_parts = []
    for mask, reason, detail in (
        (bad_type, Reason.MALFORMED_ROW, f"{name}: value of the wrong type"),
        (nonexistent & ~bad_type, Reason.NONEXISTENT_LOCAL_TIME,
         f"{name}: wall-clock time skipped by the spring-forward change"),
    ):  # fmt: skip
        idx = np.flatnonzero(mask)
        if len(idx):
            ts = utc[idx].fillna(pd.Timestamp(0, tz="UTC"))
            for reg, col, sign in ((IMPORT, "active_import", 1), (EXPORT, "active_export", -1)):
                q_parts.append(
                    quarantine_frame(
                        meter_id=np.where(meter.iloc[idx] == "", path.stem, meter.iloc[idx]),
                        timestamp=ts, source=SOURCE_OLDMONGO,
                        original_value=sign * 1000 * values[col].to_numpy()[idx],
                        new_value=np.nan, action=Action.DROPPED, reason=reason,
                        detail=np.char.add(detail + " line ", line[idx].astype(str)).astype(object),
                        register=reg,
                    )
                )  # fmt: skip
    ok = np.flatnonzero(~bad_type & ~nonexistent)
    codes, uniques = pd.factorize(meter.to_numpy(object)[ok])
    readings = make_readings(
        pd.Categorical.from_codes(np.concatenate([codes] * 2), categories=uniques),
        utc[ok].append(utc[ok]),
        np.concatenate(
            [1000 * values["active_import"].to_numpy()[ok],
             -1000 * values["active_export"].to_numpy()[ok]]
        ),
        source=SOURCE_OLDMONGO,
        register=pd.Categorical.from_codes(np.repeat([0, 1], len(ok)), categories=[IMPORT, EXPORT]),
        row=np.concatenate([line[ok]] * 2),
    )  # fmt: skip
    return readings, (concat_quarantine(q_parts) if q_parts else None)


def _read_typed(path: Path) -> pd.DataFrame | None:
    """Fast path: numbers parsed by the C reader; None when a value is not a number."""
    try:
        return pd.read_csv(
            path, dtype={"meter_id": str, "datetime": str, "active_import": np.float64,
                         "active_export": np.float64}, keep_default_na=False, na_values=[""],
        )  # fmt: skip
    except ValueError:
        return None
    except pd.errors.EmptyDataError as exc:
        raise SourceError("file is empty", source=SOURCE_OLDMONGO, file=path.name) from exc
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"cannot parse CSV: {str(exc).splitlines()[0]}", source=SOURCE_OLDMONGO, file=path.name
        ) from exc


def _read_text(path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SourceError(
            f"cannot parse CSV: {str(exc).splitlines()[0]}", source=SOURCE_OLDMONGO, file=path.name
        ) from exc


def _truncated(path: Path, n_columns: int) -> bool:
    """Whether the last line was cut off: no final newline and fewer fields than the header
    (or an empty last field)."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        if size == 0:
            return False
        fh.seek(max(0, size - 4096))
        tail = fh.read()
    if tail.endswith((b"\n", b"\r")):
        return False
    last = tail.splitlines()[-1].split(b",")
    return len(last) < n_columns or last[-1].strip() == b""


def localise_by_order(
    naive: pd.DatetimeIndex, timezone: str
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """Localise naive wall-clock times listed in time order; return (UTC times, nonexistent).

    Ambiguous (repeated-hour) times are summer time until the sequence jumps back into the
    repeated hour on the same date, standard time afterwards. Nonexistent times give NaT.
    """
    n = len(naive)
    if n == 0:
        return pd.DatetimeIndex([], tz="UTC").as_unit("ns"), np.zeros(0, dtype=bool)
    dst_all = naive.tz_localize(timezone, ambiguous=np.ones(n, bool), nonexistent="NaT")
    nonexistent = np.asarray(dst_all.isna() & naive.notna())
    strict = naive.tz_localize(
        timezone, ambiguous="NaT", nonexistent="NaT"
    )  # NaT for ambiguous and nonexistent
    ambiguous = np.asarray(strict.isna() & naive.notna()) & ~nonexistent
    if ambiguous.any():
        vals = naive.asi8
        back = np.r_[False, vals[1:] < vals[:-1]] & ambiguous
        date = naive.normalize().asi8
        second = pd.Series(back).groupby(date).cumsum().to_numpy() > 0
        flags = ~(ambiguous & second)
        local = naive.tz_localize(timezone, ambiguous=flags, nonexistent="NaT")
    else:
        local = dst_all
    return local.tz_convert("UTC").as_unit("ns"), nonexistent


def etl_oldexports(
    folder: str | Path,
    *,
    meters: pd.DataFrame,
    config: CleaningConfig,
    detect_scale: bool = True,
    on_error: OnError = "raise",
    files: Sequence[str | Path] | None = None,
    meter_batch: int = 100,
    reference_profiles: pd.DataFrame | None = None,
) -> EtlResult:
    """ETL of an old-exports folder: read every ``<meter_id>.csv`` (or ``files``), clean in
    batches of ``meter_batch`` files with ``config`` (scale detection on unless
    ``detect_scale=False``) and return the merged :class:`EtlResult`.

    ``reference_profiles``: profiles of the same meters from another source that overlaps the
    exports (the SQL historian's ETL output); they fix the absolute level of the scale
    detection on common days. Without them the contractual power alone decides a factor that
    covers a whole file.
    """
    paths = [Path(f) for f in files] if files is not None else list_export_files(folder)
    cfg = dataclasses.replace(config, detect_scale=detect_scale)
    results = []
    for i in range(0, len(paths), meter_batch):
        batch = paths[i : i + meter_batch]
        parts = [read_export_file(p, timezone=cfg.timezone, on_error=on_error) for p in batch]
        readings = concat_readings([r for r, _ in parts], SOURCE_OLDMONGO)
        quarantine = concat_quarantine([q for _, q in parts if q is not None])
        results.append(
            clean_readings(
                readings,
                meters,
                cfg,
                source=SOURCE_OLDMONGO,
                adapter_quarantine=quarantine,
                reference_profiles=reference_profiles,
            )
        )
        log.info("old exports: %d/%d files done", min(i + meter_batch, len(paths)), len(paths))
    result = merge_results(results)
    result.metrics["files_in"] = float(len(paths))
    return result
