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
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from meterflow.defaults import BLOCK_METERS
from meterflow.domain import SOURCE_OLDMONGO, SOURCE_SQL
from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig, EtlResult, Reason, make_readings
from meterflow.etl.blocks import BlockReadings, cut_blocks
from meterflow.etl.coerce import describe_coercion
from meterflow.etl.quarantine import concat_quarantine, quarantine_frame
from meterflow.etl.readings import EXPORT, IMPORT, concat_readings, empty_readings
from meterflow.schemas import Action
from meterflow.sources.contract import StoreLocations, etl_source
from meterflow.sources.fingerprint import folder_fingerprint
from meterflow.sources.oldexports_file import (
    VALUE_COLUMNS,
    OldExportsRows,
    UnreadableFile,
    parse_rows,
    split_lines,
)

log = logging.getLogger(__name__)

OnError = Literal["raise", "quarantine"]
FILE_COLUMNS = ("file", "meter_id", "status", "reason", "lines", "readings_in")


def list_oldexports_files(folder: str | Path) -> tuple[list[Path], list[dict]]:
    """The CSV exports of a folder (``*.csv`` in any letter case, sorted) and a files-table row
    for every other entry, which is not read; SourceError when there is no export at all."""
    root = Path(folder)
    if not root.is_dir():
        raise SourceError("old-exports folder not found", source=SOURCE_OLDMONGO, file=str(root))
    exports, skipped = [], []
    for entry in sorted(root.iterdir()):
        if entry.suffix.lower() == ".csv" and not entry.is_dir():
            exports.append(entry)
        else:
            kind = "a folder" if entry.is_dir() else f"not a .csv file ({entry.suffix or 'none'})"
            skipped.append(_file_row(entry, "skipped", f"{kind}: not read", 0, 0))
    if not exports:
        raise SourceError("no <meter_id>.csv files", source=SOURCE_OLDMONGO, file=str(root))
    for row in skipped:
        log.warning("old exports: %s skipped (%s)", row["file"], row["reason"])
    return exports, skipped


def _file_row(path: Path, status: str, reason: str, lines: int, readings: int) -> dict:
    return dict(
        zip(FILE_COLUMNS, (path.name, path.stem, status, reason, lines, readings), strict=True)
    )


@dataclass
class OldExportsFile:
    """One file read: its readings, its quarantine rows and its row of the files table."""

    readings: pd.DataFrame
    quarantine: pd.DataFrame | None
    record: dict


def read_oldexports_file(
    path: str | Path, *, timezone: str, on_error: OnError = "raise"
) -> OldExportsFile:
    """Read one CSV into readings (localised UTC timestamps) and quarantine rows.

    With ``on_error="raise"`` the first problem raises SourceError naming the file, its meter
    and the line; with ``"quarantine"`` every bad line is quarantined with its reason and a
    file that cannot be read at all has each line quarantined as ``unreadable_file``.
    """
    path = Path(path)
    try:
        rows = parse_rows(path)
    except UnreadableFile as exc:
        if on_error == "raise":
            raise SourceError(
                exc.reason, source=SOURCE_OLDMONGO, file=path.name, meter=path.stem, row=exc.line
            ) from None
        return _unreadable(path, exc)
    bad = rows.problem != ""
    if bad.any() and on_error == "raise":
        i = int(np.flatnonzero(bad)[0])
        raise SourceError(
            f"{rows.problem[i]}: {rows.problem_detail[i]}",
            source=SOURCE_OLDMONGO,
            file=path.name,
            meter=path.stem,
            row=int(rows.line[i]),
        )
    utc, nonexistent = localise_by_order(rows.naive.where(~bad), timezone)
    _mark(
        rows,
        nonexistent & ~bad,
        Reason.NONEXISTENT_LOCAL_TIME,
        "wall-clock time skipped by the spring-forward change",
    )
    quarantine = _row_quarantine(path, rows, utc)
    readings = _readings(path, rows, utc)
    n_in = len(readings) + (0 if quarantine is None else _dropped(quarantine))
    status = "read" if len(rows.line) else "no data rows"
    if not len(rows.line):
        log.warning("old exports: %s has a header but no data rows", path.name)
    return OldExportsFile(readings, quarantine, _file_row(path, status, "", len(rows.line), n_in))


