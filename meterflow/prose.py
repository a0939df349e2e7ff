"""How numbers and shares read in run descriptions and reports: one convention for all steps.

- a measure: three significant digits, trailing zeros dropped, thousands separated by commas,
  never in exponent notation (``0.0123``, ``382 Wh``, ``1,230 Wh``, ``-98,800``);
- a count: the whole number, thousands separated by commas (``52,100``, ``6,960,568``);
- a share (0..1): in percent, three significant digits (``99.2 %``); one just below 1 never reads
  ``100 %`` and a tiny positive one reads ``< 0.01 %``;
- a duration: seconds below 10 minutes, minutes from there on (``12.3 s``, ``15 min``);
- ``n/a`` for anything missing (None, NaN, infinite).

A run's description (``description``): the verdict in bold, a blank line, then one
``- **Label:** text`` bullet each.

Pure: strings from numbers, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

NA = "n/a"
DIGITS = 3  # significant digits of a measure or a share
MAX_DIGITS = 17  # enough for any float: a share below 1 never reads "100 %"
SMALLEST_PERCENT = 0.01  # a positive share below this many percent reads "< 0.01 %"
MINUTES_FROM_S = 600  # durations from 10 minutes on read in minutes


def significant(value: float, digits: int = DIGITS) -> str:
    """A finite ``value`` to ``digits`` significant digits, commas between thousands."""
    if value == 0:
        return "0"
    places = digits - 1 - math.floor(math.log10(abs(value)))
    rounded = round(value, places)
    if places <= 0:
        return f"{rounded:,.0f}"
    return f"{rounded:,.{places}f}".rstrip("0").rstrip(".")


def num(value: float | None, unit: str = "") -> str:
    """A measure to three significant digits with its unit (``382 Wh``); ``n/a`` if missing."""
    if value is None or not math.isfinite(value):
        return NA
    text = significant(float(value))
    return f"{text} {unit}" if unit else text


def count(value: float | None) -> str:
    """A count, whole and exact with commas between thousands (``52,100``); ``n/a`` if missing."""
    if value is None or not math.isfinite(value):
        return NA
    return f"{round(value):,}"


def percent(share: float | None) -> str:
    """A share (0..1) in percent to three significant digits (``99.2 %``); a share just below 1
    never reads ``100 %`` and a tiny positive one reads ``< 0.01 %``; ``n/a`` if missing."""
    if share is None or not math.isfinite(share):
        return NA
    value = 100 * float(share)
    if 0 < value < SMALLEST_PERCENT:
        return f"< {SMALLEST_PERCENT} %"
    digits = DIGITS
    text = significant(value, digits)
    while text == "100" and value < 100 and digits < MAX_DIGITS:
        digits += 1
        text = significant(value, digits)
    return f"{text} %"


def seconds(value: float | None) -> str:
    """A duration: seconds below 10 minutes (``12.3 s``), minutes from there on (``15 min``)."""
    if value is not None and math.isfinite(value) and value >= MINUTES_FROM_S:
        return num(value / 60, "min")
    return num(value, "s")


def description(verdict: str, bullets: Sequence[tuple[str, str]]) -> str:
    """A run's Markdown description: ``verdict`` in bold (given without the asterisks), a blank
    line, then a ``- **Label:** text`` line for each ``(label, text)`` bullet, in order."""
    lines = [f"**{verdict}**", "", *(f"- **{label}:** {text}" for label, text in bullets)]
    return "\n".join(lines)
