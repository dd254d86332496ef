"""The pandera schema of a client's contacts, generated from its contract, and the typed value parsers.

The schema checks the table of text cells a reader produced (columns named by the fields' `xml`
names). Each type check calls the same parser that later types the valid rows, so what passes the
check always converts; the parser's ValueError message is the client-facing reason."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache

import pandas as pd
import pandera.pandas as pa

from schemas.contract import Contract, ContractField

Value = str | int | bool | Decimal | date | datetime | None

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
INTEGER = re.compile(r"^[+-]?\d+$")
DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$")
BOOLEANS = {"true": True, "yes": True, "y": True, "1": True, "false": False, "no": False, "n": False, "0": False}
MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS = 10, 28
REQUIRED_CHECK = "required"
FORMAT_WORDS = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%H": "hh", "%M": "mm", "%S": "ss", "%z": "+hh:mm"}


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the store's BIGINT range


def _shown(text: str) -> str:
    """A value quoted for a message, cut short so a long cell does not flood the report.

    A value with an '@' (an email in a shifted column) is not repeated: messages reach logs and artifacts."""
    if "@" in text:
        return "The value (an email address?)"
    return repr(text if len(text) <= 40 else text[:40] + "…")


def human_format(fmt: str) -> str:
    """A strptime format as a client reads it: %d/%m/%Y -> DD/MM/YYYY."""
    for code, word in FORMAT_WORDS.items():
        fmt = fmt.replace(code, word)
    return fmt


def _date(field: ContractField, text: str) -> date:
    if ISO_DATE.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    if field.format:
        try:
            return datetime.strptime(text, field.format).date()
        except ValueError:
            pass
    accepted = f"{human_format(field.format)} or YYYY-MM-DD" if field.format else "YYYY-MM-DD"
    raise ValueError(f"{_shown(text)} is not a valid date; write it as {accepted}.")


def _datetime(field: ContractField, text: str) -> datetime:
    value: datetime | None = None
    if ISO_DATETIME.match(text):
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            value = None
    if value is None and field.format:
        try:
            value = datetime.strptime(text, field.format)
        except ValueError:
            value = None
    if value is None:
        accepted = f"{human_format(field.format)} or " if field.format else ""
        raise ValueError(f"{_shown(text)} is not a valid date and time; write it as {accepted}YYYY-MM-DDThh:mm:ss.")
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _decimal(text: str) -> Decimal:
    if not DECIMAL.match(text):
        raise ValueError(f"{_shown(text)} is not a number; use digits and a dot for decimals (e.g. 1234.50).")
    whole, _, fraction = text.lstrip("+-").partition(".")
    if len(fraction) > MAX_FRACTION_DIGITS:
        raise ValueError(
            f"{_shown(text)} has {len(fraction)} decimal places; at most {MAX_FRACTION_DIGITS} are allowed."
        )
    if len(whole.lstrip("0")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"{_shown(text)} has more than {MAX_INTEGER_DIGITS} digits before the decimal point.")
    return Decimal(text)


def parse_value(field: ContractField, text: str) -> Value:
    """The typed value of one cell, None when empty; ValueError with the reason when it is invalid.

    Strings are kept exactly as written; every other type is read with surrounding spaces trimmed."""
    if field.type == "string":
        return text or None
    value = text.strip()
    if not value:
        return None
    if field.type == "email":
        if not EMAIL.match(value):
            raise ValueError("Not a valid email address.")
        return value
    if field.type == "enum":
        allowed = field.values or ()
        for option in allowed:
            if option.lower() == value.lower():
                return option
        raise ValueError(f"{_shown(value)} is not an allowed value; use one of: {', '.join(allowed)}.")
    if field.type == "integer":
        if not INTEGER.match(value):
            raise ValueError(f"{_shown(value)} is not a whole number.")
        number = int(value)
        if not INT64_MIN <= number <= INT64_MAX:
            raise ValueError(f"{_shown(value)} is too large; whole numbers go up to {INT64_MAX:,}.")
        return number
    if field.type == "boolean":
        if value.lower() not in BOOLEANS:
            raise ValueError(f"{_shown(value)} is not a yes/no value; use true/false, yes/no, y/n or 1/0.")
        return BOOLEANS[value.lower()]
    if field.type == "decimal":
        return _decimal(value)
    if field.type == "date":
        return _date(field, value)
    return _datetime(field, value)


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
    if field.type != "string":
        checks.append(pa.Check(lambda v, f=field: _valid(f, v), element_wise=True, name=field.type))
    return pa.Column(str, checks=checks, nullable=False, required=True)


def build_schema(contract: Contract) -> pa.DataFrameSchema:
    """The schema of the text table of a client's contacts: one column per field, by `xml` name."""
    return pa.DataFrameSchema(
        {field.xml: _column(field) for field in contract.fields},
        strict=True,
        ordered=True,
        name=f"contacts of {contract.id}",
    )


def typed_column(field: ContractField, texts: list[str]) -> pd.Series:
    """A column of already-validated text cells as Python objects (object dtype keeps None and Decimal)."""
    return pd.Series([checked(field, t)[0] for t in texts], dtype=object)
