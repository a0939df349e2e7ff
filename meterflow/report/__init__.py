"""The parent run's HTML report of a pipeline night (``report.html``): what ran, data quality,
clusters, forecasts against baselines and alerts on one self-contained page.

``render`` turns report data into the page (pure), ``sections`` builds the sections from tables
(pure), ``figures`` draws them, ``collect`` reads the steps' tables through
``meterflow.tracking``.
"""
