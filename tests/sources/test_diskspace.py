"""Disk space: free-space checks, block preallocation and one-line out-of-space messages, without
a real full disk (``shutil.disk_usage`` and ``os.posix_fallocate`` are stood in for)."""

from __future__ import annotations

import errno
import os
import shutil
from collections import namedtuple
from pathlib import Path

import pandas as pd
import pytest
from mlflow.exceptions import MlflowException

from meterflow.errors import DiskFullError, MeterflowError, format_bytes
from meterflow.sources import diskspace

Usage = namedtuple("Usage", "total used free")
MARGIN = diskspace.SAFETY_MARGIN_BYTES


def fake_free(monkeypatch: pytest.MonkeyPatch, free: int) -> list[Path]:
    """Make every file system report ``free`` bytes; return the paths asked about."""
    asked: list[Path] = []

    def usage(path) -> Usage:
        asked.append(Path(path))
        return Usage(10**12, 10**12 - free, free)

    monkeypatch.setattr(shutil, "disk_usage", usage)
    return asked


def enospc(path: str | None = None, path2: str | None = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path, None, path2)


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (3_200_000_000, "3.2 GB"),
     (999_960_000, "1.0 GB"), (5 * 10**15, "5000.0 TB")],
)  # fmt: skip
def test_format_bytes(n: int, text: str) -> None:
    assert format_bytes(n) == text


def test_disk_full_error_is_one_user_facing_line() -> None:
    exc = DiskFullError("/data/cache", needed=3_200_000_000, free=1_100_000_000, what="the matrix")
    assert isinstance(exc, MeterflowError)
    assert (
        str(exc) == "not enough disk space for the matrix at /data/cache: needs 3.2 GB, 1.1 GB free"
    )
    assert "\n" not in str(exc)
    assert (exc.path, exc.needed, exc.free) == ("/data/cache", 3_200_000_000, 1_100_000_000)


def test_free_bytes_asks_the_nearest_existing_ancestor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = fake_free(monkeypatch, 1234)
    assert diskspace.free_bytes(tmp_path / "not" / "yet" / "there.bin") == 1234
    assert asked == [tmp_path]


def test_require_free_space_refuses_with_path_needed_and_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_free(monkeypatch, 1_100_000_000)
    with pytest.raises(DiskFullError) as caught:
        diskspace.require_free_space(tmp_path, 3_200_000_000, "the DTW matrix")
    message = str(caught.value)
    assert message.startswith(f"not enough disk space for the DTW matrix at {tmp_path}: ")
    assert message.endswith(f"needs {format_bytes(3_200_000_000 + MARGIN)}, 1.1 GB free")
    assert caught.value.needed == 3_200_000_000 + MARGIN


def test_require_free_space_keeps_the_safety_margin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_free(monkeypatch, 10**6 + MARGIN)
    diskspace.require_free_space(tmp_path, 10**6, "x")  # exactly enough
    with pytest.raises(DiskFullError):
        diskspace.require_free_space(tmp_path, 10**6 + 1, "x")


def test_require_space_sums_places_on_one_disk_and_skips_remote_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_free(monkeypatch, 150 + MARGIN)
    diskspace.require_space([(tmp_path / "a", 100), ("http://tracking:5000", 10**12)], "x")
    with pytest.raises(DiskFullError, match=f"at {tmp_path / 'a'}: needs"):
        diskspace.require_space([(tmp_path / "a", 100), (f"file://{tmp_path}/b", 100)], "x")


def test_require_output_space_checks_the_temporary_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diskspace.tempfile, "tempdir", str(tmp_path))
    fake_free(monkeypatch, MARGIN)
    with pytest.raises(DiskFullError, match=f"for the outputs at {tmp_path}: needs"):
        diskspace.require_output_space(10, "https://tracking.example", "the outputs")


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        ("/srv/mlruns", Path("/srv/mlruns")),
        ("file:///srv/mlruns/1/abc/artifacts", Path("/srv/mlruns/1/abc/artifacts")),
        ("sqlite:///mlflow.db", Path(".")),
        ("sqlite:////var/lib/mlflow/mlflow.db", Path("/var/lib/mlflow")),
        ("sqlite:///:memory:", None),
        ("http://tracking:5000", None),
        ("s3://bucket/artifacts", None),
        ("databricks", None),
        ("mlruns", Path("mlruns")),
    ],
)
def test_local_path_of_store_locations(store: str, expected: Path | None) -> None:
    assert diskspace.local_path(store) == expected


def test_estimates() -> None:
    table = pd.DataFrame({"a": range(1000), "b": [1.5] * 1000})
    size = diskspace.table_bytes(table)
    assert size >= 16_000
    assert diskspace.table_bytes(table, table) == 2 * size
    expected = diskspace.OUTPUTS_PER_INPUT * size + 2 * diskspace.MODEL_BYTES
    assert diskspace.model_step_bytes(table, models=2) == expected


