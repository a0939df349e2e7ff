"""Domain constants shared by every layer: the utility's time zone, the meters' raw interval,
the names of the sources and the roll-over of the cumulative energy registers.

Raw store layouts (table, tag and field names) live in ``meterflow.sources.formats``.
"""

from __future__ import annotations

MINUTES_PER_DAY = 1440
LOCAL_TIMEZONE = "Europe/Rome"
RAW_INTERVAL_MIN = 15
REGISTER_ROLLOVER_KWH = 100_000.0  # cumulative registers wrap to 0 at this reading

# Names of the sources as they appear in the readings/profiles ``source`` column.
SOURCE_NEWMONGO = "newmongo"
SOURCE_SQL = "sql"
SOURCE_OLDMONGO = "oldmongo"
SOURCES = (SOURCE_NEWMONGO, SOURCE_SQL, SOURCE_OLDMONGO)