def _read_or_list(path: Path, timezone: str, on_error: OnError) -> OldExportsFile:
    """:func:`read_oldexports_file`; with ``on_error="quarantine"`` a file the system cannot read
    (permissions, I/O) is listed as failed instead of stopping the other files."""
    try:
        return read_oldexports_file(path, timezone=timezone, on_error=on_error)
    except OSError as exc:
        if on_error == "raise":
            raise SourceError(
                f"cannot read the file: {exc.strerror or exc}",
                source=SOURCE_OLDMONGO,
                file=path.name,
                meter=path.stem,
            ) from None
        log.warning("old exports: %s cannot be read: %s", path.name, exc)
        record = _file_row(path, "failed", f"cannot read the file: {exc.strerror or exc}", 0, 0)
        return OldExportsFile(empty_readings(SOURCE_OLDMONGO), None, record)


def _mark(rows: OldExportsRows, mask: np.ndarray, reason: Reason, detail: str) -> None:
    rows.problem[mask] = str(reason)
    rows.problem_detail[mask] = detail


def _dropped(quarantine: pd.DataFrame) -> int:
    return int((quarantine["action"] == str(Action.DROPPED)).sum())


def _readings(path: Path, rows: OldExportsRows, utc: pd.DatetimeIndex) -> pd.DataFrame:
    """Two readings per usable row (import Wh, export -Wh), located by file and line."""
    ok = np.flatnonzero(rows.problem == "")
    imp, exp = (rows.values[c].values[ok] for c in VALUE_COLUMNS)
    readings = make_readings(
        np.concatenate([rows.meter[ok]] * 2),
        utc[ok].append(utc[ok]),
        np.concatenate([1000 * imp, -1000 * exp]),
        source=SOURCE_OLDMONGO,
        register=pd.Categorical.from_codes(np.repeat([0, 1], len(ok)), categories=[IMPORT, EXPORT]),
        row=np.concatenate([rows.line[ok]] * 2),
    )
    readings["file"] = pd.Categorical.from_codes(np.zeros(len(readings), np.int8), [path.name])
    return readings


def _row_quarantine(path: Path, rows: OldExportsRows, utc: pd.DatetimeIndex) -> pd.DataFrame | None:
    """Both readings of every refused row (dropped), and decimal commas read (corrected)."""
    parts = []
    bad = rows.problem != ""
    for (reg, col, sign), parsed in zip(_REGISTERS, rows.values.values(), strict=True):
        for mask, action in ((bad, Action.DROPPED), (parsed.coerced & ~bad, Action.CORRECTED)):
            idx = np.flatnonzero(mask)
            if not len(idx):
                continue
            if action == Action.DROPPED:
                reason, detail = rows.problem[idx], rows.problem_detail[idx]
            else:
                reason = np.full(len(idx), str(Reason.COERCED_VALUE), dtype=object)
                detail = describe_coercion(col, parsed.raw[idx], parsed.values[idx])
            wh = sign * 1000 * parsed.values[idx]
            parts.append(
                quarantine_frame(
                    meter_id=rows.quarantine_meter()[idx],
                    timestamp=utc[idx],
                    source=SOURCE_OLDMONGO,
                    original_value=wh,
                    new_value=wh if action == Action.CORRECTED else np.nan,
                    action=action,
                    reason=Reason.MALFORMED_ROW,
                    detail=detail,
                    register=reg,
                    location=np.char.add(f"{path.name}:", rows.line[idx].astype(str)),
                ).assign(reason=reason)
            )
    return concat_quarantine(parts) if parts else None


def _unreadable(path: Path, exc: UnreadableFile) -> OldExportsFile:
    """A file that cannot be read: each of its lines quarantined (both registers)."""
    try:
        lines, _ = split_lines(path.read_bytes())
    except UnreadableFile:
        lines = []
    body = np.asarray(lines[1:], dtype=object)
    line_no = np.arange(2, len(lines) + 1)
    keep = np.array([bool(str(t).strip()) for t in body], dtype=bool)
    body, line_no = body[keep], line_no[keep]
    detail = np.char.add(f"{exc.reason}: ", np.array([str(t)[:200] for t in body], dtype=str))
    parts = [
        quarantine_frame(
            meter_id=np.full(len(body), path.stem, dtype=object),
            timestamp=pd.DatetimeIndex([pd.NaT] * len(body), tz="UTC"),
            source=SOURCE_OLDMONGO,
            original_value=np.nan,
            new_value=np.nan,
            action=Action.DROPPED,
            reason=Reason.UNREADABLE_FILE,
            detail=detail.astype(object),
            register=reg,
            location=np.char.add(f"{path.name}:", line_no.astype(str)),
        )
        for reg, _, _ in _REGISTERS
    ]
    log.warning(
        "old exports: %s cannot be read (%s): %d lines quarantined",
        path.name,
        exc.reason,
        len(body),
    )
    record = _file_row(path, "quarantined", exc.reason, len(body), 2 * len(body))
    return OldExportsFile(empty_readings(SOURCE_OLDMONGO), concat_quarantine(parts), record)


