"""Shared cleaning (pure): readings of any source to daily profiles, nothing lost.

Entry point: :func:`clean_readings` with a :class:`CleaningConfig`; it returns an
:class:`EtlResult`. The source adapters (``meterflow.sources``) build the readings table with
:func:`make_readings` and call it.
"""

from meterflow.etl.config import CleaningConfig
from meterflow.etl.pipeline import clean_readings
from meterflow.etl.quarantine import Reason
from meterflow.etl.readings import EXPORT, IMPORT, make_readings
from meterflow.etl.result import EtlResult, merge_results

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
