"""Peak memory of the anomaly step's fleet-wide work at a few fleet sizes (not a test).

``python benchmarks/anomaly_memory.py peers 1000 2000 4000`` or
``python benchmarks/anomaly_memory.py scoring 100 200 400 [--block 50]``: each size runs in a
fresh subprocess and prints the peak of the allocations Python traces (``tracemalloc``: numpy
and pandas buffers, not TensorFlow's) above what was allocated before the call, and the
process's peak RSS. ``scoring`` runs ``detect_anomalies`` (robust_z, no labels) on the synthetic
fleet of ``tests.anomaly.synthetic`` (126 days, hourly), then on its own: ``predict`` of the
holdout, the evidence, components and scores of the holdout's fleet (``score_core``: no input
parsing, no output table) and ``calibrate``; ``--block N`` works ``N`` meters at a time and
``--sample N`` fits thresholds and planted copies on ``N`` meters (``fleetparts.SAMPLE_METERS``).
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: tests.anomaly

from meterflow.anomaly.base import DetectorSettings
from meterflow.anomaly.calibration import calibrate
from meterflow.anomaly.detection import AnomalySettings, detect_anomalies
from meterflow.anomaly.windowed import fit_peers
from meterflow.series.fleet import build_panel, split_dates
from tests.anomaly.synthetic import clean_series

PEER_DAYS = 28  # days of the fleets fit_peers is measured on (only training days count)
FAST = DetectorSettings(epochs=1, units=(8,), max_train_windows=2000, threads=1)
MB = 2**20


def _peak(func: Callable[[], Any]) -> tuple[float, Any]:
    """Peak traced MiB of ``func()`` above what was allocated before it, and its result."""
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    out = func()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - before) / MB, out


def peers(n_meters: int, block: int) -> dict[str, float]:
    series = clean_series(n_meters)
    first = series["timestamp"].min()
    series = series.loc[series["timestamp"] < first + np.timedelta64(PEER_DAYS, "D")]
    fleet = build_panel(series, 60, split_dates(series["timestamp"], 0.7, 0.1))
    del series
    return {"fit_peers_mb": _peak(lambda: fit_peers(fleet))[0]}


def scoring(n_meters: int, block: int) -> dict[str, float]:
    series = clean_series(n_meters)
    blocking = _blocking(block)
    extra = {"blocking": blocking} if blocking else {}
    cfg = AnomalySettings(detector="robust_z", detectors=(), training=FAST, **extra)
    mb, result = _peak(lambda: detect_anomalies(series, 60, None, cfg))
    holdout, predictor = result.holdout, result.predictor
    args = (holdout, blocking) if blocking else (holdout,)
    out = {
        "detect_anomalies_mb": mb,
        "predict_holdout_mb": _peak(lambda: predictor.predict(*args))[0],
    }
    fleet, rows = predictor.fleet(holdout)
    where = predictor.scored(fleet, holdout["history"].to_numpy(bool)[rows])
    out["score_core_mb"] = _peak(lambda: _score_core(predictor, fleet, where, blocking))[0]
    window = _window(series.sort_values(["meter_id", "timestamp"], ignore_index=True), predictor)
    cal = (window, result.split, None, cfg.alarm_budget, FAST.seed, *([blocking] if block else []))
    out["calibrate_mb"] = _peak(lambda: calibrate(predictor, *cal))[0]
    return {**out, "readings": len(series), "holdout_rows": len(holdout)}


def _blocking(block: int) -> Any:
    if not block:
        return None
    from meterflow.anomaly.blocked import Blocking

    return Blocking(block_meters=block)


def _score_core(predictor: Any, fleet: Any, where: np.ndarray, blocking: Any) -> Any:
    """Evidence, components and scores of a fleet: in blocks, or (before blocks) at once."""
    if blocking is not None:
        from meterflow.anomaly.blocked import score_fleet

        return score_fleet(predictor, fleet, where, blocking)
    ev = predictor.evidence(fleet, where)
    parts = predictor.model.components(fleet, ev)
    return parts, predictor.model.score(parts)


def _window(series: Any, predictor: Any) -> Any:
    """The calibration window ``detect_anomalies`` gives ``calibrate``."""
    from meterflow.anomaly.detection import CALIBRATION_HISTORY_DAYS

    dates = split_dates(series["timestamp"], 0.7, 0.1)
    days = max(predictor.context_days, CALIBRATION_HISTORY_DAYS)
    start = dates.val_start - np.timedelta64(days, "D")
    keep = (series["timestamp"] >= start) & (series["timestamp"] < dates.test_start)
    return series.loc[keep].reset_index(drop=True)


def main() -> None:
    what, rest = sys.argv[1], sys.argv[2:]
    flags = {}
    for flag in ("--block", "--sample"):
        if flag in rest:
            at = rest.index(flag)
            flags[flag], rest = rest[at + 1], rest[:at] + rest[at + 2 :]
    block, sizes = int(flags.get("--block", 0)), [int(s) for s in rest]
    if what.startswith("child-"):
        if "--sample" in flags:  # as in a fleet far larger than the calibration sample
            from meterflow.anomaly import fleetparts

            fleetparts.SAMPLE_METERS = int(flags["--sample"])
        func = {"child-peers": peers, "child-scoring": scoring}[what]
        result = func(sizes[0], block)
        result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    for n in sizes:
        cmd = [sys.executable, __file__, f"child-{what}", str(n)]
        cmd += [part for flag, value in flags.items() for part in (flag, value)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        print(n, out.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
