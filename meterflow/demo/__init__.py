"""The deterministic demo meter fleet: realistic raw data for the three sources, with ground truth.

``build_fleet(spec)`` is pure (frames in memory); ``write_fleet`` and ``ensure_demo`` put a fleet
into real stores (SQL historian, MongoDB, a folder of CSV exports) plus its ground truth.
"""

from meterflow.demo.fleet import DemoSpec
from meterflow.demo.raw import DemoFleet, build_fleet
from meterflow.demo.write import DEMO_FORMAT_VERSION, WriteSummary, ensure_demo, write_fleet

__all__ = [
    "DEMO_FORMAT_VERSION",
    "DemoFleet",
    "DemoSpec",
    "WriteSummary",
    "build_fleet",
    "ensure_demo",
    "write_fleet",
]
