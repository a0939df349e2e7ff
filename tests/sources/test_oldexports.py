"""Old-export CSV folder: DST localisation by order, clear errors, quarantine mode, ETL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig
from meterflow.schemas import profile_matrix
from meterflow.sources.oldexports import etl_oldexports, localise_by_order, read_oldexports_file

TZ = "Europe/Rome"
METERS = pd.DataFrame(
    {"meter_id": ["M1"], "contractual_power_kw": [3.0], "production_kw": [0.0],
     "type": "household", "latitude": 0.0, "longitude": 0.0}
)  # fmt: skip


def wall_clock_rows(day: str) -> list[str]:
    """Local wall-clock interval starts of ``day`` as the old store wrote them (in order)."""
    start = pd.Timestamp(day).tz_localize(TZ)
    end = (pd.Timestamp(day) + pd.Timedelta(days=1)).tz_localize(TZ)
    utc = pd.date_range(start, end, freq="15min", inclusive="left")
    return list(utc.tz_localize(None).strftime("%Y-%m-%d %H:%M:%S"))


def write_csv(path: Path, times: list[str], imp, exp=0.0, meter: str = "M1") -> Path:
    imp = np.broadcast_to(np.asarray(imp, dtype=object), len(times))
    exp = np.broadcast_to(np.asarray(exp, dtype=object), len(times))
    lines = ["meter_id,datetime,active_import,active_export"]
    lines += [f"{meter},{t},{i},{e}" for t, i, e in zip(times, imp, exp, strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_dst_days_have_92_and_100_rows_and_localise_by_order():
    fall, spring = wall_clock_rows("2024-10-27"), wall_clock_rows("2024-03-31")
    assert (len(fall), len(spring)) == (100, 92)
    utc, nonexistent = localise_by_order(pd.DatetimeIndex(pd.to_datetime(fall)), TZ)
    assert not nonexistent.any()
    assert utc.is_monotonic_increasing and utc.is_unique
    assert utc[0] == pd.Timestamp("2024-10-26 22:00", tz="UTC")
    assert utc[-1] == pd.Timestamp("2024-10-27 22:45", tz="UTC")
    # the two 02:00 rows are one hour apart in UTC: summer time first, standard time second
    first, second = (i for i, t in enumerate(fall) if t.endswith("02:00:00"))
    assert utc[second] - utc[first] == pd.Timedelta(hours=1)


def test_fall_back_file_end_to_end(tmp_path: Path):
    times = wall_clock_rows("2024-10-26") + wall_clock_rows("2024-10-27")
    imp = np.full(len(times), 0.1)
    second = [i for i, t in enumerate(times) if "2024-10-27 02:" in t][4:]
    imp[second] = 0.3  # the repeated hour's second occurrence
    write_csv(tmp_path / "M1.csv", times, imp)
    res = etl_oldexports(
        tmp_path, meters=METERS, config=CleaningConfig(resolution_min=15), detect_scale=False
    )
    m = res.metrics
    assert m["readings_in"] == 2 * 196 and m["readings_quarantined"] == 0
    assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"]
    mat = profile_matrix(res.profiles)
    assert mat.shape == (2, 96)
    assert np.allclose(mat[0], 100.0)
    assert np.allclose(mat[1, 8:12], 200.0) and np.allclose(np.delete(mat[1], range(8, 12)), 100)


def test_spring_forward_file_and_a_row_at_a_skipped_time(tmp_path: Path):
    times = wall_clock_rows("2024-03-31")
    times.insert(9, "2024-03-31 02:30:00")  # does not exist on this day
    write_csv(tmp_path / "M1.csv", times, 0.1)
    res = etl_oldexports(
        tmp_path, meters=METERS, config=CleaningConfig(resolution_min=15), detect_scale=False
    )
    q = res.quarantine
    skipped = q[q["reason"] == "nonexistent_local_time"]
    assert len(skipped) == 2 and set(skipped["register"]) == {"import", "export"}
    assert set(skipped["location"]) == {"M1.csv:11"}
    assert np.allclose(profile_matrix(res.profiles), 100.0)
    assert res.metrics["readings_in"] == 2 * 93 and res.metrics["readings_kept"] == 2 * 92


def test_missing_column_names_the_file(tmp_path: Path):
    (tmp_path / "M1.csv").write_text("meter_id,datetime,active_import\nM1,2024-01-01 00:00:00,1\n")
    with pytest.raises(SourceError, match=r"header lacks column.*active_export.*file=M1.csv"):
        read_oldexports_file(tmp_path / "M1.csv", timezone=TZ)


def test_truncated_file_names_file_and_line(tmp_path: Path):
    path = write_csv(tmp_path / "M1.csv", wall_clock_rows("2024-01-10")[:5], 0.1)
    text = path.read_text()
    path.write_text(text + "M1,2024-01-10 01:15:0")  # cut mid-line, no newline
    with pytest.raises(SourceError, match=r"truncated.*file=M1.csv, meter=M1, row=7"):
        read_oldexports_file(path, timezone=TZ)


def test_wrong_type_raises_or_is_quarantined(tmp_path: Path):
    times = wall_clock_rows("2024-01-10")
    imp = np.full(96, "0.1", dtype=object)
    imp[3] = "n/a"
    path = write_csv(tmp_path / "M1.csv", times, imp)
    with pytest.raises(
        SourceError, match=r"active_import is not a number: n/a.*file=M1.csv, meter=M1, row=5"
    ):
        read_oldexports_file(path, timezone=TZ)
    cfg = CleaningConfig(resolution_min=15)
    res = etl_oldexports(
        tmp_path, meters=METERS, config=cfg, detect_scale=False, on_error="quarantine"
    )
    bad = res.quarantine[res.quarantine["reason"] == "malformed_value"]
    assert len(bad) == 2 and set(bad["location"]) == {"M1.csv:5"}
    assert res.metrics["readings_in"] == 192 and res.metrics["readings_quarantined"] == 2
    assert res.metrics["meter_days_out"] == 1  # the lost interval is a short gap: filled
    assert res.metrics["readings_filled"] == 2


def test_empty_or_missing_folder_is_a_source_error(tmp_path: Path):
    with pytest.raises(SourceError, match=r"no <meter_id>\.csv files"):
        etl_oldexports(tmp_path, meters=METERS, config=CleaningConfig(resolution_min=15))
    with pytest.raises(SourceError, match="not found"):
        etl_oldexports(tmp_path / "nope", meters=METERS, config=CleaningConfig(resolution_min=15))
