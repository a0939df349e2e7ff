"""The log a person reads: one line format for the project's lines and MLflow's, each tagged with
the step that wrote it, and no TensorFlow/absl start-up noise on stderr."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest

from meterflow.cli import log_format

LINE = re.compile(r"^\d\d:\d\d:\d\d (INFO|WARNING|ERROR) \[forecasting\] [\w.]+: ")
TF_NOISE = (
    "absl::InitializeLog",
    "oneDNN",
    "AVX-512",
    "use_unbounded_threadpool",
    "cpu_feature_guard",
    "I0000",
    "W0000",
    "E0000",
)


def _stderr(script: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("mlflow_first", [False, True])
def test_mlflow_and_project_lines_share_one_format_tagged_with_the_step(mlflow_first):
    """Whether MLflow is imported before logging is set up (its own handler, a dated format) or
    after it, its lines come out like the project's; Python warnings too."""
    stderr = _stderr(f"""
        import logging, warnings
        if {mlflow_first}:
            import mlflow
        from meterflow.cli import setup_logging
        setup_logging("forecasting")
        import mlflow
        logging.getLogger("meterflow.nets.training").info("epoch 3/20")
        logging.getLogger("mlflow.tracking._model_registry.fluent").warning("registry says")
        logging.getLogger("mlflow.pyfunc").info("Inferring model signature")  # below WARNING
        warnings.warn("a library warns")
        """)
    messages = [line.split(": ", 1)[1] for line in stderr.splitlines() if LINE.match(line)]
    assert messages[:2] == ["epoch 3/20", "registry says"], stderr
    assert messages[2].endswith("UserWarning: a library warns"), stderr
    assert len(messages) == 3 and "Inferring" not in stderr


def test_the_step_defaults_to_the_script_name():
    assert "[launch]" in log_format("launch")
    stderr = _stderr("""
        import logging, sys
        sys.argv[0] = "/somewhere/meterflow/orchestration/launch.py"
        from meterflow.cli import setup_logging
        setup_logging()
        logging.getLogger("meterflow.x").info("hello")
        """)
    assert re.search(r"^\d\d:\d\d:\d\d INFO \[launch\] meterflow.x: hello$", stderr, re.M)


def test_tensorflow_training_writes_nothing_to_stderr():
    """Importing meterflow before TensorFlow keeps its C++ and absl lines out: start-up (absl's
    pre-init warning, oneDNN), training (the tf.data NodeDef error) and prediction."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    stderr = _stderr(
        """
        import meterflow
        import numpy as np
        from meterflow.nets import keras_setup
        from meterflow.nets.training import fit_network
        import keras

        keras_setup.configure_keras(1)
        keras_setup.seed(0)
        x = np.random.default_rng(0).random((512, 8, 1), dtype=np.float32)
        y = x[:, -1]
        net = keras.Sequential([keras.Input((8, 1)), keras.layers.LSTM(4), keras.layers.Dense(1)])
        fit_network(net, [x], y, [x[:64]], y[:64], epochs=1, batch_size=256, learning_rate=1e-3,
                    patience=1)
        net.predict(x, verbose=0)
        """,
        env=env,
    )
    assert not [line for line in stderr.splitlines() if any(n in line for n in TF_NOISE)], stderr
