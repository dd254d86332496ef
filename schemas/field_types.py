"""The field types of a contract, one registry entry each; everything that depends on a type reads it.

An entry says how a cell's text becomes a typed value (a ValueError's message is the reason the
client reads), which contract options the type takes, the store's column type, the type's one
text form (written by every file writer and the CSV export) and its JSON form, example values for
sample files and a hypothesis strategy for the property tests. A typed spreadsheet cell is read
as the text form of its own type (tasks/formats/sheet_process.py `cell_text`): an Excel date cell parses
as a date, a whole-number cell keeps no '.0'.

Read by: schemas/contract.py (type names, options), schemas/contacts.py (parsing, the pandera
schema), tasks/store.py (column types), schemas/samples.py, tasks/export.py, the spreadsheet
reader and tests/test_roundtrip_property.py."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # hypothesis is a test dependency, imported by `strategy` only
    from types import ModuleType

    from hypothesis.strategies import SearchStrategy

    from schemas.contract import ContractField

    # hypothesis's `strategies` module, the field, the free text the file format carries -> valid values
    Strategy = Callable[[ModuleType, ContractField, SearchStrategy[str]], SearchStrategy[Any]]

Value = str | int | bool | Decimal | date | datetime | None
JsonValue = str | int | bool | None

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
INTEGER = re.compile(r"^[+-]?\d+$")
DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
ISO_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$")
# The common valid texts of a type, each read by one plain call (`TypeSpec.quick`): whole numbers
# of up to 18 digits fit BIGINT, decimals within DECIMAL(38,10), ISO dates, ISO times without offset.
QUICK_INTEGER = re.compile(r"^[+-]?\d{1,18}$")
QUICK_DECIMAL = re.compile(r"^[+-]?\d{1,28}(\.\d{1,10})?$")
QUICK_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$")
BOOLEANS = {"true": True, "yes": True, "y": True, "1": True, "false": False, "no": False, "n": False, "0": False}
MAX_FRACTION_DIGITS, MAX_INTEGER_DIGITS = 10, 28  # the store's DECIMAL(38,10)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # the store's BIGINT range
FORMAT_WORDS = {"%d": "DD", "%m": "MM", "%Y": "YYYY", "%y": "YY", "%H": "hh", "%M": "mm", "%S": "ss", "%z": "+hh:mm"}
OPTIONS = ("values", "format")  # the contract options of a field that depend on its type
EARLIEST, LATEST = datetime(1900, 3, 1), datetime(2100, 12, 31)  # Excel's serial dates are wrong before March 1900
TEXTS = {  # example texts by a word in the field's name; first names otherwise
    "id": ("00123", "00456", "00789"),
    "number": ("00123", "00456", "00789"),
    "last": ("Jansen", "de Vries", "Martin"),
    "country": ("Netherlands", "Germany", "France"),
}
NAMES = ("Anna", "Bram", "Chloé")


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


def _string(field: ContractField, text: str) -> str:
    return text


def _email(field: ContractField, text: str) -> str:
    if not EMAIL.match(text):
        raise ValueError("Not a valid email address.")
    return text


def _enum(field: ContractField, text: str) -> str:
    allowed = field.values or ()
    for option in allowed:
        if option.lower() == text.lower():
            return option
    raise ValueError(f"{_shown(text)} is not an allowed value; use one of: {', '.join(allowed)}.")


def _integer(field: ContractField, text: str) -> int:
    if not INTEGER.match(text):
        raise ValueError(f"{_shown(text)} is not a whole number.")
    number = int(text)
    if not INT64_MIN <= number <= INT64_MAX:
        raise ValueError(f"{_shown(text)} is too large; whole numbers go up to {INT64_MAX:,}.")
    return number


def _boolean(field: ContractField, text: str) -> bool:
    if text.lower() not in BOOLEANS:
        raise ValueError(f"{_shown(text)} is not a yes/no value; use true/false, yes/no, y/n or 1/0.")
    return BOOLEANS[text.lower()]


def _decimal(field: ContractField, text: str) -> Decimal:
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


def _decimal_text(value: Decimal) -> str:
    """Exact, without exponent or trailing zeros: 250.00 and DECIMAL(38,10)'s 250.0000000000 both read 250."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _boolean_text(value: bool) -> str:
    return "true" if value else "false"


def _string_examples(field: ContractField) -> Sequence[str]:
    words = field.name.lower().split()
    return next((texts for word, texts in TEXTS.items() if word in words), NAMES)