_REGISTERS = ((IMPORT, "active_import", 1), (EXPORT, "active_export", -1))


def locate_in_file(rows: pd.DataFrame) -> np.ndarray:
    """Location of old-export readings: ``<file>:<line>``."""
    return (rows["file"].astype(str) + ":" + rows["row"].astype(str)).to_numpy(object)


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


class OldExportsSource:
    """An old-exports folder (every ``<meter_id>.csv``, or ``files``) as a
    :class:`~meterflow.sources.contract.Source`, cleaned with scale detection unless
    ``detect_scale`` is False: the files of one meter (one file name stem)
    are always read in the same block; ``files_in``/``files_not_read`` and the files table are
    added at the end."""

    name = SOURCE_OLDMONGO
    title = "old per-meter exports"
    reference_source = SOURCE_SQL
    load_step = None

    def __init__(
        self,
        folder: str | Path,
        config: CleaningConfig,
        *,
        detect_scale: bool = True,
        on_error: OnError = "raise",
        files: Sequence[str | Path] | None = None,
    ) -> None:
        if files is not None:
            self.paths, self.skipped = [Path(f) for f in files], []
        else:
            self.paths, self.skipped = list_oldexports_files(folder)
        self.config = dataclasses.replace(config, detect_scale=detect_scale)
        self.on_error = on_error
        self.by_meter: dict[str, list[int]] = {}
        for i, path in enumerate(self.paths):
            self.by_meter.setdefault(path.stem, []).append(i)
        self.records: dict[int, dict] = {}

    @classmethod
    def from_stores(cls, stores: StoreLocations, config: CleaningConfig) -> OldExportsSource:
        return cls(stores.exports_dir, config)

    @classmethod
    def fingerprint(cls, stores: StoreLocations) -> str:
        return folder_fingerprint(stores.exports_dir)

    def meter_blocks(self, block_meters: int) -> list[list[str]]:
        return cut_blocks(self.by_meter, block_meters)

    def read_block(self, index: int, meter_ids: list[str], meters: pd.DataFrame) -> BlockReadings:
        block = [i for m in meter_ids for i in self.by_meter[m]]
        parts = [_read_or_list(self.paths[i], self.config.timezone, self.on_error) for i in block]
        self.records.update(zip(block, (p.record for p in parts), strict=True))
        return BlockReadings(
            concat_readings([p.readings for p in parts], SOURCE_OLDMONGO),
            concat_quarantine([p.quarantine for p in parts if p.quarantine is not None]),
            locate_in_file,
        )

    def finish(self, result: EtlResult) -> EtlResult:
        rows = self.skipped + [self.records[i] for i in sorted(self.records)]
        result.metrics["files_in"] = float(len(self.paths))
        result.metrics["files_not_read"] = float(sum(r["status"] != "read" for r in rows))
        result.files = pd.DataFrame.from_records(rows, columns=list(FILE_COLUMNS))
        return result


def etl_oldexports(
    folder: str | Path,
    *,
    meters: pd.DataFrame,
    config: CleaningConfig,
    detect_scale: bool = True,
    on_error: OnError = "raise",
    files: Sequence[str | Path] | None = None,
    block_meters: int = BLOCK_METERS,
    reference_profiles: pd.DataFrame | None = None,
) -> EtlResult:
    """ETL of an old-exports folder: read every ``<meter_id>.csv`` (or ``files``) and clean
    them ``block_meters`` meters at a time (``etl.blocks``; the files of one meter, i.e. of one
    file name stem, always together) with ``config`` (scale detection on unless
    ``detect_scale=False``); the merged :class:`EtlResult` is the same for any block size.

    ``reference_profiles``: profiles of the same meters from another source that overlaps the
    exports (the SQL historian's ETL output); they fix the absolute level of the scale
    detection on common days. Without them the contractual power alone decides a factor that
    covers a whole file.
    """
    source = OldExportsSource(
        folder, config, detect_scale=detect_scale, on_error=on_error, files=files
    )
    return etl_source(
        source, meters=meters, reference_profiles=reference_profiles, block_meters=block_meters
    )
