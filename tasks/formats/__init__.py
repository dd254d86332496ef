"""File formats as plug-ins: one module per format, listed in one registry (FORMATS).

A module reads bytes into a table of strings with source line numbers (or raises FileRejected), and,
for the formats samples are made in, writes typed contacts. Its registry line says what the format
goes by: extensions, the signature its content starts with, positional or named columns. Detection
needs no module: a module is imported on first use (openpyxl/calamine are not needed to read a CSV).
The content decides where the extension lies (an .xls that is really an XLSX zip or a CSV text
export, an .xlsx that is a legacy workbook). Compressed and encrypted uploads (`.gz`, `.zip`, `.pgp`,
`.gpg`, `.asc`: COMPRESSIONS, ENCRYPTIONS) are unwrapped first (tasks/formats/unwrap.py); the file
inside is detected as a plain upload."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Protocol, cast

from tasks.errors import FileRejected, RejectCode, RowError

if TYPE_CHECKING:  # pydantic is not imported by what only lists the formats (the CLI's --help)
    from schemas.contract import Contract
    from schemas.samples import Record
    from tasks.formats.pgp import PgpKey

ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


CHUNK_ROWS = 10_000  # rows a table keeps as row lists before they join its columns
REPEATED = 0.5  # a column is deduplicated while its distinct texts are at most this share of its cells


@dataclass
class RawTable:
    """A file as read: header and cells as text ('' for empty), with the source line of each row.

    A reader adds its rows one by one (`add`), each as wide as the others; the table keeps them by
    column, joined a chunk at a time: a large file's row lists never all exist at once (150,000 rows
    made 23 MB of them, and the holes they left in the interpreter's memory stayed for the write).
    Equal cells of a column that repeats (a country, a date, a segment) share one str object: 150,000
    rows take 75 MB less, and factorize compares shared objects by identity. A column mostly of
    distinct texts (emails, timestamps) is deduplicated no further once a chunk shows it: its look-ups
    would cost a third of a large CSV's read and save nothing."""

    file: str
    format: str  # the FileFormat's name
    header: list[str]  # as found (BOM stripped); for named columns the names seen inside the records
    lines: list[int] = field(default_factory=list)  # the source line of each row
    encoding: str | None = None
    delimiter: str | None = None
    row_errors: list[RowError] = field(default_factory=list)  # structural: the line alone is rejected
    warnings: list[str] = field(default_factory=list)
    unwrapped: tuple[str, ...] = ()  # the wrappers taken off the upload, outermost first: ("pgp", "gzip")
    _columns: list[list[str]] = field(default_factory=list, repr=False)
    _pending: list[list[str]] = field(default_factory=list, repr=False)
    _distinct: list[dict[str, str] | None] = field(default_factory=list, repr=False)  # None: not deduplicated

    @property
    def described_format(self) -> str:
        """The format as the ledger records it: `csv`, or with what was unwrapped, `csv (pgp, gzip)`."""
        return f"{self.format} ({', '.join(self.unwrapped)})" if self.unwrapped else self.format

    def add(self, row: list[str], line: int) -> None:
        """A row of cells read from the source line `line`."""
        self._pending.append(row)
        self.lines.append(line)
        if len(self._pending) >= CHUNK_ROWS:
            self._join_pending()

    def _join_pending(self) -> None:
        if not self._pending:
            return
        if not self._columns:
            self._columns = [[] for _ in self._pending[0]]
            self._distinct = [{} for _ in self._pending[0]]
        for index, cells in enumerate(zip(*self._pending, strict=True)):
            column, distinct = self._columns[index], self._distinct[index]
            if distinct is None:
                column.extend(cells)
                continue
            column.extend(map(distinct.setdefault, cells, cells))
            if len(distinct) > REPEATED * len(column):
                self._distinct[index] = None
        self._pending.clear()

    @property
    def rows(self) -> list[list[str]]:
        """The rows as lists of cells: a copy, made for a small file (erasure, tests)."""
        self._join_pending()
        if not self._columns:
            return [[] for _ in self.lines]
        return [list(row) for row in zip(*self._columns, strict=True)]

    def take_columns(self) -> list[list[str]]:
        """The cells by column, handed over (the table holds none after); [] when no row has a cell."""
        self._join_pending()
        columns, self._columns, self._distinct = self._columns, [], []
        return columns


@dataclass(frozen=True)
class ReadOptions:
    """What a reader takes from the client's contract."""

    delimiter: str


class Plugin(Protocol):
    """What a format's module provides (`write` only when its FileFormat `writes`)."""

    def read(self, name: str, data: bytes, options: ReadOptions, /) -> RawTable: ...

    def write(self, contract: Contract, records: list[Record], encoding: str, /) -> bytes: ...


