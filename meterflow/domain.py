"""Domain constants shared by every layer: the utility's time zone, the meters' raw interval,
the data sources (names, priority and where each adapter lives) and the roll-over of the
cumulative energy registers.

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
# The data sources, ONE line each, in priority order (where sources overlap on a meter-day the
# first one's profile is kept): name -> its adapter class (``meterflow.sources.contract.Source``),
# imported only when used (``meterflow.sources.registry``). A new source is one adapter module
# and one line here: its ETL entry point (``etl_<name>``), its pipeline chain and its place in
# the harmonization priority follow.
SOURCE_ADAPTERS = {
    SOURCE_NEWMONGO: "meterflow.sources.mongo:DocumentsSource",
    SOURCE_SQL: "meterflow.sources.sql:HistorianSource",
    SOURCE_OLDMONGO: "meterflow.sources.oldexports:OldExportsSource",
}
SOURCES = tuple(SOURCE_ADAPTERS)
