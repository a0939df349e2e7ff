"""Keras building blocks shared by every deep model: the process set-up (``keras_setup``:
threads, deterministic kernels, seeds) and the training and prediction loop (``training``).

Pure layer: networks and arrays in, fitted networks and arrays out; no files, no MLflow.
"""