@dataclass(frozen=True)
class FileFormat:
    """One accepted format: what it goes by, and the module that reads (and writes) it."""

    name: str  # RawTable.format, the ledger's format, `sample --format`
    extensions: tuple[str, ...]  # lower case, with the dot
    module: str  # implements Plugin; imported on first use
    magic: bytes = b""  # the signature its content starts with; b"" for text formats
    named_columns: bool = False  # values named by the fields' xml names; else positional under a header row
    delimited: bool = False  # split by the contract's CSV delimiter
    encodings: tuple[str, ...] = ()  # text encodings it is read and written in; () when the file declares its own
    writes: bool = True  # has a writer (samples, tests); nothing writes .xls

    def plugin(self) -> Plugin:
        """The format's module, imported now if it was not yet."""
        return cast(Plugin, importlib.import_module(self.module))

    def read(self, name: str, data: bytes, options: ReadOptions) -> RawTable:
        """A file of this format as a table (FileRejected when it cannot be read at all)."""
        return self.plugin().read(name, data, options)

    def write(self, contract: Contract, records: list[Record], encoding: str) -> bytes:
        """Typed contacts as a file of this format (`encoding` for the formats that take one)."""
        if not self.writes:
            raise ValueError(f"{self.name.upper()} files cannot be written")
        return self.plugin().write(contract, records, encoding)


FORMATS: tuple[FileFormat, ...] = (
    FileFormat(
        "csv",
        (".csv",),
        "tasks.formats.csv",
        delimited=True,
        encodings=("utf-8", "utf-8-sig", "utf-16", "cp1252"),
    ),
    FileFormat("xls", (".xls",), "tasks.formats.xls", magic=OLE_MAGIC, writes=False),
    FileFormat("xlsx", (".xlsx",), "tasks.formats.xlsx", magic=ZIP_MAGIC),
    FileFormat("xml", (".xml",), "tasks.formats.xml", named_columns=True),
)
TEXT_EXPORT = "csv"  # what a file named as a binary format, without its signature, is read as
# what an upload may be wrapped in, by the extension that says so: at most one encryption (last)
# around at most one compression; a .zip holds one file and names it inside
PGP = "pgp"
ENCRYPTIONS = {".pgp": PGP, ".gpg": PGP, ".asc": PGP}
COMPRESSIONS = {".gz": "gzip", ".zip": "zip"}


def get(name: str) -> FileFormat:
    """The format of that name."""
    return next(f for f in FORMATS if f.name == name)


def extensions() -> tuple[str, ...]:
    """The accepted extensions, in registry order."""
    return tuple(ext for f in FORMATS for ext in f.extensions)


def writable() -> tuple[str, ...]:
    """The names of the formats that have a writer."""
    return tuple(f.name for f in FORMATS if f.writes)


def wrappers(name: str) -> tuple[str, tuple[str, ...]]:
    """The name inside the wrappers its extensions announce, and those wrappers, outermost first.

    `contacts.csv.gz.gpg` -> (`contacts.csv`, ("pgp", "gzip")); `contacts.zip` -> (`contacts`, ("zip",))."""
    inner, found = PurePosixPath(name), []
    for layer in (ENCRYPTIONS, COMPRESSIONS):
        if inner.suffix.lower() in layer:
            found.append(layer[inner.suffix.lower()])
            inner = inner.with_suffix("")
    return inner.name, tuple(found)


def accepts(name: str) -> bool:
    """True when the import reads a file of that name: an accepted format, maybe compressed and/or encrypted."""
    inner, found = wrappers(name)
    return found[-1:] == ("zip",) or by_extension(inner) is not None


def wrapped_text() -> str:
    """How an accepted file may be wrapped, for the messages that list the accepted names."""
    example = extensions()[0]
    return (
        f"each also gzip-compressed ({example}.gz) or alone in a .zip, "
        f"and/or PGP-encrypted ({', '.join(ENCRYPTIONS)} at the end: {example}.gz.gpg)"
    )


def by_extension(name: str) -> FileFormat | None:
    """The format a file's extension names (case-insensitive), None when it is not accepted."""
    ext = PurePosixPath(name).suffix.lower()
    return next((f for f in FORMATS if ext in f.extensions), None)


def detect_format(name: str, data: bytes) -> FileFormat:
    """The format to read `data` as: the content's signature where it has one, else the extension's."""
    named = by_extension(name)
    if named is None:
        ext, accepted = PurePosixPath(name).suffix.lower(), extensions()
        listed = ", ".join(accepted[:-1]) + " or " + accepted[-1]
        raise FileRejected(
            RejectCode.EXTENSION, name, f"'{ext or name}' files are not accepted: send {listed}, {wrapped_text()}."
        )
    for candidate in FORMATS:
        if candidate.magic and data.startswith(candidate.magic):
            return candidate  # an OLE container is a legacy workbook or an encrypted XLSX: the xls reader tells
    return get(TEXT_EXPORT) if named.magic else named


def read_bytes(name: str, data: bytes, contract: Contract, pgp: PgpKey | None = None) -> RawTable:
    """Read a file's bytes: unwrapped (with the platform's key `pgp` for encrypted ones), then with the
    reader the inner file's format calls for. Messages name the uploaded file."""
    from tasks.formats.unwrap import unwrap  # gzip, zipfile and gpg only for the files that need them

    inner = unwrap(name, data, pgp, contract.pgp_public_key)
    fmt = detect_format(inner.name, inner.data)
    table = fmt.read(name, inner.data, ReadOptions(delimiter=contract.csv.delimiter))
    table.unwrapped = inner.layers
    if fmt is not by_extension(inner.name):
        ext, shown = PurePosixPath(inner.name).suffix.lower(), fmt.name.upper()
        table.warnings.append(f"The file is named {ext} but its content is {shown}; it was read as {shown}.")
    return table
