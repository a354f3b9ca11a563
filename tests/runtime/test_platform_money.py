"""Credits are exact: a request's amount becomes cents or is refused, and cents go back as numbers."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ValidationError

from runtime.platform.daily_limit import DAY, DailyLimit
from runtime.platform.money import MAX_CENTS, Credits, CreditsOut, PositiveCredits, from_cents, to_cents


class Budget(BaseModel):
    budget: PositiveCredits
    tip: Credits = 0


class Shown(BaseModel):
    amount: CreditsOut


@pytest.mark.parametrize(
    ("sent", "cents"),
    [
        (500, 50_000),
        (12.5, 1250),
        (0.29, 29),
        (0.01, 1),
        (1e2, 10_000),
        (999_999_999_999.99, MAX_CENTS - 1),
        (1e12, MAX_CENTS),
    ],
)
def test_numbers_with_at_most_two_decimals_become_exact_cents(sent: float, cents: int) -> None:
    assert Budget.model_validate_json(json.dumps({"budget": sent})).budget == cents


@pytest.mark.parametrize(
    "sent",
    [
        "-1",
        "0",
        "0.001",
        "1e-3",
        '"500"',
        "true",
        "null",
        "NaN",
        "Infinity",
        "1e300",
        "[1]",
        "90071992547410",
    ],
)
def test_anything_else_is_refused(sent: str) -> None:
    with pytest.raises(ValidationError):
        Budget.model_validate_json(f'{{"budget": {sent}}}')


def test_zero_is_an_amount_where_positive_is_not_required() -> None:
    assert Budget.model_validate({"budget": 1, "tip": 0}).tip == 0
    with pytest.raises(ValidationError, match="negative"):
        Budget.model_validate({"budget": 1, "tip": -0.5})


@pytest.mark.parametrize(
    ("cents", "shown"), [(50_000, "500"), (1250, "12.5"), (1, "0.01"), (-30_000, "-300"), (-150, "-1.5")]
)
def test_cents_are_shown_as_an_integer_when_whole_else_two_decimals(cents: int, shown: str) -> None:
    assert Shown(amount=cents).model_dump_json() == f'{{"amount":{shown}}}'
    assert to_cents(json.loads(shown) if cents >= 0 else -json.loads(shown)) == abs(cents)
    assert from_cents(cents) == json.loads(shown)


def test_the_documents_schemas_say_number() -> None:
    assert Budget.model_json_schema()["properties"]["budget"]["type"] == "number"
    assert Shown.model_json_schema(mode="serialization")["properties"]["amount"]["type"] == "number"


def test_a_daily_limit_refuses_the_next_and_refills_over_the_day() -> None:
    now = [0.0]
    limit = DailyLimit(2, clock=lambda: now[0])
    assert limit.take("1.2.3.4") is None
    assert limit.take("1.2.3.4") is None
    wait = limit.take("1.2.3.4")
    assert wait == DAY / 2  # one registration comes back every half day
    assert limit.take("5.6.7.8") is None  # per address
    now[0] += DAY / 2
    assert limit.take("1.2.3.4") is None
    assert limit.take("1.2.3.4") is not None


def test_a_daily_limit_of_zero_is_off() -> None:
    limit = DailyLimit(0)
    assert all(limit.take("a") is None for _ in range(10))
