"""Shared cleaning (pure): readings of any source to daily profiles, nothing lost.

Entry point: :func:`clean_readings` with a :class:`CleaningConfig`; it returns an
:class:`EtlResult`. The source adapters (``meterflow.sources``) build the readings table with
:func:`make_readings`, a block of meters at a time, and ``etl.blocks.clean_in_blocks`` cleans
the blocks and merges them. Names are imported lazily, so reading the cleaning parameters
(``etl.params``: ``--help``, option checks) does not load the numerical libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from meterflow.lazy import lazy_attributes

if TYPE_CHECKING:
    from meterflow.etl.config import CleaningConfig
    from meterflow.etl.pipeline import clean_readings
    from meterflow.etl.quarantine import Reason
    from meterflow.etl.readings import EXPORT, IMPORT, make_readings
    from meterflow.etl.result import EtlResult, merge_results

_WHERE = {
    "CleaningConfig": "config",
    "clean_readings": "pipeline",
    "Reason": "quarantine",
    "EXPORT": "readings",
    "IMPORT": "readings",
    "make_readings": "readings",
    "EtlResult": "result",
    "merge_results": "result",
}
__all__ = [
    "EXPORT",
    "IMPORT",
    "CleaningConfig",
    "EtlResult",
    "Reason",
    "clean_readings",
    "make_readings",
    "merge_results",
]

__getattr__ = lazy_attributes(__name__, _WHERE)
