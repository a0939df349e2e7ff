"""Credentials never reach logs, messages, params or tags: URIs are shown redacted."""

from __future__ import annotations

import re


def redact_uri(uri: str) -> str:
    """``scheme://user:password@host/...`` -> ``scheme://***:***@host/...``."""
    return re.sub(r"//[^@/]*@", "//***:***@", uri)


def uri_host(uri: str) -> str:
    """The part of a URI after any credentials (``host:port/path``), for tags."""
    return redact_uri(uri).split("@")[-1].split("//")[-1]
