"""Damaged old per-meter exports: each case's exact quarantine, files table or one-line error,
and the clean neighbours' profiles unchanged."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow.errors import SourceError
from meterflow.etl import CleaningConfig
from meterflow.etl.quality import quality_with_every_meter
from meterflow.sources.oldexports import etl_oldexports
from tests.sources.corpus.common import (
    CLEAN,
    DAMAGED,
    METERS,
    PV,
    TZ,
    assert_outcome,
    export_kwh,
    import_kwh,
    interval_starts,
)

HEADER = "meter_id,datetime,active_import,active_export"


def lines_of(meter: str, minutes: int = 15, file_meter: str | None = None) -> list[str]:
    """Data lines of a meter's export at ``minutes`` resolution (energy per row scaled)."""
    starts = interval_starts()
    imp, exp = import_kwh(meter, len(starts)), export_kwh(meter, len(starts))
    if minutes != 15:
        per_min_imp, per_min_exp = np.repeat(imp, 15) / 15, np.repeat(exp, 15) / 15
        imp = per_min_imp.reshape(-1, minutes).sum(axis=1)
        exp = per_min_exp.reshape(-1, minutes).sum(axis=1)
        starts = pd.date_range(starts[0], periods=len(imp), freq=f"{minutes}min")
    local = starts.tz_convert(TZ).tz_localize(None).strftime("%Y-%m-%d %H:%M:%S")
    name = file_meter or meter
    return [f"{name},{t},{i:.6g},{e:.6g}" for t, i, e in zip(local, imp, exp, strict=True)]


def write_folder(folder: Path, damaged_text: str | bytes | None, name: str = f"{DAMAGED}.csv"):
    for meter in (CLEAN, PV):
        (folder / f"{meter}.csv").write_text("\n".join([HEADER, *lines_of(meter)]) + "\n")
    if isinstance(damaged_text, bytes):
        (folder / name).write_bytes(damaged_text)
    elif damaged_text is not None:
        (folder / name).write_text(damaged_text)


def text(lines: list[str], end: str = "\n") -> str:
    return "\n".join([HEADER, *lines]) + end


def edit(n: int, new: Callable[[str], str]) -> Callable[[], str]:
    """The damaged file with its n-th data line changed."""

    def build() -> str:
        lines = lines_of(DAMAGED)
        lines[n] = new(lines[n])
        return text(lines)

    return build


def field(i: int, value: str) -> Callable[[str], str]:
    return lambda line: ",".join(value if j == i else f for j, f in enumerate(line.split(",")))


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], str | bytes | None]
    expected: dict[tuple[str, str], int]
    file_status: str = "read"
    same_damaged_profile: bool = False
    filename: str = f"{DAMAGED}.csv"


