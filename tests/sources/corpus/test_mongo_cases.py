"""Mongo corpus: damaged documents in a real collection, read both ways, through the ETL.

Two local days of 15-min reads (cumulative registers) for CLEAN1 and PV1 (clean) and DMG1
(damaged at one read in the morning of the first day). Each case asserts the exact quarantine
rows of the damaged meter by (action, reason), that its rows name the damaged document, that
its daily energy equals the undamaged one (nothing lost or created) and that the clean
neighbours' profiles are those of the clean fleet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pymongo
import pytest

from meterflow.etl import CleaningConfig, EtlResult
from meterflow.sources.mongo import etl_newmongo, read_mongo_documents
from tests.sources.corpus import common
from tests.sources.corpus.common import CLEAN, DAMAGED, PV

DB = "meterflow_corpus"
J = 40  # the damaged read of DMG1: 09:00 UTC (10:00 local) of the first day
NUMERIC = "1001"  # a meter whose id is numeric text, stored as an integer by a drifted writer
METERS_NUMERIC = pd.concat(
    [common.METERS, common.METERS.iloc[[1]].assign(meter_id=NUMERIC)], ignore_index=True
)
STARTS = common.interval_starts()
READS = STARTS[:1].append(STARTS + pd.Timedelta(minutes=15))  # baseline read + one per interval
BASELINE = {("dropped", "counter_baseline"): 2}
SPREAD_BOTH = {("corrected", "accumulated_over_gap"): 2, ("filled", "gap"): 2}
SPREAD_IMPORT = {("corrected", "accumulated_over_gap"): 1, ("filled", "gap"): 1}


def meter_documents(meter: str, profile_of: str | None = None) -> list[dict]:
    """Reads of one meter over the two days (registers from the corpus energy of
    ``profile_of``, default the meter itself)."""
    src = profile_of or meter
    imp = 1000 + np.r_[0, np.cumsum(common.import_kwh(src, len(STARTS)))]
    exp = 500 + np.r_[0, np.cumsum(common.export_kwh(src, len(STARTS)))]
    return [
        {"meter_id": meter, "ts": t.tz_localize(None).to_pydatetime(),
         "import_kwh": round(float(imp[i]), 4), "export_kwh": round(float(exp[i]), 4),
         "voltage_v": 230.0, "current_a": 1.5, "power_w": 350.0}
        for i, t in enumerate(READS)
    ]  # fmt: skip


def fleet() -> list[dict]:
    return [d for m in (CLEAN, DAMAGED, PV) for d in meter_documents(m)]


def at(docs: list[dict], j: int = J, meter: str = DAMAGED) -> int:
    """Position in ``docs`` of read ``j`` of ``meter``."""
    return [i for i, d in enumerate(docs) if d["meter_id"] == meter][j]


# damages: change the fleet's documents in place, return the position of the damaged one


def set_field(name: str, value: Callable[[dict, list[dict], int], object]):
    def damage(docs: list[dict], j: int = J) -> int:
        i = at(docs, j)
        docs[i][name] = value(docs[i], docs, i)
        return i

    return damage


def drop_field(name: str, rename: str | None = None):
    def damage(docs: list[dict], j: int = J) -> int:
        i = at(docs, j)
        value = docs[i].pop(name)
        if rename:
            docs[i][rename] = value
        return i

    return damage


def duplicate(docs: list[dict], j: int = J) -> int:
    docs.append(dict(docs[at(docs, j)]))
    return len(docs) - 1


def integer_meter_ids(docs: list[dict], j: int = J) -> int:
    numeric = meter_documents(NUMERIC, profile_of=DAMAGED)
    for d in numeric:
        d["meter_id"] = int(NUMERIC)
    docs.extend(numeric)
    return len(docs) - len(numeric) + j


def iso(d: dict, offset: str = "") -> str:
    ts = pd.Timestamp(d["ts"]).tz_localize("UTC")
    if offset:
        return ts.tz_convert(offset).isoformat()
    return ts.tz_localize(None).isoformat()


@dataclass(frozen=True)
class Case:
    damage: Callable[[list[dict], int], int]
    expected: dict[tuple[str, str], int]
    meter: str = DAMAGED
    meters: pd.DataFrame = field(default_factory=lambda: common.METERS)
    orphans: int = 0  # rows of documents without a meter (not the damaged meter's rows)
    detail: str = ""  # text in the detail of the damaged document's rows
    own: int | None = None  # rows of the damaged document (default: all but baseline, spread)


CASES = {
    "register_as_text": Case(
        set_field("import_kwh", lambda d, *_: str(d["import_kwh"])),
        BASELINE | {("corrected", "coerced_value"): 1},
        detail="read as",
    ),
    "register_decimal_comma": Case(
        set_field("import_kwh", lambda d, *_: str(d["import_kwh"]).replace(".", ",")),
        BASELINE | {("corrected", "coerced_value"): 1},
        detail=",",
    ),
    "register_not_a_number": Case(
        set_field("import_kwh", lambda *_: "n/a"),
        BASELINE | {("dropped", "malformed_value"): 2} | SPREAD_BOTH,
        detail="'n/a'",
    ),
    "register_thousands_separator_ambiguous": Case(
        set_field("import_kwh", lambda d, *_: f"{int(d['import_kwh']):,}"),
        BASELINE | {("dropped", "malformed_value"): 2} | SPREAD_BOTH,
        detail="ambiguous",
    ),
    "ts_iso_text": Case(
        set_field("ts", lambda d, *_: iso(d)),
        BASELINE | {("corrected", "coerced_value"): 2},
        detail="read as 2024-01-10T09:00:00+00:00",
    ),
    "ts_iso_with_offset": Case(
        set_field("ts", lambda d, *_: iso(d, "+02:00")),
        BASELINE | {("corrected", "coerced_value"): 2},
        detail="+02:00' read as",
    ),
    "ts_epoch_ms": Case(
        set_field("ts", lambda d, *_: int(pd.Timestamp(d["ts"]).value // 10**6)),
        BASELINE | {("corrected", "coerced_value"): 2},
        detail="epoch milliseconds",
    ),
    "ts_epoch_seconds": Case(
        set_field("ts", lambda d, *_: int(pd.Timestamp(d["ts"]).value // 10**9)),
        BASELINE | {("dropped", "missing_key"): 2} | SPREAD_BOTH,
        detail="epoch milliseconds",
    ),
    "ts_unreadable_text": Case(
        set_field("ts", lambda *_: "yesterday 10:00"),
        BASELINE | {("dropped", "missing_key"): 2} | SPREAD_BOTH,
        detail="'yesterday 10:00'",
    ),
    "integer_meter_id": Case(
        integer_meter_ids,
        BASELINE | {("corrected", "coerced_value"): 2 * len(STARTS)},
        meter=NUMERIC,
        meters=METERS_NUMERIC,
        detail="meter_id 1001 read as '1001'",
        own=2,
    ),
    "ts_missing": Case(
        drop_field("ts"),
        BASELINE | {("dropped", "missing_key"): 2} | SPREAD_BOTH,
        detail="ts missing; fields: _id, meter_id, import_kwh",
    ),
    "ts_renamed": Case(
        drop_field("ts", rename="timestamp"),
        BASELINE | {("dropped", "missing_key"): 2} | SPREAD_BOTH,
        detail="timestamp",
    ),
    "ts_null": Case(
        set_field("ts", lambda *_: None),
        BASELINE | {("dropped", "missing_key"): 2} | SPREAD_BOTH,
        detail="ts missing",
    ),
    "meter_id_null": Case(
        set_field("meter_id", lambda *_: None),
        BASELINE | SPREAD_BOTH,
        orphans=2,
        detail="meter_id missing",
    ),
    "import_missing": Case(
        drop_field("import_kwh"),
        BASELINE | {("dropped", "missing_value"): 2} | SPREAD_BOTH,
        detail="import_kwh missing",
    ),
    "register_dip_and_rebound": Case(
        set_field("import_kwh", lambda d, docs, i: docs[i - 1]["import_kwh"] - 5.0),
        BASELINE | {("dropped", "counter_glitch"): 1} | SPREAD_IMPORT,
        detail=" -> ",
    ),
    "register_spike": Case(
        set_field("import_kwh", lambda d, docs, i: docs[i + 1]["import_kwh"] + 5.0),
        BASELINE | {("dropped", "counter_glitch"): 1} | SPREAD_IMPORT,
        detail=" -> ",
    ),
    "duplicate_document": Case(
        duplicate, BASELINE | {("dropped", "duplicate"): 2}, detail="repeated"
    ),
    "extra_unknown_field": Case(set_field("firmware", lambda *_: {"v": "2.1"}), BASELINE),
}


def insert(uri: str, name: str, docs: list[dict]) -> list:
    with pymongo.MongoClient(uri) as client:
        client[DB][name].drop()
        return client[DB][name].insert_many([dict(d) for d in docs]).inserted_ids


def run(uri: str, name: str, docs: list[dict], method: str, meters=common.METERS):
    insert(uri, name, docs)
    documents = read_mongo_documents(uri, DB, name, method=method)
    result = etl_newmongo(documents, meters=meters, config=CleaningConfig(resolution_min=15))
    return documents, result


@pytest.fixture(scope="module")
def clean_result(mongo_uri: str) -> EtlResult:
    _, result = run(mongo_uri, "clean_fleet", fleet(), "pymongo")
    assert common.quarantine_counts(result, DAMAGED) == BASELINE
    assert result.metrics["meter_days_out"] == 3 * 2
    return result


def day_totals(result: EtlResult, meter: str) -> np.ndarray:
    prof = result.profiles.loc[result.profiles["meter_id"] == meter]
    return prof.filter(like="slot_").sum(axis=1).to_numpy()


@pytest.mark.parametrize("method", ["arrow", "pymongo"])
@pytest.mark.parametrize("case_id", list(CASES))
def test_damaged_document(mongo_uri: str, clean_result: EtlResult, case_id: str, method: str):
    case = CASES[case_id]
    docs = fleet()
    damaged = case.damage(docs)
    name = f"{case_id}_{method}"
    ids = insert(mongo_uri, name, docs)
    documents = read_mongo_documents(mongo_uri, DB, name, method=method)
    result = etl_newmongo(documents, meters=case.meters, config=CleaningConfig(resolution_min=15))

    common.assert_outcome(result, case.expected, clean=clean_result, meter=case.meter)
    q = result.quarantine
    orphans = q.loc[q["meter_id"].isna()]
    assert len(orphans) == case.orphans and set(orphans["reason"]) <= {"missing_key"}
    # the damaged document's rows name it and say what was found
    location = f"{name}/_id={ids[damaged]}"
    own = q.loc[q["location"] == location]
    spread = ("counter_baseline", "accumulated_over_gap", "gap")
    default = sum(n for (_, r), n in case.expected.items() if r not in spread) + case.orphans
    assert len(own) == (default if case.own is None else case.own)
    assert own["detail"].str.contains(case.detail, regex=False).all(), own["detail"].tolist()
    assert q["location"].str.startswith(f"{name}/_id=").all()
    # nothing lost or created: the damaged meter's daily energy is the undamaged one
    np.testing.assert_allclose(day_totals(result, DAMAGED), day_totals(clean_result, DAMAGED))
    if case.meter == NUMERIC:
        np.testing.assert_allclose(day_totals(result, NUMERIC), day_totals(clean_result, DAMAGED))


def test_null_read_time_never_takes_the_neighbours_time(mongo_uri: str):
    docs = fleet()
    i = CASES["ts_null"].damage(docs)
    _, result = run(mongo_uri, "ts_null_neighbour", docs, "arrow")
    q = result.quarantine
    rows = q.loc[q["reason"] == "missing_key"]
    neighbours = {pd.Timestamp(docs[i + k]["ts"], tz="UTC") for k in (-1, 1)}
    assert len(rows) == 2 and not set(rows["timestamp"]) & neighbours
    assert rows["timestamp"].isna().all()  # no time: none invented


def drifted_fleet() -> list[dict]:
    """Every damage of the corpus at once, each at another read of DMG1, plus an integer meter
    id that is in no meter table."""
    docs = fleet()
    for k, case in enumerate(CASES.values()):
        case.damage(docs, J + 3 * k)
    return docs


def test_whole_drifted_collection_reads_the_same_both_ways(mongo_uri: str, tmp_path: Path):
    docs = drifted_fleet()
    insert(mongo_uri, "drifted", docs)
    arrow = read_mongo_documents(mongo_uri, DB, "drifted", method="arrow")
    plain = read_mongo_documents(mongo_uri, DB, "drifted", method="pymongo")
    pd.testing.assert_frame_equal(arrow, plain)
    assert (arrow["issue"] != "").sum() > 5 and (arrow["coercions"] != "").sum() > 5
    # the table the load step logs is Parquet-writable and carries what the ETL needs
    arrow.to_parquet(tmp_path / "documents.parquet")
    logged = pd.read_parquet(tmp_path / "documents.parquet")
    direct = etl_newmongo(arrow, meters=common.METERS, config=CleaningConfig(resolution_min=15))
    reloaded = etl_newmongo(logged, meters=common.METERS, config=CleaningConfig(resolution_min=15))
    common.assert_reconciles(direct)
    pd.testing.assert_frame_equal(direct.quarantine, reloaded.quarantine)
    pd.testing.assert_frame_equal(direct.profiles, reloaded.profiles)
    assert direct.quarantine["location"].str.startswith("drifted/_id=").all()
    m = direct.metrics
    assert m["readings_in"] == 2 * len(docs) and m["documents_in"] == len(docs)
    assert m["quarantined_unknown_meter"] == 2 * (len(STARTS) + 1)  # 1001 is in no meter table
