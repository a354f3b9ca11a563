"""Credits as exact amounts: the API speaks numbers with at most 2 decimals, the ledger cents.

A request's amount is a JSON number (``500``, ``12.5``, ``0.01``); anything else — a string, a
boolean, NaN, infinity, a third decimal, a negative — is refused before it reaches the ledger,
because a float rounded silently would make or lose money. Amounts go back to clients as numbers:
an integer when whole, else a float with two decimals (``12.5``).

Use :data:`Credits` (zero or more) or :data:`PositiveCredits` for a request field, and
:data:`CreditsOut` for an answer's field: each holds cents in Python.
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = [
    "MAX_CENTS",
    "Credits",
    "CreditsOut",
    "PositiveCredits",
    "from_cents",
    "to_cents",
]

MAX_CENTS = 10**14
"""The largest amount, in cents (a trillion credits): with two decimals that is 15 significant
digits, which a JSON number parsed as a double still carries exactly."""


def to_cents(value: object, *, positive: bool = False) -> int:
    """A JSON number of credits as cents; ValueError for anything that is not an exact amount."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("must be a number of credits")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    try:
        # repr: the shortest decimal that reads back as this float (0.29, not 0.28999...).
        exact = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    except InvalidOperation:
        raise ValueError("must be a number of credits") from None
    cents = exact * 100
    if cents != cents.to_integral_value():
        raise ValueError("must have at most 2 decimal places")
    if cents < 0 or (positive and cents == 0):
        raise ValueError("must be more than 0" if positive else "must not be negative")
    if cents > MAX_CENTS:
        raise ValueError(f"must be at most {from_cents(MAX_CENTS)}")
    return int(cents)


def from_cents(cents: int) -> int | float:
    """Cents as the number a client reads: 50000 → 500, 1250 → 12.5."""
    whole, rest = divmod(cents, 100)
    return whole if rest == 0 else cents / 100


def _positive_cents(value: object) -> int:
    return to_cents(value, positive=True)


_AMOUNT_SCHEMA = {"type": "number", "multipleOf": 0.01, "maximum": MAX_CENTS / 100}

Credits = Annotated[
    int,
    BeforeValidator(to_cents),
    WithJsonSchema({**_AMOUNT_SCHEMA, "minimum": 0}, mode="validation"),
]
"""A request's amount of credits, zero or more (held as cents)."""

PositiveCredits = Annotated[
    int,
    BeforeValidator(_positive_cents),
    WithJsonSchema({**_AMOUNT_SCHEMA, "exclusiveMinimum": 0}, mode="validation"),
]
"""A request's amount of credits, more than zero (held as cents)."""

CreditsOut = Annotated[
    int,
    PlainSerializer(from_cents, return_type=int | float),
    WithJsonSchema({"type": "number", "multipleOf": 0.01}, mode="serialization"),
]
"""An answer's amount: cents in Python, a number of credits on the wire."""
