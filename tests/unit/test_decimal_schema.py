"""The JSON Schema of a money or seconds field says exactly what the model accepts: a string
the pattern matches is accepted, and one it does not match is refused (checked both ways)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

import pytest
from costguard.models import _decimal_string, decimal_schema
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError

BOUNDS = [(Decimal(1_000_000), 6), (Decimal(2_678_400), 3), (Decimal(100), 2), (Decimal(9), 0)]
TEXT = st.text(alphabet="0123456789.-+e ", max_size=14) | st.decimals(
    min_value=-2, max_value=3_000_000, places=8, allow_nan=False
).map(str)


def _accepts(maximum: Decimal, places: int, value: Any) -> bool:
    field = Annotated[
        Decimal,
        BeforeValidator(_decimal_string),
        Field(ge=0, le=maximum, decimal_places=places),
    ]
    try:
        TypeAdapter(field).validate_python(value)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(("maximum", "places"), BOUNDS)
@settings(max_examples=400, deadline=None)
@given(text=TEXT)
@example(text="-0")
@example(text=".5")
@example(text="5.")
@example(text="0001.100000000")
@example(text="1e2")
def test_the_pattern_matches_exactly_the_strings_the_field_accepts(
    maximum: Decimal, places: int, text: str
) -> None:
    pattern = decimal_schema(maximum, places)["pattern"]

    assert bool(re.fullmatch(pattern, text)) == _accepts(maximum, places, text), text


@pytest.mark.parametrize(("maximum", "places"), BOUNDS)
def test_the_bounds_themselves(maximum: Decimal, places: int) -> None:
    pattern = decimal_schema(maximum, places)["pattern"]
    for text, accepted in (
        (str(maximum), True),
        (f"{maximum}.{'0' * 9}", True),
        (str(maximum + 1), False),
        (f"{maximum - 1}.{'9' * places}" if places else str(maximum - 1), True),
        (f"{maximum}.{'0' * places}1", False),
        ("0", True),
        ("-1", False),
    ):
        assert bool(re.fullmatch(pattern, text)) is accepted, text
        assert _accepts(maximum, places, text) is accepted, text


@pytest.mark.parametrize(("maximum", "places"), BOUNDS)
@settings(max_examples=300, deadline=None)
@given(text=TEXT)
@example(text="0.000001")
@example(text=".0")
@example(text="-0")
@example(text="00.10")
def test_the_positive_pattern_matches_exactly_the_accepted_strings_above_zero(
    maximum: Decimal, places: int, text: str
) -> None:
    pattern = decimal_schema(maximum, places, positive=True)["pattern"]
    above_zero = _accepts(maximum, places, text) and Decimal(text) > 0

    assert bool(re.fullmatch(pattern, text)) == above_zero, text


def test_every_decimal_string_field_declares_its_pattern() -> None:
    # A money field without `WithJsonSchema(decimal_schema(...))` documents pydantic's
    # number-or-string, which the API refuses half of (a merge once left one out)
    import typing

    from costguard import models
    from pydantic import BaseModel, WithJsonSchema

    def metadata(annotation: Any) -> list[list[Any]]:
        found = []
        if typing.get_origin(annotation) is Annotated:
            found.append(list(annotation.__metadata__))
        for arg in typing.get_args(annotation):
            found.extend(metadata(arg))
        return found

    missing = []
    for model in vars(models).values():
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        hints = typing.get_type_hints(model, include_extras=True)
        for name, annotation in hints.items():
            for meta in metadata(annotation):
                decimal = any(getattr(m, "func", None) is _decimal_string for m in meta)
                if decimal and not any(isinstance(m, WithJsonSchema) for m in meta):
                    missing.append(f"{model.__name__}.{name}")
    assert missing == []
