"""Engines for SQLAlchemy URLs and database errors as one line that shows no secret.

Every SQL adapter (historian, meter table, alerts, fingerprints) opens its engine and words its
errors here, so a password never reaches a message, even one a driver echoes after cutting the
URL at an unescaped ``@`` (see ``meterflow.redact``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from meterflow.errors import SourceError
from meterflow.redact import ESCAPE_HINT, ambiguous_credentials, redact_uri, scrub


def redact_url(url: str | sa.URL) -> str:
    """The URL with its credentials hidden (safe for logs and messages), cut at its last ``@``
    (``meterflow.redact``), so a password with an unescaped ``@`` or ``/`` is not half shown as
    a URL parser would (a URL object is rendered first: its host may hold such a piece)."""
    return redact_uri(_url_text(url))


def _url_text(url: str | sa.URL) -> str:
    """``url`` as text WITH its password: for searching messages only, never shown."""
    return url.render_as_string(hide_password=False) if isinstance(url, sa.URL) else url


def engine_for(url: str | sa.URL, *, source: str) -> sa.Engine:
    """An engine for ``url``; SourceError (credentials hidden) when the URL is not valid, is
    ambiguous (an unescaped ``@`` in its credentials) or names a driver that is not installed."""
    if ambiguous_credentials(_url_text(url)):
        raise SourceError(
            f"the database URL {redact_url(url)} is ambiguous: its user name or password holds "
            f"an unescaped '@'; {ESCAPE_HINT}",
            source=source,
        )
    try:
        return sa.create_engine(url)
    except ImportError as exc:  # the driver module the URL names
        raise SourceError(
            f"cannot use the database URL {redact_url(url)}: its driver module {exc.name!r} "
            "is not installed",
            source=source,
        ) from None
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise SourceError(
            f"invalid database URL {redact_url(url)}: {type(exc).__name__}", source=source
        ) from None


def driver_text(exc: BaseException, url: str | sa.URL) -> str:
    """The first line of a driver's error with every piece of the URL's password hidden
    (``meterflow.redact.scrub``: also where the driver names a host or user it cut out of the
    password), or only the error's type where the password cannot be searched for."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    shown = scrub(lines[0], _url_text(url)) if lines else None
    return shown[:300] if shown else type(exc).__name__


def describe_db_error(exc: BaseException, url: str | sa.URL) -> str:
    """One line about a database error without any piece of the password (see
    :func:`driver_text`) and the URL redacted."""
    return f"{driver_text(exc, url)} [{redact_url(url)}]"
