"""Every MongoDB client of the project, built here with one set of timeouts, and one retry rule.

A busy machine makes a server miss heartbeats; pymongo then clears its pool and cancels the reads
in flight (``_OperationCancelled``, an ``AutoReconnect``). The connect timeout is also the
heartbeat timeout, so it is generous, and reads that are safe to repeat go through
:func:`retry_transient`, which repeats them after such an interruption with a growing pause.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pymongo
from pymongo.collection import Collection
from pymongo.errors import AutoReconnect, NetworkTimeout, PyMongoError

from meterflow.errors import SourceError
from meterflow.redact import redact_uri

log = logging.getLogger(__name__)

T = TypeVar("T")

SERVER_SELECTION_TIMEOUT_MS = 30_000  # how long to wait for a reachable server
CONNECT_TIMEOUT_MS = 60_000  # also the heartbeat timeout (see module docstring)
READ_ATTEMPTS = 3  # a read interrupted by a busy server is tried this often in all
RETRY_PAUSE_S = 2.0  # pause before the 2nd attempt, doubled before each further one
_TRANSIENT = (AutoReconnect, NetworkTimeout)


def mongo_client(
    uri: str, *, source: str, timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS
) -> pymongo.MongoClient:
    """A client for ``uri`` (naive UTC datetimes); SourceError without credentials if the URI is
    invalid. ``timeout_ms``: server selection (tests of unreachable servers shorten it)."""
    try:
        return pymongo.MongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=CONNECT_TIMEOUT_MS,
            tz_aware=False,
        )
    except (PyMongoError, ValueError) as exc:
        raise SourceError(
            f"invalid MongoDB URI {redact_uri(uri)}: {type(exc).__name__}", source=source
        ) from None


@contextlib.contextmanager
def mongo_collection(
    uri: str,
    database: str,
    collection: str,
    *,
    source: str,
    action: str = "read",
    timeout_ms: int = SERVER_SELECTION_TIMEOUT_MS,
) -> Iterator[Collection]:
    """The collection at ``uri``; server errors become one-line SourceErrors (no credentials)
    and the client is closed afterwards."""
    client = mongo_client(uri, source=source, timeout_ms=timeout_ms)
    try:
        yield client[database][collection]
    except PyMongoError as exc:
        raise SourceError(
            f"cannot {action} {database}.{collection}: {type(exc).__name__} [{redact_uri(uri)}]",
            source=source,
        ) from None
    finally:
        client.close()


def retry_transient(
    call: Callable[[], T],
    what: str,
    *,
    attempts: int = READ_ATTEMPTS,
    pause_s: float = RETRY_PAUSE_S,
) -> T:
    """``call()``, repeated after a transient interruption (busy server, dropped connection) up
    to ``attempts`` times in all; other errors, and the last transient one, propagate."""
    for attempt in range(1, attempts):
        try:
            return call()
        except _TRANSIENT as exc:
            wait = pause_s * 2 ** (attempt - 1)
            log.warning(
                "%s interrupted (%s); attempt %d of %d in %.0f s",
                what,
                type(exc).__name__,
                attempt + 1,
                attempts,
                wait,
            )
            time.sleep(wait)
    return call()
