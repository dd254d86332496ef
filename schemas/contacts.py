"""The pandera schema of a client's contacts, generated from its contract, and the typing of its cells.

The schema checks the table of text cells a reader produced (columns named by the fields' `xml`
names). A type check parses its whole column at once, each distinct text once, with the parser of
its type (schemas/field_types.py), and keeps the result: the typing of the valid rows and the
reasons of the failed cells read it, so what passes the check always converts and nothing is parsed
twice. The parser's ValueError message is the client-facing reason. The values are kept as the store
takes them: a type stored as text (decimals) keeps the exact text (`TypeSpec.stored_as_text`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pandera.pandas as pa

from schemas.contract import Contract, ContractField
from schemas.field_types import FIELD_TYPES, Value

REQUIRED_CHECK = "required"


def cell_reader(field: ContractField, *, stored: bool = False) -> Callable[[str], Value]:
    """The field's reader of one cell: its typed value, None when empty; ValueError with the reason when
    it is invalid. Made once per column: what the field's type decides is looked up here, not per cell.
    `stored`: the value as the store takes it, the exact text of a type stored as text (decimals).

    Free text (strings) is kept exactly as written; every other type is read with surrounding
    spaces trimmed, by its parser in the registry (schemas/field_types.py)."""
    spec = FIELD_TYPES[field.type]
    free_text, parse, as_text = spec.free_text, spec.parse, stored and spec.stored_as_text
    match, quick = (spec.quick[0].match, spec.quick[1]) if spec.quick is not None else (None, None)

    def read(text: str) -> Value:
        value = text if free_text else text.strip()
        if match is not None and match(value):
            if as_text:  # a common text is its own exact text: no object made, none turned back
                return value
            try:  # a common text: one plain call; an impossible one (2024-02-30) is explained by the parser
                return quick(value)  # type: ignore[misc]  # set with `match`
            except ValueError:
                pass
        if not value:
            return None
        typed = parse(field, value)
        return spec.text(typed) if as_text else typed

    return read


@dataclass(frozen=True)
class ParsedColumn:
    """A text column parsed: per cell the typed value as the store takes it (a decimal's exact text; None
    when empty or invalid), and the reason a cell is invalid, where one is (None when every cell is valid:
    no array of Nones, 1 MB at 150,000 rows)."""

    values: np.ndarray
    reasons: np.ndarray | None = None

    @property
    def valid(self) -> np.ndarray:
        """A boolean array: True where the cell is valid (empty included)."""
        if self.reasons is None:
            return np.ones(len(self.values), dtype=bool)
        return np.asarray(pd.isna(self.reasons), dtype=bool)

    def reason(self, row: int) -> str | None:
        """Why the cell of that row is invalid; None when it is valid."""
        return None if self.reasons is None else self.reasons[row]


def parse_column(field: ContractField, texts: pd.Series) -> ParsedColumn:
    """Every cell of a text column parsed to its value as the store takes it, each distinct text once (an
    enum or a date repeats a lot).

    Free text needs no parser: its cells are the values, '' none."""
    cells = texts.to_numpy(dtype=object)
    if FIELD_TYPES[field.type].free_text:
        texts_kept = cells.copy()
        texts_kept[cells == ""] = None
        return ParsedColumn(texts_kept)
    codes, distinct = pd.factorize(cells)
    read = cell_reader(field, stored=True)
    values = np.empty(len(distinct), dtype=object)
    reasons = np.full(len(distinct), None, dtype=object)
    invalid = False
    for index, text in enumerate(distinct):
        try:
            values[index] = read(text)
        except ValueError as exc:
            reasons[index], invalid = str(exc), True
    return ParsedColumn(values[codes], reasons[codes] if invalid else None)


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
    # no pandas dtype: every cell is the reader's text and its type is the field's check above; pandera's
    # check of a `str` dtype re-proved what the readers guarantee, for 4 ms a 5,000-row file
    return pa.Column(None, checks=checks, nullable=True, required=True)


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
