"""The field types' registry, entry by entry: a type added there is checked here with nothing else to write.

Every type's examples survive its text form and a real DuckDB store exactly; its JSON form is
JSON-native; the contract accepts exactly the options its entry names, with the messages clients read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas.contacts import cell_reader
from schemas.contract import ContractField
from schemas.field_types import FIELD_TYPES, OPTIONS, to_json, to_text
from schemas.samples import SAMPLE_ROWS, example_value
from tasks import store
from tasks.store import Store
from tests.importing import make_contract, stored_frame

OPTION_VALUES: dict[str, Any] = {"values": ("Gold", "Silver"), "format": "%d/%m/%Y"}


def field_of(kind: str, **options: Any) -> ContractField:
    """A field of the type, with the options its type needs."""
    needed = {option: OPTION_VALUES[option] for option in FIELD_TYPES[kind].needs}
    return ContractField(name=kind.title(), xml=kind, type=kind, **(needed | options))


@pytest.mark.parametrize("kind", sorted(FIELD_TYPES))
def test_examples_survive_the_text_form_and_json(kind: str) -> None:
    field = field_of(kind)
    for value in FIELD_TYPES[kind].examples(field):
        assert cell_reader(field)(to_text(field, value)) == value
        assert json.loads(json.dumps(to_json(field, value))) == to_json(field, value)
    assert (to_text(field, None), to_json(field, None)) == ("", None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("250.00"), "250"),
        (Decimal("250.0000000000"), "250"),
        (Decimal("-0.0000000000"), "0"),
        (Decimal("1E+3"), "1000"),
        (Decimal("123456789012345678901234567.0123456789"), "123456789012345678901234567.0123456789"),
        (Decimal("0.0000000001"), "0.0000000001"),
    ],
)
def test_decimals_are_written_exactly_without_trailing_zeros(value: Decimal, text: str) -> None:
    field = field_of("decimal")
    assert to_text(field, value) == to_json(field, value) == text


def test_every_type_is_stored_in_its_own_column_type_and_read_back_exactly(backend: Store) -> None:
    kinds = sorted(FIELD_TYPES)
    contract = make_contract("every", [field_of(k, required=k == "email").model_dump() for k in kinds])
    rows = [{f.id: example_value(f, i) for f in contract.fields} for i in range(SAMPLE_ROWS)]
    with backend.write() as con, store.transaction(con):
        store.upsert_contacts(con, contract, stored_frame(contract, rows), "f.csv", datetime.now(UTC))
        types = dict(store.contact_columns(con, "every").values())
        assert store.read_contacts(con, contract) == rows
    assert {k: types[k] for k in kinds} == {k: FIELD_TYPES[k].sql for k in kinds}


@pytest.mark.parametrize("kind", sorted(FIELD_TYPES))
@pytest.mark.parametrize("option", OPTIONS)
def test_a_field_takes_the_options_of_its_type_only(kind: str, option: str) -> None:
    if option in FIELD_TYPES[kind].options:
        assert getattr(field_of(kind, **{option: OPTION_VALUES[option]}), option) == OPTION_VALUES[option]
        return
    with pytest.raises(ValidationError, match=f"'{option}' is only for .* fields"):
        field_of(kind, **{option: OPTION_VALUES[option]})


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ({"type": "enum"}, "an enum field needs 'values'"),
        ({"type": "enum", "values": []}, "an enum field needs 'values'"),
        ({"type": "string", "values": ["A"]}, "'values' is only for enum fields"),
        ({"type": "integer", "format": "%Y"}, "'format' is only for date and datetime fields"),
        ({"type": "money"}, "Input should be 'string', 'email', 'integer', 'decimal', 'date', 'datetime'"),
    ],
)
def test_option_messages(field: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ContractField.model_validate({"name": "X", "xml": "x", **field})


QUICK_TYPES = sorted(kind for kind, spec in FIELD_TYPES.items() if spec.quick is not None)
# texts near each quick pattern's edges: signs, zeros, 18/19 and 28/29 digits, 10/11 places, impossible dates,
# offsets
EDGE_TEXTS = st.sampled_from(
    [
        "",
        " ",
        "+",
        "-0",
        "00123",
        ".5",
        "1.",
        " 12 ",
        "٣",
        "9" * 18,
        "9" * 19,
        "1" * 28 + ".5",
        "1" * 29,
        "1." + "5" * 10,
        "1." + "5" * 11,
        "2024-02-29",
        "2023-02-29",
        "2024-13-01",
        "2024-01-15T09:30",
        "2024-01-15 09:30:05.123456",
        "2024-01-15T25:00",
        "2024-01-15T09:30:00+02:00",
        "2024-01-15T09:30:00Z",
        "a@b.io",
        "a@@b.io",
    ]
)


def _full_parse(field: ContractField, text: str) -> object:
    """What the type's parser alone makes of a cell (as the reader did before the shortcut): the value,
    None for an empty cell, or the ValueError's message."""
    trimmed = text.strip()
    try:
        return FIELD_TYPES[field.type].parse(field, trimmed) if trimmed else None
    except ValueError as exc:
        return f"invalid: {exc}"


@pytest.mark.parametrize("kind", QUICK_TYPES)
@settings(max_examples=300, deadline=None)
@given(text=st.one_of(EDGE_TEXTS, st.from_regex(r"[ +\-0-9.:T@a-z]{0,30}", fullmatch=True)))
def test_the_quick_reading_of_a_type_gives_what_its_parser_gives(kind: str, text: str) -> None:
    """The field's `cell_reader`, which reads a common text by the type's shortcut, gives exactly what the type's full
    parser gives: the same value of the same type, or the same refusal with the same message."""
    field = field_of(kind)
    try:
        value: object = cell_reader(field)(text)
    except ValueError as exc:
        value = f"invalid: {exc}"
    expected = _full_parse(field, text)
    assert value == expected and type(value) is type(expected)
