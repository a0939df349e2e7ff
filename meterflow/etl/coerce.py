"""Values stored with the wrong type, read only where the reading is unambiguous.

A number stored as text (``"0.25"``, ``" 0.25 "``) or with a decimal comma (``"0,25"``) is read
and the correction recorded; ``"1,234"`` (decimal or thousands separator?), text with several
separators (``"1.234,5"``), words, or anything else is refused (the caller quarantines it with
the raw text). Missing values (None, NaN, blank text) stay missing: the cleaning drops them as
``missing_value``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

_NUMERIC_KINDS = ("floating", "integer", "mixed-integer-float", "decimal", "empty")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
_THOUSANDS = re.compile(r"[+-]?[1-9]\d{0,2},\d{3}")  # '1,234': decimal or thousands separator?


@dataclass(frozen=True)
class ParsedNumbers:
    """``values`` as float64 (NaN where missing or refused); ``coerced``: text read as a number
    (decimal comma included); ``malformed``: present but not a number; ``raw``: the input."""

    values: np.ndarray
    coerced: np.ndarray
    malformed: np.ndarray
    raw: np.ndarray


def parse_numbers(
    values: np.ndarray | pd.Series | list, *, text_is_native: bool = False
) -> ParsedNumbers:
    """Read a column that should hold numbers (see module doc). ``text_is_native``: the store
    holds text (a CSV file), so plain numeric text is no correction."""
    raw = np.asarray(values, dtype=object)
    n = len(raw)
    kind = pd.api.types.infer_dtype(raw, skipna=True)
    if kind in _NUMERIC_KINDS:  # the usual case
        return ParsedNumbers(raw.astype(np.float64), np.zeros(n, bool), np.zeros(n, bool), raw)
    out = np.full(n, np.nan)
    coerced = np.zeros(n, bool)
    malformed = np.zeros(n, bool)
    todo = np.arange(n)
    if text_is_native and kind == "string":  # vectorised for plain numbers, the rest below
        out = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(np.float64, copy=True)
        todo = np.flatnonzero(np.isnan(out) & (pd.Series(raw).str.strip() != "").to_numpy())
    for i in todo:  # only values that are not plain numbers get here
        value, how = _read_one(raw[i])
        out[i] = value
        coerced[i] = how == "coerced" and not (text_is_native and _plain_number(raw[i]))
        malformed[i] = how == "malformed"
    return ParsedNumbers(out, coerced, malformed, raw)


def _plain_number(v: object) -> bool:
    try:
        float(str(v))
    except ValueError:
        return False
    return True


def _read_one(v: object) -> tuple[float, str]:
    """(value, how): how is "" (a number or missing), "coerced" or "malformed"."""
    if v is None or isinstance(v, bool):
        return (np.nan, "") if v is None else (np.nan, "malformed")
    if isinstance(v, int | float | np.integer | np.floating):
        return float(v), ""
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    if not str(v).strip():
        return np.nan, ""
    value, problem = read_number_text(str(v))
    return (np.nan, "malformed") if problem else (value, "coerced")


def read_number_text(text: str) -> tuple[float, str]:
    """(value, problem) of a number stored as text: ``'0.25'``, ``' 0.25 '``, ``'0,25'``; the
    problem (``"is not a number"``, ``"is ambiguous ..."``) is empty when it was read."""
    s = text.strip()
    if _NUMBER.fullmatch(s):
        return float(s), ""
    if _THOUSANDS.fullmatch(s):
        return np.nan, "is ambiguous (decimal or thousands separator)"
    if _DECIMAL_COMMA.fullmatch(s):
        return float(s.replace(",", ".")), ""
    return np.nan, "is not a number"


def describe_coercion(name: str, raw: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Details such as ``energy '0,25' read as 0.25`` for the correction records."""
    return np.array(
        [f"{name} {r!r} read as {v:g}" for r, v in zip(raw, values, strict=True)], dtype=object
    )


def describe_malformed(name: str, raw: np.ndarray) -> np.ndarray:
    """Details such as ``energy 'n/a' is not a number``."""
    return np.array([f"{name} {r!r} is not a number" for r in raw], dtype=object)
