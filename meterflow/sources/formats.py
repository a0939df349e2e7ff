"""The raw formats of the three sources and the meter table, as the utility's stores hold them.

The demo fleet writes exactly these formats; the source adapters read them.

SQL historian (any SQLAlchemy URL; SQLite file by default)
    table ``historian``: ``timestamp`` (UTC, naive DateTime, END of the 15-min interval),
    ``tagname`` (``<meter_id>.1.8.0`` = active import, ``<meter_id>.2.8.0`` = active export),
    ``energy`` (kWh in the interval, >= 0 for both tags), ``quality`` (OPC code: 192 good,
    64 uncertain, 0 bad).
    table ``meter_description``: the meters contract (meter_id, contractual_power_kw,
    production_kw, type, latitude, longitude).

MongoDB (``MONGODB_URI``), database ``meterflow``, collection ``readings``; one document per
reading: ``meter_id``, ``ts`` (UTC instant of the register read = END of the interval),
``import_kwh`` and ``export_kwh`` (cumulative registers, kWh, roll over at
``domain.REGISTER_ROLLOVER_KWH`` and restart at 0 when a meter is replaced), ``voltage_v``,
``current_a``, ``power_w`` (instantaneous values at ``ts``).

Old exports: a folder with one CSV per meter, ``<meter_id>.csv``, columns ``meter_id``,
``datetime`` (local wall-clock time in ``domain.LOCAL_TIMEZONE``, naive, START of the interval,
so DST days have 92 or 100 rows), ``active_import`` and ``active_export`` (nominally kWh per
interval; some meters and periods were exported in other units: the ETL detects the factor).

Domain constants (time zone, raw interval, source names, register roll-over) are in
``meterflow.domain``.
"""

from __future__ import annotations

HISTORIAN_TABLE = "historian"
METERS_TABLE = "meter_description"
TAG_IMPORT = "1.8.0"
TAG_EXPORT = "2.8.0"
OPC_GOOD, OPC_UNCERTAIN, OPC_BAD = 192, 64, 0

MONGO_DATABASE = "meterflow"
MONGO_COLLECTION = "readings"
MONGO_FIELDS = ("meter_id", "ts", "import_kwh", "export_kwh", "voltage_v", "current_a", "power_w")

OLD_EXPORT_COLUMNS = ("meter_id", "datetime", "active_import", "active_export")


def tagname(meter_id: str, obis: str) -> str:
    """Historian tag of a meter's register, e.g. ``MTR0001.1.8.0``."""
    return f"{meter_id}.{obis}"
