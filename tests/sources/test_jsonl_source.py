"""A worked example of adding a data source: a folder of JSON-lines files (one per meter, one
reading per line), defined in this module alone and added with one registry entry; it passes
the same contract checks as the real sources, cleaned by the shared ``etl.blocks.clean_in_blocks``
loop through ``sources.contract.etl_source``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from meterflow import domain
from meterflow.etl import EXPORT, IMPORT, CleaningConfig, EtlResult, Reason, make_readings
from meterflow.etl.blocks import BlockReadings, cut_blocks
from meterflow.etl.quarantine import concat_quarantine, quarantine_frame
from meterflow.schemas import Action
from meterflow.sources.contract import StoreLocations
from tests.sources import synthetic_fleet
from tests.sources.conformance import Stores, check_contract, run_source


class JsonLinesSource:
    """``<data_dir>/jsonl/<meter_id>.jsonl``: lines ``{"meter", "start" (UTC interval start),
    "import_wh", "export_wh"}``; a line that is not such a JSON object is quarantined."""

    name = "jsonl"
    title = "JSON-lines folder"
    reference_source = None
    load_step = None

    def __init__(self, folder: Path, config: CleaningConfig) -> None:
        self.config = config
        self.files = {p.stem: p for p in sorted(folder.glob("*.jsonl"))}

    @classmethod
    def from_stores(cls, stores: StoreLocations, config: CleaningConfig) -> JsonLinesSource:
        return cls(stores.data_dir / "jsonl", config)

    @classmethod
    def fingerprint(cls, stores: StoreLocations) -> str:
        files = sorted((stores.data_dir / "jsonl").glob("*.jsonl"))
        marks = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files]
        return hashlib.sha256(repr(marks).encode()).hexdigest()[:16]

    def meter_blocks(self, block_meters: int) -> list[list[str]]:
        return cut_blocks(self.files, block_meters)

    def read_block(self, index: int, meter_ids: list[str], meters: pd.DataFrame) -> BlockReadings:
        rows, bad = [], []
        for mid in meter_ids:
            path = self.files[mid]
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                try:
                    r = json.loads(line)
                    rows.append((r["meter"], r["start"], r["import_wh"], r["export_wh"]))
                except (json.JSONDecodeError, KeyError, TypeError):
                    bad.append((mid, f"{path.name}:{n}"))
                    continue
                rows[-1] += (f"{path.name}:{n}",)
        table = pd.DataFrame(rows, columns=["meter", "start", "imp", "exp", "location"])
        where = np.concatenate([table["location"].to_numpy(object)] * 2)
        readings = make_readings(
            np.concatenate([table["meter"]] * 2),
            pd.to_datetime(pd.concat([table["start"]] * 2), utc=True),
            np.concatenate([table["imp"], -table["exp"]]),
            source=self.name,
            register=np.repeat([IMPORT, EXPORT], len(table)),
        )
        return BlockReadings(readings, self._malformed(bad), lambda r: where[r["row"].to_numpy()])

    def _malformed(self, bad: list[tuple[str, str]]) -> pd.DataFrame | None:
        """One dropped row per line that is not a reading (its two values unknown)."""
        if not bad:
            return None
        mid, where = (np.array(c, dtype=object) for c in zip(*bad, strict=True))
        return concat_quarantine([
            quarantine_frame(
                meter_id=mid, timestamp=np.full(len(mid), np.datetime64("NaT"), "M8[ns]"),
                source=self.name, original_value=np.nan, new_value=np.nan,
                action=Action.DROPPED, reason=Reason.MALFORMED_ROW,
                detail="not a JSON reading", register=register, location=where,
            )
            for register in (IMPORT, EXPORT)
        ])  # fmt: skip

    def finish(self, result: EtlResult) -> EtlResult:
        return result


def write_jsonl(folder: Path, fleet: synthetic_fleet.Fleet) -> None:
    """The fleet's readings (gaps and an outlier of the other stores), one broken line."""
    keep, imp = synthetic_fleet._defects(fleet, np.random.default_rng(4))
    folder.mkdir(parents=True)
    starts = fleet.starts.strftime("%Y-%m-%dT%H:%M:%SZ")
    for m, mid in enumerate(fleet.ids):
        lines = [
            json.dumps({"meter": mid, "start": s, "import_wh": 1000 * i, "export_wh": 1000 * e})
            for s, i, e, k in zip(starts, imp[m], fleet.exp[m], keep[m], strict=True)
            if k
        ]
        if m == 2:
            lines.insert(10, '{"meter": "M00003", "start": ')
        (folder / f"{mid}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture()
def jsonl_stores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    where = f"{__name__}:{JsonLinesSource.__name__}"
    monkeypatch.setitem(domain.SOURCE_ADAPTERS, JsonLinesSource.name, where)  # the one line
    fleet = synthetic_fleet.build(n_meters=6, days=6)
    stores = Stores(tmp_path, "sqlite://", "", "unused")
    write_jsonl(tmp_path / "jsonl", fleet)
    return fleet, stores


def test_a_jsonl_source_added_in_one_entry_keeps_the_contract(jsonl_stores):
    fleet, stores = jsonl_stores
    result = run_source("jsonl", stores, fleet.meters, {})
    check_contract("jsonl", result, fleet, stores)
    q = result.quarantine
    broken = q[q["reason"] == str(Reason.MALFORMED_ROW)]
    assert list(broken["location"]) == ["M00003.jsonl:11"] * 2
    assert "M00001.jsonl:" in q.loc[q["reason"] == str(Reason.OUTLIER), "location"].iloc[0]


def test_its_fingerprint_changes_with_the_files(jsonl_stores):
    _, stores = jsonl_stores
    before = JsonLinesSource.fingerprint(stores)
    with (stores.data_dir / "jsonl" / "M00001.jsonl").open("a") as f:
        f.write("\n")
    assert JsonLinesSource.fingerprint(stores) != before


def test_the_pipeline_runs_its_etl_and_harmonizes_it(jsonl_stores):
    """The one registry line also gives the source its pipeline chain, its ETL entry point
    (``etl_jsonl`` through ``etl_source.py``) with the pipeline's cleaning options, and its
    MLproject entry."""
    from meterflow.entrypoints import entry_point, render_mlproject
    from meterflow.orchestration.steps import check_table, etl_runs, pipeline_steps
    from meterflow.settings import EtlSourceOptions, PipelineOptions, step_options

    steps = {step.name: step for step in pipeline_steps()}
    assert steps["etl_jsonl"].fingerprint == JsonLinesSource.fingerprint
    assert steps["etl_jsonl"].lane == "jsonl" and not steps["etl_jsonl"].upstream
    assert "etl_jsonl" in steps["harmonization"].upstream["etl_runs"] == etl_runs()
    check_table()
    options = step_options("etl_jsonl", PipelineOptions(resolution=30), source_fingerprint="f")
    assert isinstance(options, EtlSourceOptions)
    assert (options.source, options.resolution, options.source_fingerprint) == ("jsonl", 30, "f")
    assert entry_point("etl_jsonl").script == "etl_source.py"
    mlproject = render_mlproject()
    assert "  etl_jsonl:\n    parameters:\n" in mlproject
    assert 'source: {type: string, default: "jsonl"}' in mlproject


def test_its_etl_entry_point_logs_the_profiles_run(jsonl_stores, tracking, monkeypatch):
    import mlflow

    from meterflow.cli import run_entry
    from meterflow.schemas import Table
    from meterflow.tracking import load_table

    fleet, stores = jsonl_stores
    sql_url = f"sqlite:///{stores.data_dir / 'historian.db'}"
    synthetic_fleet.write_historian(sql_url, fleet)  # the meter table
    monkeypatch.setenv("METERFLOW_DATA_DIR", str(stores.data_dir))
    monkeypatch.setenv("METERFLOW_SQL_URL", sql_url)
    assert run_entry("etl_source", ["--source", "jsonl"]) == 0
    run = mlflow.search_runs(output_format="list")[0]
    assert run.data.tags["mlflow.project.entryPoint"] == "etl_jsonl"
    profiles = load_table(run.info.run_id, Table.PROFILES)
    assert set(profiles["source"]) == {"jsonl"}
    assert set(profiles["meter_id"]) <= set(fleet.meters["meter_id"])
    assert run.data.metrics["readings_quarantined"] > 0


def test_an_unknown_source_is_refused_in_one_line(jsonl_stores, capsys):
    from meterflow.cli import run_entry

    assert run_entry("etl_source", ["--source", "nosuch"]) == 2
    assert "source: must be one of newmongo, sql, oldmongo, jsonl" in capsys.readouterr().err