def test_preallocate_on_a_full_disk_names_the_file_and_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "matrix.bin"
    fake_free(monkeypatch, 1_100_000_000)

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full)
    with open(path, "wb") as f, pytest.raises(DiskFullError) as caught:
        diskspace.preallocate(f.fileno(), 0, 3_200_000_000, path=path, what="the DTW matrix")
    assert str(caught.value) == (
        f"not enough disk space for the DTW matrix at {path}: needs 3.2 GB, 1.1 GB free"
    )
    assert isinstance(caught.value.__cause__, OSError)


def test_preallocate_allocates_blocks_and_extends_the_file(tmp_path: Path) -> None:
    path = tmp_path / "matrix.bin"
    path.write_bytes(b"x" * 100)
    with open(path, "r+b") as f:
        diskspace.preallocate(f.fileno(), 100, 1 << 20, path=path, what="x")
    stat = path.stat()
    assert stat.st_size == 100 + (1 << 20)
    assert stat.st_blocks * 512 >= stat.st_size  # allocated, not sparse
    assert path.read_bytes()[:100] == b"x" * 100


def test_preallocate_writes_zeros_where_fallocate_is_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    monkeypatch.setattr(diskspace, "_ZEROS_CHUNK", 4096)
    path = tmp_path / "matrix.bin"
    path.write_bytes(b"y" * 10)
    with open(path, "r+b") as f:
        diskspace.preallocate(f.fileno(), 10, 3 * 4096 + 5, path=path, what="x")
    stat = path.stat()
    assert path.read_bytes() == b"y" * 10 + bytes(3 * 4096 + 5)
    assert stat.st_blocks * 512 >= stat.st_size


def test_preallocate_zero_fallback_on_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unsupported(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    def full(fd: int, data, offset: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", unsupported)
    monkeypatch.setattr(os, "pwrite", full)
    fake_free(monkeypatch, 0)
    path = tmp_path / "m.bin"
    with open(path, "wb") as f, pytest.raises(DiskFullError, match=r"needs 2\.0 kB, 0 B free"):
        diskspace.preallocate(f.fileno(), 0, 2000, path=path, what="x")


def test_preallocate_passes_other_errors_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def bad(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))

    monkeypatch.setattr(os, "posix_fallocate", bad)
    with pytest.raises(OSError) as caught:
        diskspace.preallocate(0, 0, 10, path=tmp_path, what="x")
    assert caught.value.errno == errno.EBADF and not isinstance(caught.value, DiskFullError)


def _raised(make) -> BaseException:
    try:
        make()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


def _wrapped_by_mlflow() -> None:
    try:
        raise enospc("/tmp/x/profiles.parquet")
    except OSError as exc:
        raise MlflowException("failed to log artifact") from exc


def _raised_while_handling() -> None:
    try:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/home/u/mlruns/a.parquet")
    except OSError:
        raise RuntimeError("cleanup failed too") from None  # cause hidden, context kept


def test_is_disk_full_walks_cause_and_context() -> None:
    assert diskspace.is_disk_full(enospc())
    assert diskspace.is_disk_full(_raised(_wrapped_by_mlflow))
    assert diskspace.is_disk_full(_raised(_raised_while_handling))
    assert diskspace.is_disk_full(DiskFullError("/x", needed=1, free=0))
    assert not diskspace.is_disk_full(OSError(errno.EACCES, "denied", "/x"))
    assert not diskspace.is_disk_full(ValueError("nope"))


def test_is_disk_full_stops_on_a_cycle() -> None:
    a, b = RuntimeError("a"), RuntimeError("b")
    a.__context__, b.__context__ = b, a
    assert not diskspace.is_disk_full(a)


def test_disk_full_message_names_file_needed_and_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_free(monkeypatch, 1_100_000_000)
    target = str(tmp_path / "tables" / "profiles.parquet")
    assert diskspace.disk_full_message(enospc(target), 3_200_000_000) == (
        f"not enough disk space at {target}: needs 3.2 GB, 1.1 GB free"
    )
    assert diskspace.disk_full_message(enospc(target)) == (
        f"not enough disk space at {target}: 1.1 GB free"
    )


def test_disk_full_message_of_a_copy_names_the_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """shutil.copy (MLflow's local artifact logging) sets filename=source, filename2=dest."""
    fake_free(monkeypatch, 0)
    source, dest = "/tmp/t/profiles.parquet", str(tmp_path / "artifacts" / "profiles.parquet")
    message = diskspace.disk_full_message(enospc(source, dest))
    assert message == f"not enough disk space at {dest}: 0 B free"


def test_disk_full_message_without_a_file_quota_and_chains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_free(monkeypatch, 5)
    assert diskspace.disk_full_message(enospc()) == "not enough disk space"
    assert diskspace.disk_full_message(_raised(_raised_while_handling)) == (
        "disk quota exceeded at /home/u/mlruns/a.parquet"
    )
    assert diskspace.disk_full_message(_raised(_wrapped_by_mlflow)) == (
        "not enough disk space at /tmp/x/profiles.parquet: 5 B free"
    )
    ours = DiskFullError("/data/m.bin", needed=2000, free=5, what="the DTW matrix")
    try:
        raise RuntimeError("step failed") from ours
    except RuntimeError as exc:
        assert diskspace.disk_full_message(exc) == str(ours)
