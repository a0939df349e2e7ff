"""Credentials never reach logs, messages, params or tags: URIs are shown redacted.

Everything between ``://`` and the LAST ``@`` of the string is taken as credentials: for a
well-formed URI (also ``mongodb+srv`` and ``host1,host2`` lists) that is exactly the userinfo
``urllib.parse.urlsplit`` finds; for a malformed one (an unescaped ``/``, ``?``, ``#`` or ``@``
in the password) it may hide more than the userinfo, which is acceptable where showing a
password is not. Query values whose key names a secret
(``password=``, ``...Token=``, ``authMechanismProperties=``) are hidden too.

A driver echoes what ITS parser made of a URI: with an unescaped ``@`` in the password
(``user:p@ss@host``) the host it names holds the rest of the password. Such URIs are rejected at
the edge (:func:`ambiguous_credentials`), and a driver's message is shown only through
:func:`scrub`, which hides every piece of the password a parser could have split off.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

UNPARSEABLE = "<unparseable URI>"
HIDDEN = "***"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|authmechanismproperties", re.IGNORECASE)
_SEPARATORS = re.compile(r"[@:/?#]")  # where a URI parser may cut a password
_MIN_SEARCHABLE = 4  # a shorter piece of a password cannot be searched for in a message
ESCAPE_HINT = (
    "percent-encode each '@' in the user name and password as %40 (and ':' '/' '?' '#' '%' "
    "in them as %3A %2F %3F %23 %25)"
)


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


def _userinfo(uri: str) -> str | None:
    """Everything between ``://`` and the last ``@`` (None without credentials); a URI whose
    ``://`` is followed by ``/`` (``sqlite:///path``) has none."""
    _, sep, rest = uri.partition("://")
    if not sep or rest.startswith("/") or "@" not in rest:
        return None
    return rest[: rest.rfind("@")]


def ambiguous_credentials(uri: str) -> bool:
    """The user name or password of ``uri`` holds an unescaped ``@``: a URI parser reads the
    host from inside the password (and a driver then echoes that piece of it)."""
    userinfo = _userinfo(uri)
    return userinfo is not None and "@" in userinfo


def password_pieces(uri: str) -> list[str]:
    """Every form in which a driver may echo (part of) the password of ``uri``, longest first:
    the password as written (the credentials after their first ``:``), its pieces between the
    characters a parser may cut it at (``@ : / ? #``), and their percent-decoded forms."""
    userinfo = _userinfo(uri)
    if userinfo is None:
        return []
    _, colon, password = userinfo.partition(":")
    if not colon:
        return []
    forms = {password, unquote(password)}
    pieces = forms | {p for f in forms for p in _SEPARATORS.split(f)}
    return sorted((p for p in pieces if p), key=len, reverse=True)


def scrub(text: str, uri: str) -> str | None:
    """``text`` (e.g. a driver's message about ``uri``) with ``uri`` redacted and every piece of
    its password hidden; None when a piece is too short to be searched for reliably (the
    caller then shows no driver text at all)."""
    pieces = password_pieces(uri)
    if any(len(p) < _MIN_SEARCHABLE for p in pieces):
        return None
    text = text.replace(uri, redact_uri(uri))
    for piece in pieces:
        text = text.replace(piece, HIDDEN)
    return text
