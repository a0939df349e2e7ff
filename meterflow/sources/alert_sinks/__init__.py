"""Where anomaly alerts are written back for operators: the registry of alert sinks.

Each sink is one module of this package implementing ``base.AlertSink``, registered below by
one line: its name (the run tag ``anomaly.alerts_<name>``) and a factory that builds it from the
``Environment`` (None when the environment configures no such store). The anomaly step writes
to every configured sink; ``tests/sources/test_alerts.py`` checks every registered one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from meterflow.sources.alert_sinks.base import AlertSink
from meterflow.sources.alert_sinks.mongo import MongoAlertSink
from meterflow.sources.alert_sinks.sql import SqlAlertSink

if TYPE_CHECKING:
    from meterflow.settings import Environment

SinkFactory = Callable[["Environment"], AlertSink | None]

ALERT_SINKS: dict[str, SinkFactory] = {
    "sql": SqlAlertSink.from_env,
    "mongo": MongoAlertSink.from_env,
}

__all__ = ["ALERT_SINKS", "AlertSink", "SinkFactory"]
