"""Turn a received file into typed contact rows plus the precise list of what was wrong.

Whole-file problems raise FileRejected with a message the client can act on; row problems are
collected (all at once: pandera lazy validation) and only the rows without any error are kept."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.errors

from schemas.contacts import REQUIRED_CHECK, ColumnParser, build_schema
from schemas.contract import Contract, ContractField
from tasks import formats
from tasks.errors import FileRejected, RejectCode, RowError
from tasks.formats import RawTable, read_bytes
from tasks.formats.pgp import PgpKey

SEPARATORS = {",": "comma", ";": "semicolon"}


@dataclass
class ParsedFile:
    """A file read and validated: the valid rows typed as the store takes them (a decimal as its exact
    text; columns = xml names + `_line`), and the rest."""

    file: str
    format: str
    encoding: str | None
    delimiter: str | None
    rows: pd.DataFrame
    rows_read: int
    columns: list[str]  # the header's names, or the element names seen (XML): all the contract's, checked
    errors: list[RowError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _megabytes(size: int) -> str:
    """A size as a client reads it: MB from 1 MB on, bytes below."""
    return f"{size / 1024 / 1024:.1f} MB" if size >= 1024 * 1024 else f"{size:,} bytes"


def check_size(name: str, size: int, max_bytes: int, warn_bytes: int) -> list[str]:
    """Reject an oversized file; warn about one over the recommended size (an empty one is rejected later)."""
    if size > max_bytes:
        raise FileRejected(
            RejectCode.TOO_LARGE,
            name,
            f"The file is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}. Split it into smaller files.",
        )
    if size > warn_bytes:
        return [f"The file is {_megabytes(size)}; please keep files under {_megabytes(warn_bytes)}."]
    return []


def _separator_hint(table: RawTable, contract: Contract) -> str:
    """A hint when a CSV looks separated by the other separator than the contract's."""
    expected = contract.csv.delimiter
    if not formats.get(table.format).delimited or len(table.header) >= len(contract.fields):
        return ""
    for other, word in SEPARATORS.items():
        if other != expected and len(other.join(table.header).split(other)) >= len(contract.fields):
            return (
                f" The file looks {word}-separated ('{other}'), but this contract expects "
                f"{SEPARATORS[expected]}-separated values ('{expected}'): save it with '{expected}' as the separator."
            )
    return ""


def _columns(count: int) -> str:
    return f"{count} column" if count == 1 else f"{count} columns"


def _found(name: str) -> str:
    """A header cell quoted for a message; one with an '@' is a contact's email (no header row), never repeated."""
    return "an email address (is the header row missing?)" if "@" in name else f"'{name}'"


def check_header(table: RawTable, contract: Contract) -> None:
    """Positional columns (CSV, XLS(X)): the header lists the contract's field names in order; name the first miss."""
    found = [h.strip() for h in table.header]
    expected = [f.name for f in contract.fields]
    if found == expected:
        return
    order = " Expected columns, in order: " + ", ".join(expected) + "."
    hint = _separator_hint(table, contract)
    for position, (have, want) in enumerate(zip(found, expected, strict=False), start=1):
        if have != want:
            case = " (names are case-sensitive)" if have.lower() == want.lower() else ""
            problem = f"column {position} is {_found(have)} but the contract expects '{want}'{case}."
            break
    else:
        position = min(len(found), len(expected)) + 1
        if len(found) < len(expected):
            problem = f"column {position} '{expected[position - 1]}' is missing."
        else:
            problem = f"column {position} {_found(found[position - 1])} is not in the contract."
    counts = f" ({_columns(len(found))}, the contract has {len(expected)})" if len(found) != len(expected) else ""
    raise FileRejected(
        RejectCode.HEADER, table.file, f"The header does not match the contract{counts}: {problem}{hint}{order}"
    )


def check_xml_names(table: RawTable, contract: Contract) -> None:
    """Named columns (XML): every element inside <contact> is one of the contract's names, exactly (case-sensitive)."""
    allowed = [f.id for f in contract.fields]
    unknown = [n for n in table.header if n not in allowed]
    if not unknown:
        return
    by_lower = {a.lower(): a for a in allowed}
    shown = [
        f"<{n}> (did you mean <{by_lower[n.lower()]}>? names are case-sensitive)" if n.lower() in by_lower else f"<{n}>"
        for n in unknown
    ]
    raise FileRejected(
        RejectCode.XML_NAMES,
        table.file,
        f"The XML has elements that are not in the contract: {', '.join(shown)}. "
        f"Allowed elements: {', '.join(allowed)}.",
    )


def _key(contract_field: ContractField, named: bool) -> str:
    """What a field goes by in the file: its xml name in named columns, its name in a header."""
    return contract_field.id if named else contract_field.name


