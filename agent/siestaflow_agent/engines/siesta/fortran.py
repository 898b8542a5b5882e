"""Numbers as Fortran prints them in fixed-width columns.

SIESTA writes its tables with fixed-width edit descriptors, so a value that needs its whole
field runs into its neighbour: ``-0.887920170.113695`` is ``-0.887920`` followed by
``170.113695`` (``Ef`` and ``dHmax`` of an ``scf:`` line). A field that overflows is printed as
asterisks. These helpers split such text back into numbers.
"""

from __future__ import annotations

import math
import re

# One Fortran real: optional sign, digits with a point, optional exponent (E or D).
_REAL = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[EeDd][-+]?\d+)?")
# A sign glued to the previous number (``0.762098-1.964111``); not an exponent's sign.
_GLUED_SIGN = re.compile(r"(?<=[\d.])(?=[-+])")


def to_float(token: str) -> float:
    """One Fortran real (``1.0D-3``, ``-.93E-06``, ``****`` -> NaN); raises ``ValueError``."""
    if token and set(token) == {"*"}:
        return math.nan
    return float(token.replace("D", "E").replace("d", "e"))


def split_numbers(text: str) -> list[float]:
    """All numbers in ``text``, splitting values that ran together in fixed-width columns.

    A sign glued to the previous number starts a new one; a token still holding several
    decimal points (``-0.887920170.113695``) is split so that every piece keeps the number of
    decimals of the last piece, which is always whole.
    Raises ``ValueError`` when a token is not numeric.
    """
    try:  # most lines: plain numbers apart (what float() accepts the long way reads the same)
        return [float(token) for token in text.split()]
    except ValueError:
        pass
    values: list[float] = []
    for token in _GLUED_SIGN.sub(" ", text).split():
        if token.count(".") > 1 and not any(c in token for c in "EeDd"):
            values.extend(_split_run_together(token))
        else:
            values.append(to_float(token))
    return values


def _split_run_together(token: str) -> list[float]:
    """Split ``-0.887920170.113695`` into ``[-0.88792, 170.113695]``."""
    decimals = len(token) - token.rindex(".") - 1
    if decimals == 0:
        raise ValueError(f"cannot split {token!r}")
    pieces: list[float] = []
    rest = token
    while rest.count(".") > 1:
        cut = rest.index(".") + 1 + decimals
        pieces.append(to_float(rest[:cut]))
        rest = rest[cut:]
    pieces.append(to_float(rest))
    return pieces


def find_numbers(text: str) -> list[float]:
    """Every number-looking substring of ``text`` (tolerant: ignores words and units)."""
    return [to_float(m.group(0)) for m in _REAL.finditer(text)]