@dataclass(frozen=True)
class TypeSpec:
    """One field type.

    `parse` takes a cell's non-empty text (trimmed, unless `free_text`) and returns the value or
    raises ValueError with the client-facing reason; `text` takes a non-empty value."""

    parse: Callable[[ContractField, str], Value]
    sql: str  # the store's column type
    text: Callable[[Any], str]  # the one text form, read back by `parse`
    examples: Callable[[ContractField], Sequence[Value]]
    strategy: Strategy  # values every file format carries, as `parse` returns them
    json_native: bool = True  # JSON carries the value itself; else its text form (exact decimals, ISO dates)
    options: frozenset[str] = frozenset()  # of OPTIONS, those a field of this type may set
    needs: frozenset[str] = frozenset()  # of those, the ones it must set
    free_text: bool = False  # any text is valid and kept exactly as written, spaces included
    # a shortcut for the common texts: (pattern, reader) such that a text the pattern matches is read
    # by `reader` alone, to the value `parse` gives (or a ValueError, left to `parse` to explain)
    quick: tuple[re.Pattern[str], Callable[[str], Value]] | None = None
    # a file's rows reach the store with the value's exact text, not the value: the store's type reads
    # the text exactly (DECIMAL), and an object a cell costs more (a Decimal: 104 bytes, and DuckDB
    # scans it 4× slower than text); a text `quick` matches is kept as it is, any other becomes `text`
    stored_as_text: bool = False


FIELD_TYPES: dict[str, TypeSpec] = {
    "string": TypeSpec(
        parse=_string,
        sql="VARCHAR",
        text=str,
        examples=_string_examples,
        strategy=lambda st, field, text: text.filter(lambda s: bool(s.strip()) or not field.required).map(
            lambda s: s or None
        ),
        free_text=True,
    ),
    "email": TypeSpec(
        parse=_email,
        quick=(EMAIL, str),
        sql="VARCHAR",
        text=str,
        examples=lambda field: ("anna.jansen@example.com", "bram.devries@example.org", "chloe.martin@example.net"),
        strategy=lambda st, field, text: st.from_regex(
            r"[A-Za-z0-9._%+-]{1,10}@[a-z0-9-]{1,8}\.[a-z]{2,4}", fullmatch=True
        ),
    ),
    "integer": TypeSpec(
        parse=_integer,
        quick=(QUICK_INTEGER, int),
        sql="BIGINT",
        text=str,
        examples=lambda field: (0, 120, 4500),
        strategy=lambda st, field, text: st.integers(-(10**15), 10**15),  # exact in a spreadsheet's float
    ),
    "decimal": TypeSpec(
        parse=_decimal,
        quick=(QUICK_DECIMAL, Decimal),
        sql=f"DECIMAL({MAX_INTEGER_DIGITS + MAX_FRACTION_DIGITS},{MAX_FRACTION_DIGITS})",
        text=_decimal_text,
        examples=lambda field: (Decimal("19.99"), Decimal("250.00"), Decimal("1234.50")),
        strategy=lambda st, field, text: st.integers(0, MAX_FRACTION_DIGITS).flatmap(
            lambda places: st.decimals(-(10**12), 10**12, places=places, allow_nan=False, allow_infinity=False)
        ),
        json_native=False,
        stored_as_text=True,
    ),
    "date": TypeSpec(
        parse=_date,
        quick=(ISO_DATE, date.fromisoformat),
        sql="DATE",
        text=date.isoformat,
        examples=lambda field: (date(2024, 1, 15), date(2024, 2, 29), date(2024, 12, 31)),
        strategy=lambda st, field, text: st.dates(EARLIEST.date(), LATEST.date()),
        json_native=False,
        options=frozenset({"format"}),
    ),
    "datetime": TypeSpec(
        parse=_datetime,
        quick=(QUICK_DATETIME, datetime.fromisoformat),
        sql="TIMESTAMP",
        text=datetime.isoformat,
        examples=lambda field: (
            datetime(2024, 1, 15, 9, 30),
            datetime(2024, 2, 29, 13, 5, 10),
            datetime(2024, 12, 31, 23, 59, 59),
        ),
        strategy=lambda st, field, text: st.datetimes(EARLIEST, LATEST).map(lambda d: d.replace(microsecond=0)),
        json_native=False,
        options=frozenset({"format"}),
    ),
    "boolean": TypeSpec(
        parse=_boolean,
        sql="BOOLEAN",
        text=_boolean_text,
        examples=lambda field: (True, False, True),
        strategy=lambda st, field, text: st.booleans(),
    ),
    "enum": TypeSpec(
        parse=_enum,
        sql="VARCHAR",
        text=str,
        examples=lambda field: field.values or (),
        strategy=lambda st, field, text: st.sampled_from(field.values or ("",)),
        options=frozenset({"values"}),
        needs=frozenset({"values"}),
    ),
}


def to_text(field: ContractField, value: Value) -> str:
    """A typed value in its type's one text form, '' when empty: what CSV and XML files and exports hold."""
    return "" if value is None else FIELD_TYPES[field.type].text(value)


def to_json(field: ContractField, value: Value) -> JsonValue:
    """A typed value as JSON-native data: decimals as exact strings, dates and times ISO, None when empty."""
    if value is None:
        return None
    spec = FIELD_TYPES[field.type]
    return cast(JsonValue, value) if spec.json_native else spec.text(value)


def strategy(field: ContractField, text: SearchStrategy[str]) -> SearchStrategy[Value]:
    """Hypothesis strategy of a field's valid values as parsed (None too unless required).

    `text` is the free text the file format and encoding can carry."""
    from hypothesis import strategies as st

    values: SearchStrategy[Value] = FIELD_TYPES[field.type].strategy(st, field, text)
    return values if field.required else st.none() | values
