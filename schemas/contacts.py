"""The pandera schema of a client's contacts, generated from its contract, and the typing of its cells.

The schema checks the table of text cells a reader produced (columns named by the fields' `xml`
names). Each type check calls the same parser (its type's, schemas/field_types.py) that later
types the valid rows, so what passes the check always converts; the parser's ValueError message
is the client-facing reason."""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
import pandera.pandas as pa

from schemas.contract import Contract, ContractField
from schemas.field_types import FIELD_TYPES, Value

REQUIRED_CHECK = "required"


def parse_value(field: ContractField, text: str) -> Value:
    """The typed value of one cell, None when empty; ValueError with the reason when it is invalid.

    Free text (strings) is kept exactly as written; every other type is read with surrounding
    spaces trimmed, by its parser in the registry (schemas/field_types.py)."""
    spec = FIELD_TYPES[field.type]
    value = text if spec.free_text else text.strip()
    return spec.parse(field, value) if value else None


@lru_cache(maxsize=65536)
def checked(field: ContractField, text: str) -> tuple[Value, str | None]:
    """`parse_value` once per (field, text): the value, or None and why it is invalid.

    The schema's check, the typing of valid cells and the reasons of failed ones all read this, so
    a cell is parsed once (and a repeated value, an enum or a country, once per file or less)."""
    try:
        return parse_value(field, text), None
    except ValueError as exc:
        return None, str(exc)


def _valid(field: ContractField, text: str) -> bool:
    return checked(field, text)[1] is None


def _column(field: ContractField) -> pa.Column:
    """The checks of one field: required (not blank), then its type (blank passes, required decides)."""
    checks = []
    if field.required:
        checks.append(pa.Check(lambda s: s.str.strip() != "", name=REQUIRED_CHECK))
    if not FIELD_TYPES[field.type].free_text:
        checks.append(pa.Check(lambda v, f=field: _valid(f, v), element_wise=True, name=field.type))
    return pa.Column(str, checks=checks, nullable=False, required=True)


def build_schema(contract: Contract) -> pa.DataFrameSchema:
    """The schema of the text table of a client's contacts: one column per field, by `xml` name."""
    return pa.DataFrameSchema(
        {field.id: _column(field) for field in contract.fields},
        strict=True,
        ordered=True,
        name=f"contacts of {contract.id}",
    )


def typed_column(field: ContractField, texts: list[str]) -> pd.Series:
    """A column of already-validated text cells as Python objects (object dtype keeps None and Decimal)."""
    return pd.Series([checked(field, t)[0] for t in texts], dtype=object)
