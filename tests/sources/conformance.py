"""The source contract checked on a run of any registered source (``sources.registry``) over a
synthetic fleet whose true energy is known: the profiles validate, every quarantined, corrected
or filled value keeps its reason and its store location, and every kept value lands on the
right meter, interval and scale (a profile value that is not the true one was filled or
corrected, and says so in the quarantine)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from meterflow.etl import CleaningConfig, EtlResult, Reason
from meterflow.schemas import QUARANTINE, Action, profile_matrix, validate_profiles
from meterflow.sources.contract import Source, etl_source
from meterflow.sources.registry import source_class
from tests.sources.synthetic_fleet import TZ, Fleet

CFG = CleaningConfig(resolution_min=15)


@dataclass(frozen=True)
class Stores:
    """Store locations (``sources.contract.StoreLocations``) of a test fleet."""

    data_dir: Path
    sql_url: str
    mongodb_uri: str
    mongo_database: str

    @property
    def exports_dir(self) -> Path:
        return self.data_dir / "oldmongo"

    def require_mongodb_uri(self) -> str:
        return self.mongodb_uri


def run_source(name: str, stores: Stores, meters: pd.DataFrame, results: dict) -> EtlResult:
    """The ETL of registered source ``name`` over ``stores`` in blocks of 4 meters, anchored on
    the profiles of its reference source (run first, kept in ``results``)."""
    cls: type[Source] = source_class(name)
    assert cls.name == name, f"registry key {name!r} names class {cls.__name__} ({cls.name!r})"
    reference = None
    if cls.reference_source is not None:
        if cls.reference_source not in results:
            run_source(cls.reference_source, stores, meters, results)
        reference = results[cls.reference_source].profiles
    source = cls.from_stores(stores, CFG)
    result = etl_source(source, meters=meters, reference_profiles=reference, block_meters=4)
    results[name] = result
    return result


def check_contract(name: str, result: EtlResult, fleet: Fleet, stores: Stores) -> None:
    """Every check of the module doc on one source's result."""
    validate_profiles(result.profiles, where=name)
    QUARANTINE.validate(result.quarantine, where=name)
    m = result.metrics
    assert m["readings_in"] == m["readings_kept"] + m["readings_quarantined"] > 0
    assert set(result.profiles["source"]) == {name}
    _check_quarantine(name, result.quarantine)
    _check_values(result, fleet)
    fingerprint = source_class(name).fingerprint(stores)
    assert isinstance(fingerprint, str) and fingerprint == source_class(name).fingerprint(stores)


def _check_quarantine(name: str, q: pd.DataFrame) -> None:
    """Each row names this source and a reason; each dropped or corrected value, and each fill
    taken from a reading, names where the store holds it."""
    assert len(q) and (q["source"] == name).all()
    assert (q["reason"].str.len() > 0).all()
    from_store = (q["action"] != str(Action.FILLED)) | (q["register"] != "net")
    assert (q.loc[from_store, "location"].str.len() > 0).all(), "a value without its location"
    dropped = q[q["action"] == str(Action.DROPPED)]
    assert set(dropped["reason"]) >= {"unknown_meter"}  # the GHOST meter of the fleet
    assert "GHOST" in set(dropped["meter_id"])


def _check_values(result: EtlResult, fleet: Fleet) -> None:
    """Profiles of non-DST days against the fleet's true net energy (Wh): right meter, local
    slot and scale, except values the quarantine says were estimated there (filled, or spread
    over a gap); a scale correction must give the true value."""
    p = result.profiles
    local = pd.to_datetime(p["date"]).dt.tz_localize(None)
    starts = local.to_numpy()[:, None] + pd.to_timedelta(np.arange(96) * 15, unit="min").to_numpy()
    utc = pd.DatetimeIndex(starts.ravel()).tz_localize(TZ, ambiguous="NaT", nonexistent="NaT")
    utc = utc.tz_convert("UTC")
    col = fleet.starts.get_indexer(utc)
    row = np.repeat([fleet.ids.index(mid) for mid in p["meter_id"]], 96)
    whole_day = (col >= 0).reshape(-1, 96).all(axis=1).repeat(96)  # not a DST day: every slot
    assert whole_day.mean() > 0.5, "too few profiles to check"
    truth = 1000 * (fleet.imp[row, col] - fleet.exp[row, col])
    got = profile_matrix(p).ravel()
    wrong = whole_day & ~np.isclose(got, truth, rtol=1e-9, atol=1e-3)
    q = result.quarantine
    estimated = (q["action"] == str(Action.FILLED)) | (
        (q["action"] == str(Action.CORRECTED)) & (q["reason"] != str(Reason.SCALE))
    )
    changed = q[estimated]
    explained = pd.MultiIndex.from_arrays([changed["meter_id"], changed["timestamp"]])
    keys = pd.MultiIndex.from_arrays([p["meter_id"].to_numpy().repeat(96)[wrong], utc[wrong]])
    unexplained = keys[~keys.isin(explained)]
    assert not len(unexplained), f"{len(unexplained)} values off truth, e.g. {unexplained[:3]}"
    assert wrong.mean() < 0.05, f"{wrong.mean():.1%} of the values are not the true ones"
