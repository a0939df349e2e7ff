"""Checks before a pipeline run, each answering in one line within seconds, so that a night that
cannot succeed fails at once and says why (``meterflow.orchestration.launch`` runs them before
the project; ``mlflow run`` alone would retry an unreachable server for minutes and print
tracebacks):

- an HTTP tracking server answers within ``TRACKING_CHECK_S``;
- a SQLite tracking store is a sound database (``PRAGMA integrity_check``);
- the store knows the data folder's state record (``meterflow.orchestration.state``), unless
  starting over knowingly (``-P start_over=true``).

    python -m meterflow.orchestration.preflight [--start-over]
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from meterflow.errors import ConfigError
from meterflow.redact import redact_uri

log = logging.getLogger("meterflow.orchestration.preflight")

TRACKING_CHECK_S = 20  # all attempts together, well inside the 30 s a failing night may take
_ATTEMPTS = 3
_PAUSE_S = 2.0


def check_tracking_server(uri: str, budget_s: float = TRACKING_CHECK_S) -> None:
    """ConfigError unless the HTTP tracking server at ``uri`` answers (any HTTP status counts:
    the server is up) within ``budget_s`` seconds over ``_ATTEMPTS`` attempts."""
    per_attempt = max(1.0, (budget_s - _PAUSE_S * (_ATTEMPTS - 1)) / _ATTEMPTS)
    health = uri.rstrip("/") + "/health"
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(health, timeout=per_attempt):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            if attempt == _ATTEMPTS:
                raise ConfigError(
                    f"tracking server {redact_uri(uri)} is unreachable ({reason}; {_ATTEMPTS} "
                    "attempts): start it, or point MLFLOW_TRACKING_URI at a running one"
                ) from None
            time.sleep(_PAUSE_S)


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI (None for other stores or in-memory)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri == prefix + ":memory:":
        return None
    return Path(uri[len(prefix) :].split("?", 1)[0])


def check_sqlite_store(path: Path) -> None:
    """ConfigError unless the SQLite file at ``path`` is a sound database (a missing or empty
    file passes here: the state record check tells whether that is expected)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
            result = [row[0] for row in conn.execute("PRAGMA integrity_check(5)")]
    except sqlite3.DatabaseError as e:
        result = [str(e)]
    if result != ["ok"]:
        raise ConfigError(
            f"tracking store {path} is damaged ({'; '.join(result)[:200]}): restore it from a "
            "backup, or move it away and pass -P start_over=true to start over knowingly"
        )


def run_checks(start_over: bool) -> None:
    """Every check, in order of cost; the first failure raises a one-line MeterflowError."""
    from meterflow.cli import read_environment

    env = read_environment()
    uri = env.tracking_uri or "sqlite:///mlflow.db"
    if uri.startswith(("http://", "https://")):
        check_tracking_server(uri)
    from meterflow import tracking
    from meterflow.orchestration.pipeline import check_state

    tracking.connect(env)
    check_state(env, start_over=start_over)


def main(argv: Sequence[str] | None = None) -> int:
    """The checks alone (``meterflow.orchestration.launch`` runs them before every run)."""
    from meterflow.cli import report_failure, setup_logging

    parser = argparse.ArgumentParser(
        prog="python -m meterflow.orchestration.preflight", description=__doc__
    )
    parser.add_argument("--start-over", action="store_true", help="skip the state record check")
    args = parser.parse_args(argv)
    setup_logging()
    started = time.monotonic()
    try:
        run_checks(start_over=args.start_over)
    except Exception as e:
        report_failure(e, "preflight")
        return 2
    log.info("preflight: checks passed in %.1f s", time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
