"""CSV on the stdlib `csv` module: the reader, and the writer of samples.

pandas, pyarrow, polars and DuckDB refuse a whole file when one line has too many fields; our rule
rejects that line only, and row errors need the physical line where each record starts (embedded
newlines counted). `csv.reader` gives both, per record, and reads 5,000 rows in a few milliseconds. The
bytes are decoded once whole to pick and check the encoding, then streamed to the reader."""

from __future__ import annotations

import csv
import io

from schemas.contract import Contract
from schemas.field_types import to_text
from schemas.samples import Record
from tasks.errors import FileRejected, RejectCode, RowError
from tasks.formats import RawTable, ReadOptions

BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
csv.field_size_limit(10 * 1024 * 1024)  # one field may be long (notes); the file size is capped anyway


def decode(name: str, data: bytes) -> tuple[str, str]:
    """The text and its encoding: a BOM (UTF-8, UTF-16 LE/BE) decides, else strict UTF-8, else cp1252."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                raise FileRejected(
                    RejectCode.ENCODING,
                    name,
                    f"The file starts with a {encoding.upper()} mark but is not valid {encoding.upper()}.",
                ) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError as exc:
        raise FileRejected(
            RejectCode.ENCODING,
            name,
            f"The file is neither UTF-8 nor Windows-1252 text (byte {exc.start + 1} cannot be read). "
            "Save it as CSV UTF-8.",
        ) from None


def read(name: str, data: bytes, options: ReadOptions) -> RawTable:
    """Read a CSV with the contract's delimiter; a record with the wrong number of fields is a row error."""
    text, encoding = decode(name, data)
    if "\x00" in text:
        raise FileRejected(
            RejectCode.ENCODING,
            name,
            "The file holds NUL characters (UTF-16 without a byte-order mark?). Save it as CSV UTF-8.",
        )
    del text  # read again as a stream: a StringIO would hold a copy of 4 bytes per character
    delimiter = options.delimiter
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline=""), delimiter=delimiter)
    table = RawTable(file=name, format="csv", header=[], encoding=encoding, delimiter=delimiter)
    header: list[str] | None = None
    last_line = 0
    try:
        for record in reader:
            start, last_line = last_line + 1, reader.line_num
            if not record or (len(record) == 1 and not record[0].strip()):
                continue  # blank line
            if header is None:
                header = record
                continue
            if len(record) != len(header):
                kind = "many" if len(record) > len(header) else "few"
                table.row_errors.append(
                    RowError(
                        start,
                        "",
                        f"Too {kind} fields: {len(record)} instead of {len(header)} "
                        f"(check the quotes and '{delimiter}').",
                    )
                )
            else:
                table.add(record, start)
    except csv.Error as exc:
        raise FileRejected(RejectCode.CORRUPT, name, f"The CSV cannot be read after line {last_line}: {exc}.") from None
    table.header = header or []
    return table


def write(contract: Contract, records: list[Record], encoding: str) -> bytes:
    """Typed contacts under a header of the contract's field names, with its delimiter, in `encoding`."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=contract.csv.delimiter, lineterminator="\r\n")
    writer.writerow([f.name for f in contract.fields])
    writer.writerows([to_text(f, r.get(f.id)) for f in contract.fields] for r in records)
    return out.getvalue().encode(encoding)


def without_records(text: str, delimiter: str, starts: set[int]) -> str:
    """The CSV text without the records starting on those lines (as `read` numbers them), every other
    character kept as it was: the erasure's rewrite of a staged file."""
    lines = list(io.StringIO(text, newline=""))  # physical lines, endings kept, split as csv counts them
    reader = csv.reader(iter(lines), delimiter=delimiter)
    kept: list[str] = []
    last_line = 0
    for _ in reader:
        start, last_line = last_line + 1, reader.line_num
        if start not in starts:
            kept.extend(lines[start - 1 : last_line])
    return "".join(kept)
