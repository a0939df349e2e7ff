"""Errors that reach the user as one clear line (the entry points print them without traceback)."""

from __future__ import annotations

import os


class MeterflowError(Exception):
    """Base class: the message is complete and user-facing."""


class ConfigError(MeterflowError):
    """An option or environment variable is invalid."""


class InputError(MeterflowError, ValueError):
    """Data or an argument the code was given is not acceptable (a user-facing ValueError:
    callers that catch ValueError keep working, and the entry points print it in one line)."""


class SourceError(MeterflowError):
    """A store or input file cannot be read as expected.

    The message names the source, and where known the file, meter and row.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str,
        file: str | None = None,
        meter: str | None = None,
        row: int | str | None = None,
    ) -> None:
        where = [f"source={source}"]
        if file is not None:
            where.append(f"file={file}")
        if meter is not None:
            where.append(f"meter={meter}")
        if row is not None:
            where.append(f"row={row}")
        super().__init__(f"{message} ({', '.join(where)})")
        self.source, self.file, self.meter, self.row = source, file, meter, row


class SchemaError(MeterflowError):
    """A table does not satisfy its contract (see ``meterflow.schemas``)."""


def format_bytes(n: int) -> str:
    """``n`` bytes in decimal units with one decimal: ``3.2 GB``, ``512 B``."""
    if n < 1000:
        return f"{n} B"
    value = n / 1000
    for unit in ("kB", "MB", "GB"):
        if round(value, 1) < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"


class DiskFullError(MeterflowError):
    """Not enough disk space: names the path and, where known, the space needed and free, e.g.
    ``not enough disk space for the DTW matrix at /data/cache: needs 3.2 GB, 1.1 GB free``."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        needed: int | None,
        free: int | None,
        what: str = "",
        reason: str = "not enough disk space",
    ) -> None:
        head = reason + (f" for {what}" if what else "") + (f" at {path}" if path else "")
        amounts = [f"needs {format_bytes(needed)}"] if needed is not None else []
        amounts += [f"{format_bytes(free)} free"] if free is not None else []
        super().__init__(head + (f": {', '.join(amounts)}" if amounts else ""))
        self.path, self.needed, self.free = path, needed, free
