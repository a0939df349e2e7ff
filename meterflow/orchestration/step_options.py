"""The options of each child step of the pipeline: the pipeline's own options forwarded to it
(the one table ``meterflow.settings.pipeline.FORWARDED``, generated from the steps' parameters)
and the inputs the runner found (upstream run ids, source fingerprints, files)."""

from __future__ import annotations

from collections.abc import Mapping

from meterflow import settings
from meterflow.settings.pipeline import PipelineBase


def step_options(step: str, opts: PipelineBase, inputs: Mapping[str, object]) -> settings.Options:
    """The options of the pipeline's child ``step``: the pipeline options forwarded to it and
    ``inputs`` (run ids, fingerprints, files) by option name."""
    return settings.step_options(step, opts, **inputs)
