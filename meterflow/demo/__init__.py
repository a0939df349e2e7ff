"""The deterministic demo meter fleet: realistic raw data for the three sources, with ground truth.

``iter_blocks(spec)`` yields the fleet block by block and ``build_fleet(spec)`` joins the blocks
in memory (both pure); ``ensure_demo`` streams the blocks into real stores (SQL historian,
MongoDB, a folder of CSV exports) plus their ground truth, one block in memory at a time, and
``write_fleet`` writes a fleet built in memory.
"""

from meterflow.demo.fleet import BLOCK_METERS, DemoSpec
from meterflow.demo.raw import DemoFleet, FleetBlock, build_fleet, iter_blocks
from meterflow.demo.write import (
    DEMO_FORMAT_VERSION,
    WriteSummary,
    ensure_demo,
    write_blocks,
    write_fleet,
)

__all__ = [
    "BLOCK_METERS",
    "DEMO_FORMAT_VERSION",
    "DemoFleet",
    "DemoSpec",
    "FleetBlock",
    "WriteSummary",
    "build_fleet",
    "ensure_demo",
    "iter_blocks",
    "write_blocks",
    "write_fleet",
]
