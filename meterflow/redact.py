"""Credentials never reach logs, messages, params or tags: URIs are shown redacted.

Everything between ``://`` and the LAST ``@`` of the string is taken as credentials: for a
well-formed URI (also ``mongodb+srv`` and ``host1,host2`` lists) that is exactly the userinfo
``urllib.parse.urlsplit`` finds; for a malformed one (an unescaped ``/``, ``?``, ``#`` or ``@``
in the password) it may hide more than the userinfo, which is acceptable where showing a
password is not. Query values whose key names a secret
(``password=``, ``...Token=``, ``authMechanismProperties=``) are hidden too.
"""

from __future__ import annotations

import re

UNPARSEABLE = "<unparseable URI>"
HIDDEN = "***"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|authmechanismproperties", re.IGNORECASE)


def _split(uri: str) -> tuple[str, bool, str] | None:
    """``(scheme, had credentials, everything after the credentials)``; None when ``uri``
    has no valid ``scheme://`` prefix.

    The credentials end at the LAST ``@``. Where the URI is well formed (urlsplit's authority
    holds that ``@``) this is exactly urlsplit's userinfo; where it is not, trusting the parser
    would show part of the password (``u:p@x/ss@host`` -> host ``x``, path ``/ss@host``).
    """
    scheme, sep, rest = uri.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        return None
    last_at = rest.rfind("@")
    if last_at < 0:
        return scheme, False, rest
    return scheme, True, rest[last_at + 1 :]


def _hide_query_secrets(tail: str) -> str:
    """``tail`` (``host/path?query#fragment``) with the values of secret query keys hidden."""
    head, sep, query = tail.partition("?")
    if not sep:
        return tail
    query, hash_sep, fragment = query.partition("#")
    items = []
    for item in re.split(r"([&;])", query):
        key, eq, _ = item.partition("=")
        items.append(f"{key}={HIDDEN}" if eq and _SECRET_KEY.search(key) else item)
    return f"{head}?{''.join(items)}{hash_sep}{fragment}"


def redact_uri(uri: str) -> str:
    """``scheme://user:password@host/...`` -> ``scheme://***:***@host/...``; a URI without
    credentials is returned unchanged (but for secret query values), a string that cannot be
    read as ``scheme://...`` as ``<unparseable URI>`` when it holds an ``@``."""
    parts = _split(uri)
    if parts is None:
        return UNPARSEABLE if "@" in uri else uri
    scheme, had_credentials, tail = parts
    userinfo = f"{HIDDEN}:{HIDDEN}@" if had_credentials else ""
    return f"{scheme}://{userinfo}{_hide_query_secrets(tail)}"


def uri_host(uri: str) -> str:
    """The part of a URI after any credentials, without query or fragment (``host:port/path``),
    for tags; never holds credentials."""
    parts = _split(uri)
    if parts is None:
        if "@" in uri:
            return UNPARSEABLE
        tail = uri
    else:
        tail = parts[2]
    return re.split(r"[?#]", tail, maxsplit=1)[0]