D, C, F = "dropped", "corrected", "filled"
GAP2 = {(F, "gap"): 2}  # one line lost: its import and export interval interpolated
CASES = [
    Case("header_only", lambda: HEADER + "\n", {}, file_status="no data rows"),
    Case("empty_file", lambda: "", {}, file_status="quarantined"),
    Case("whitespace_only", lambda: "\n \n", {}, file_status="quarantined"),
    Case(
        "upper_case_extension",
        lambda: text(lines_of(DAMAGED)),
        {},
        same_damaged_profile=True,
        filename=f"{DAMAGED}.CSV",
    ),
    Case(
        "crlf_line_ends",
        lambda: text(lines_of(DAMAGED)).replace("\n", "\r\n"),
        {},
        same_damaged_profile=True,
    ),
    Case("utf8_bom", lambda: "\ufeff" + text(lines_of(DAMAGED)), {}, same_damaged_profile=True),
    Case(
        "blank_lines_inside",
        lambda: text([*lines_of(DAMAGED)[:50], "", "  ", *lines_of(DAMAGED)[50:]]),
        {},
        same_damaged_profile=True,
    ),
    Case(
        "semicolon_separated",
        lambda: text(lines_of(DAMAGED)).replace(",", ";"),
        {(D, "unreadable_file"): 2 * 192},
        file_status="quarantined",
    ),
    Case(
        "wrong_header",
        lambda: text(lines_of(DAMAGED)).replace("active_export", "export"),
        {(D, "unreadable_file"): 2 * 192},
        file_status="quarantined",
    ),
    Case(
        "not_utf8_byte",
        lambda: (
            text(lines_of(DAMAGED))
            .encode()
            .replace(lines_of(DAMAGED)[30].encode(), lines_of(DAMAGED)[30].encode() + b"\xff")
        ),
        {(D, "malformed_row"): 2, **GAP2},
    ),
    Case(
        "truncated_last_line_all_fields",
        lambda: text(lines_of(DAMAGED))[:-3],
        {(D, "truncated_line"): 2, (D, "incomplete_day"): 2 * 95},
    ),
    Case(
        "truncated_last_line_mid_field",
        lambda: text(lines_of(DAMAGED))[:-12],
        {(D, "truncated_line"): 2, (D, "incomplete_day"): 2 * 95},
    ),
    Case("row_of_another_meter", edit(40, field(0, CLEAN)), {(D, "meter_mismatch"): 2, **GAP2}),
    Case("file_of_another_meter", lambda: text(lines_of(CLEAN)), {(D, "meter_mismatch"): 2 * 192}),
    Case("blank_meter_id", edit(40, field(0, "")), {(D, "missing_key"): 2, **GAP2}),
    Case("blank_datetime", edit(40, field(1, "")), {(D, "missing_key"): 2, **GAP2}),
    Case("bad_datetime", edit(40, field(1, "10/01/2024 10:00")), {(D, "malformed_row"): 2, **GAP2}),
    Case(
        "quoted_decimal_comma",
        edit(
            40,
            lambda ln: ",".join(
                f'"{f.replace(".", ",")}"' if i == 2 else f for i, f in enumerate(ln.split(","))
            ),
        ),
        {(C, "coerced_value"): 1},
        same_damaged_profile=True,
    ),
    Case("unquoted_decimal_comma", edit(40, field(2, "0,25")), {(D, "malformed_row"): 2, **GAP2}),
    Case("text_value", edit(40, field(2, "n/a")), {(D, "malformed_value"): 2, **GAP2}),
    Case("blank_value", edit(40, field(2, "")), {(D, "missing_value"): 1, (F, "gap"): 1}),
    Case("extra_field", edit(40, lambda ln: ln + ",7"), {(D, "malformed_row"): 2, **GAP2}),
    Case(
        "missing_field",
        edit(40, lambda ln: ln.rsplit(",", 1)[0]),
        {(D, "malformed_row"): 2, **GAP2},
    ),
    Case(
        "duplicate_line",
        lambda: text([*lines_of(DAMAGED), lines_of(DAMAGED)[40]]),
        {(D, "duplicate"): 2},
    ),
    Case("negative_import", edit(40, field(2, "-0.3")), {(D, "negative_energy"): 1, (F, "gap"): 1}),
    Case(
        "five_minute_file",
        lambda: text(lines_of(DAMAGED, 5)),
        {(C, "aggregated_interval"): 2 * 576},
        same_damaged_profile=True,
    ),
    Case(
        "thirty_minute_file", lambda: text(lines_of(DAMAGED, 30)), {(D, "coarse_interval"): 2 * 96}
    ),
    Case("hourly_file", lambda: text(lines_of(DAMAGED, 60)), {(D, "coarse_interval"): 2 * 48}),
    Case(
        "ten_minute_file", lambda: text(lines_of(DAMAGED, 10)), {(D, "irregular_interval"): 2 * 288}
    ),
]


