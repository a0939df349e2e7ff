"""Keras 3 on TensorFlow (CPU), set up once per process: threads and deterministic kernels.

Every deep model of the project (forecasting LSTM and hybrid, anomaly forecaster, clustering
autoencoder) calls :func:`configure_keras` before it builds a network and :func:`seed` before it
initialises one, so fixed seeds give the same weights and metrics run to run on one machine.
TensorFlow fixes its thread pools when it first runs an op: the first call's ``threads`` holds
for the rest of the process (a later, different value is logged and ignored).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_threads: int | None = None


def configure_keras(threads: int) -> None:
    """Use ``threads`` CPU threads per op (and between ops) and deterministic op kernels; Keras
    progress bars (a ``predict`` that MLflow runs on an input example) go to ``absl`` logging,
    below the level the entry points show, not to stdout."""
    global _threads
    if _threads is not None:
        if threads != _threads:
            log.info("TensorFlow already uses %d thread(s) in this process", _threads)
        return
    import keras
    import tensorflow as tf

    keras.config.disable_interactive_logging()

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # TensorFlow ran an op before: its pools are fixed
        log.info("TensorFlow was initialised before: its thread pools are kept")
    tf.config.experimental.enable_op_determinism()
    _threads = threads


def seed(value: int) -> None:
    """Seed Python, NumPy and TensorFlow (weights, dropout, shuffling)."""
    import keras

    keras.utils.set_random_seed(value)
