"""The pandera schema of a client's contacts, generated from its contract, and the typing of its cells.

The schema checks the table of text cells a reader produced (columns named by the fields' `xml`
names). A type check parses its whole column at once, each distinct text once, with the parser of
its type (schemas/field_types.py), and keeps the result: the typing of the valid rows and the
reasons of the failed cells read it, so what passes the check always converts and nothing is parsed
twice. The parser's ValueError message is the client-facing reason."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
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
    if spec.quick is not None and spec.quick[0].match(value):
        try:  # a common text: one plain call; an impossible one (2024-02-30) is explained by the parser
            return spec.quick[1](value)
        except ValueError:
            pass
    return spec.parse(field, value) if value else None


def _objects(items: list[Value] | list[str | None]) -> np.ndarray:
    """A list as a 1-d object array, its items kept as they are (no conversion to numpy types)."""
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


@dataclass(frozen=True)
class ParsedColumn:
    """A text column parsed: per cell the typed value (None when empty or invalid) and the reason it is
    invalid (None when valid); both object arrays in the column's order."""

    values: np.ndarray
    reasons: np.ndarray

    @property
    def valid(self) -> np.ndarray:
        """A boolean array: True where the cell is valid (empty included)."""
        return np.asarray(pd.isna(self.reasons), dtype=bool)


def parse_column(field: ContractField, texts: pd.Series) -> ParsedColumn:
    """Every cell of a text column parsed, each distinct text once (an enum or a date repeats a lot).

    Free text needs no parser: its cells are the values, '' none."""
    cells = texts.to_numpy(dtype=object)
    if FIELD_TYPES[field.type].free_text:
        texts_kept = cells.copy()
        texts_kept[cells == ""] = None
        return ParsedColumn(texts_kept, np.full(len(cells), None, dtype=object))
    codes, distinct = pd.factorize(cells)
    values: list[Value] = []
    reasons: list[str | None] = []
    for text in distinct:
        try:
            values.append(parse_value(field, text))
            reasons.append(None)
        except ValueError as exc:
            values.append(None)
            reasons.append(str(exc))
    return ParsedColumn(_objects(values)[codes], _objects(reasons)[codes])


class ColumnParser:
    """The columns of ONE text table, each parsed once: the schema's type checks parse them (`valid`),
    the typing of the valid rows and the reasons of failed cells read what was kept (`parsed`)."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self._parsed: dict[str, ParsedColumn] = {}

    def parsed(self, field: ContractField, texts: pd.Series) -> ParsedColumn:
        """The field's column of the table (`texts`, parsed on the first call, kept after)."""
        if field.id not in self._parsed:
            self._parsed[field.id] = parse_column(field, texts)
        return self._parsed[field.id]

    def valid(self, field: ContractField, texts: pd.Series) -> pd.Series:
        """The type check: True for each cell that is empty or parses as the field's type."""
        return pd.Series(self.parsed(field, texts).valid, index=texts.index)


def _column(field: ContractField, parser: ColumnParser) -> pa.Column:
    """The checks of one field: required (not blank), then its type (blank passes, required decides)."""
    checks = []
    # the cells are the reader's text, never null: pandera need not look for nulls (0.15 s at 150k rows)
    if field.required:
        checks.append(pa.Check(lambda s: s.str.strip() != "", name=REQUIRED_CHECK, ignore_na=False))
    if not FIELD_TYPES[field.type].free_text:
        checks.append(pa.Check(lambda s, f=field: parser.valid(f, s), name=field.type, ignore_na=False))
    return pa.Column(str, checks=checks, nullable=True, required=True)


def build_schema(parser: ColumnParser) -> pa.DataFrameSchema:
    """The schema of the text table of a client's contacts: one column per field, by `xml` name.

    Its checks are vectorised, one call per column; the type checks parse with (and into) `parser`."""
    contract = parser.contract
    return pa.DataFrameSchema(
        {field.id: _column(field, parser) for field in contract.fields},
        strict=True,
        ordered=True,
        name=f"contacts of {contract.id}",
    )
