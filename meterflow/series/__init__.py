"""A fleet of series as flat arrays (``fleet``) and the windows read from them (``windows``).

Shared by the forecasting and anomaly families, neither of which owns it. Pure layer: arrays
and tables in, arrays and tables out.
"""
