"""Errors that reach the user as one clear line (the entry points print them without traceback)."""

from __future__ import annotations


class MeterflowError(Exception):
    """Base class: the message is complete and user-facing."""


class ConfigError(MeterflowError):
    """An option or environment variable is invalid."""


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