@pytest.fixture(scope="module")
def clean_result(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("clean")
    write_folder(folder, text(lines_of(DAMAGED)))
    result = etl_oldexports(folder, meters=METERS, config=CleaningConfig(resolution_min=15))
    assert len(result.quarantine) == 0 and result.metrics["meter_days_out"] == 6
    return result


def run(folder: Path, on_error: str = "quarantine"):
    return etl_oldexports(
        folder, meters=METERS, config=CleaningConfig(resolution_min=15), on_error=on_error
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_export(case: Case, tmp_path: Path, clean_result) -> None:
    write_folder(tmp_path, case.build(), case.filename)
    result = run(tmp_path)
    assert_outcome(result, case.expected, clean=clean_result)
    files = result.files.set_index("file")
    assert files.loc[case.filename, "status"] == case.file_status
    assert set(files.index) == {f"{CLEAN}.csv", f"{PV}.csv", case.filename}
    if case.same_damaged_profile:
        got = result.profiles.loc[result.profiles["meter_id"] == DAMAGED]
        want = clean_result.profiles.loc[clean_result.profiles["meter_id"] == DAMAGED]
        np.testing.assert_allclose(got.filter(like="slot_"), want.filter(like="slot_"), atol=0.01)
    quality = quality_with_every_meter(result.quality, METERS).set_index("meter_id")
    assert list(quality.index) == sorted(METERS["meter_id"])


RAISED = [
    ("empty_file", "", "file is empty (source=oldmongo, file=DMG1.csv, meter=DMG1)"),
    (
        "wrong_header",
        text(lines_of(DAMAGED)).replace("active_export", "export"),
        "header lacks column(s) ['active_export']; found ['meter_id', 'datetime', 'active_import', "
        "'export'] (source=oldmongo, file=DMG1.csv, meter=DMG1, row=1)",
    ),
    (
        "text_value_after_blank_lines",
        text(["", *lines_of(DAMAGED)[:3], "n/a,,,"]),
        "missing_key: meter_id or datetime is blank (source=oldmongo, file=DMG1.csv, meter=DMG1, "
        "row=6)",
    ),
    (
        "row_of_another_meter",
        edit(2, field(0, CLEAN))(),
        "meter_mismatch: row names meter CLEAN1, the file is DMG1 (source=oldmongo, file=DMG1.csv, "
        "meter=DMG1, row=4)",
    ),
    (
        "truncated",
        text(lines_of(DAMAGED))[:-3],
        "truncated_line: last line has no line end (source=oldmongo, file=DMG1.csv, meter=DMG1, "
        "row=193)",
    ),
]


@pytest.mark.parametrize(("name", "content", "message"), RAISED, ids=[r[0] for r in RAISED])
def test_raise_mode_names_file_meter_and_line(name, content, message, tmp_path: Path) -> None:
    write_folder(tmp_path, content)
    with pytest.raises(SourceError) as err:
        run(tmp_path, on_error="raise")
    assert str(err.value) == message


def test_files_that_are_not_exports_are_listed_not_read(tmp_path: Path, clean_result) -> None:
    write_folder(tmp_path, text(lines_of(DAMAGED)))
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "archive").mkdir()
    result = run(tmp_path)
    files = result.files.set_index("file")
    assert files.loc["notes.txt", "status"] == "skipped"
    assert files.loc["archive", "reason"] == "a folder: not read"
    pd.testing.assert_frame_equal(result.profiles, clean_result.profiles)


def test_missing_meter_file_shows_in_the_quality_table(tmp_path: Path) -> None:
    write_folder(tmp_path, None)
    result = run(tmp_path)
    quality = quality_with_every_meter(result.quality, METERS).set_index("meter_id")
    assert quality.loc[DAMAGED, "note"] == "no readings"
    assert quality.loc[DAMAGED, "readings_in"] == 0


def test_a_file_that_cannot_be_opened_is_listed_and_the_others_read(tmp_path: Path, clean_result):
    write_folder(tmp_path, None)
    (tmp_path / f"{DAMAGED}.csv").mkdir()  # a folder named like an export: open() fails
    (tmp_path / "ZZZ.csv").symlink_to(tmp_path / "missing-target.csv")
    result = run(tmp_path)
    files = result.files.set_index("file")
    assert files.loc["ZZZ.csv", "status"] == "failed"
    assert files.loc["ZZZ.csv", "reason"] == "cannot read the file: No such file or directory"
    assert files.loc[f"{DAMAGED}.csv", "status"] == "skipped"
    for meter in (CLEAN, PV):
        got = result.profiles.loc[result.profiles["meter_id"] == meter].reset_index(drop=True)
        want = clean_result.profiles.loc[clean_result.profiles["meter_id"] == meter]
        pd.testing.assert_frame_equal(got, want.reset_index(drop=True))