def _row_errors(texts: pd.DataFrame, lines: list[int], parser: ColumnParser, named: bool) -> list[RowError]:
    """Every failed check of the text table (pandera, lazy), as row errors with line, field and reason.

    A failed type check's reason is its parser's message, kept by `parser` for that cell."""
    try:
        # in place: the schema coerces nothing, and pandera's copy of the table is 1.8 M cells at 150,000 rows
        build_schema(parser).validate(texts, lazy=True, inplace=True)
    except pandera.errors.SchemaErrors as exc:
        fields = {f.id: f for f in parser.contract.fields}
        errors = []
        for case in exc.failure_cases.itertuples(index=False):
            contract_field, row = fields[str(case.column)], int(case.index)
            shown = _key(contract_field, named)
            if case.check == REQUIRED_CHECK:
                message = f"{shown} is required."
            else:
                message = parser.parsed(contract_field, texts[contract_field.id]).reason(row) or "Invalid value."
            errors.append(RowError(lines[row], shown, message))
        return errors
    return []


def parse_file(
    name: str, data: bytes, contract: Contract, *, max_bytes: int, warn_bytes: int, pgp: PgpKey | None = None
) -> ParsedFile:
    """Read, check and type a file against the client's contract (`pgp`: the platform's key, for encrypted files).

    The two steps in one; a caller that can drop the bytes between them (the importer) calls them itself."""
    with gc_paused():
        return type_rows(read_file(name, data, contract, max_bytes=max_bytes, warn_bytes=warn_bytes, pgp=pgp))


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside: reading a file makes millions of lists and strings (none in a
    cycle), and the collector would walk them all again and again (a third of a large CSV's read time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class CheckedFile:
    """A file read and checked as a whole, its cells not yet typed: what `type_rows` takes."""

    table: RawTable
    contract: Contract
    rows_read: int
    warnings: list[str]


def read_file(
    name: str, data: bytes, contract: Contract, *, max_bytes: int, warn_bytes: int, pgp: PgpKey | None = None
) -> CheckedFile:
    """The file's cells, once the whole file passed its checks (size, empty, header or element names, row limit).

    Nothing it returns holds the bytes: a caller can drop them before the cells are typed (18 MB at 150,000 rows)."""
    warnings = check_size(name, len(data), max_bytes, warn_bytes)
    if not data.strip():
        raise FileRejected(RejectCode.EMPTY, name, "The file is empty.")
    table = read_bytes(name, data, contract, pgp)
    rows_read = len(table.lines) + len({e.line for e in table.row_errors})
    if formats.get(table.format).named_columns:
        check_xml_names(table, contract)  # a root with no <contact>: a day with no new contacts, 0 rows
    else:
        if not table.header:
            raise FileRejected(RejectCode.EMPTY, name, "The file is empty: no header row and no contacts.")
        check_header(table, contract)  # a header and no rows: a day with no new contacts, 0 rows
    if rows_read > contract.max_rows:
        raise FileRejected(
            RejectCode.TOO_MANY_ROWS,
            name,
            f"The file has {rows_read:,} contact rows; the limit is {contract.max_rows:,} per file. "
            "Split it into smaller files.",
        )
    return CheckedFile(table, contract, rows_read, warnings)


def type_rows(checked: CheckedFile) -> ParsedFile:
    """Validate a read file's cells (pandera) and type its valid rows; the cells are handed over, not kept."""
    table, contract = checked.table, checked.contract
    named = formats.get(table.format).named_columns
    keys = table.header if named else [h.strip() for h in table.header]
    columns = dict(zip(keys, table.take_columns(), strict=True)) if table.lines else {}
    names = [f.id for f in contract.fields]
    texts = pd.DataFrame(
        {f.id: columns.get(_key(f, named), [""] * len(table.lines)) for f in contract.fields},
        columns=names,
        dtype=str,
    )
    del columns
    parser = ColumnParser(contract)
    errors = sorted(table.row_errors + _row_errors(texts, table.lines, parser, named), key=lambda e: e.line)
    rejected = {e.line for e in errors}
    keep = None  # every row kept
    if rejected:
        keep = np.array([i for i, line in enumerate(table.lines) if line not in rejected], dtype=np.intp)

    def kept(values: np.ndarray) -> np.ndarray:
        """The valid rows' values: the column itself when every row is valid (no copy: 1 MB a column at 150,000)."""
        return values if keep is None else values[keep]

    fields = contract.fields
    rows = pd.DataFrame(  # the typed columns as they are: no copy, no dtype inferred
        {f.id: pd.Series(kept(parser.parsed(f, texts[f.id]).values), dtype=object, copy=False) for f in fields},
        columns=names,
        copy=False,
    )
    rows["_line"] = pd.Series(kept(np.asarray(table.lines, dtype=np.int64)), dtype="int64")
    return ParsedFile(
        file=table.file,
        format=table.described_format,
        encoding=table.encoding,
        delimiter=table.delimiter,
        rows=rows,
        rows_read=checked.rows_read,
        columns=keys,
        errors=errors,
        warnings=checked.warnings + table.warnings,
    )
