"""XML, `<contacts><contact><field>…</field>…</contact>…</contacts>`: read with the stdlib's expat, written as text.

A DOCTYPE is refused before its internal subset is read, and so is any entity declaration, so
billion-laughs, quadratic blow-up and external entities (XXE) are rejected, never expanded or
fetched. The parser's handlers build the rows as the elements stream by (no dict per record, as
xmltodict made: 4x slower); each record's line is the line of its <contact> start tag."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from xml.parsers import expat
from xml.sax.saxutils import escape

from schemas.contract import Contract
from schemas.field_types import to_text
from schemas.samples import Record
from tasks.errors import FileRejected, RejectCode, RowError
from tasks.formats import RawTable, ReadOptions

ROOT, RECORD = "contacts", "contact"
CARRIAGE_RETURN = {"\r": "&#13;"}  # a raw CR would be read back as a line feed (XML end-of-line handling)
DECLARED_ENCODING = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


class DoctypeRefused(Exception):
    """A DOCTYPE was found: DTDs can declare entities, so none is accepted."""


class EntityRefused(Exception):
    """An entity declaration was found."""


@dataclass
class _Record:
    """One element under the root as parsed: its name, line, and per field element (by first appearance)
    how many times it appeared, whether it held elements, and its text."""

    name: str
    line: int
    fields: dict[str, tuple[int, bool, str]] = field(default_factory=dict)


class _Collector:
    """expat handlers: the root's name and the records under it (depth 1: root, 2: record, 3: field)."""

    def __init__(self, parser: expat.XMLParserType) -> None:
        self.parser = parser
        self.root: str | None = None
        self.records: list[_Record] = []
        self.depth = 0
        self.field_name = ""
        self.text: list[str] = []
        self.nested = False

    def start(self, name: str, _attrs: object) -> None:
        self.depth += 1
        if self.depth == 3:
            self.field_name, self.text, self.nested = name, [], False
        elif self.depth > 3:
            self.nested = True
        elif self.depth == 2:
            self.records.append(_Record(name, self.parser.CurrentLineNumber))
        else:
            self.root = name

    def end(self, _name: str) -> None:
        if self.depth == 3:
            fields = self.records[-1].fields
            seen = fields.get(self.field_name)
            text = "".join(self.text)
            if seen is None:
                fields[self.field_name] = (1, self.nested, text)
            else:
                fields[self.field_name] = (seen[0] + 1, seen[1] or self.nested, text)
        self.depth -= 1

    def characters(self, data: str) -> None:
        if self.depth == 3:
            self.text.append(data)


def _refuse(error: type[Exception]) -> Callable[..., None]:
    """An expat handler that stops the parse with `error` (on a DOCTYPE or an entity declaration)."""

    def handler(*_args: object) -> None:
        raise error

    return handler


def _parse(data: bytes) -> _Collector:
    """Parse the document with DTDs and entity declarations refused."""
    parser = expat.ParserCreate()
    collector = _Collector(parser)
    parser.buffer_text = True
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse(DoctypeRefused)
    parser.EntityDeclHandler = _refuse(EntityRefused)
    parser.StartElementHandler = collector.start
    parser.EndElementHandler = collector.end
    parser.CharacterDataHandler = collector.characters
    parser.Parse(data, True)
    return collector


def read(name: str, data: bytes, options: ReadOptions) -> RawTable:
    """Read the records; names are checked later against the contract (validate), values kept as text."""
    try:
        parsed = _parse(data)
    except DoctypeRefused:
        raise FileRejected(
            RejectCode.UNSAFE, name, "The XML has a DOCTYPE declaration; DTDs and entities are not accepted. Remove it."
        ) from None
    except EntityRefused:
        raise FileRejected(
            RejectCode.UNSAFE, name, "The XML declares entities, which are not accepted. Remove them."
        ) from None
    except expat.ExpatError as exc:
        raise FileRejected(
            RejectCode.CORRUPT, name, f"The XML is not well-formed: {expat.ErrorString(exc.code)} at line {exc.lineno}."
        ) from None
    if parsed.root != ROOT:
        raise FileRejected(RejectCode.XML_NAMES, name, f"The root element is <{parsed.root}>; it must be <{ROOT}>.")
    return _table(name, data, parsed.records)


def _table(name: str, data: bytes, records: list[_Record]) -> RawTable:
    """Records to rows over the union of element names seen, in order of first appearance."""
    match = DECLARED_ENCODING.match(data.removeprefix(b"\xef\xbb\xbf"))
    encoding = (
        match.group(1).decode().lower() if match else "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    )
    table = RawTable(file=name, format="xml", header=[], encoding=encoding)
    for record in records:
        if record.name != RECORD:
            raise FileRejected(
                RejectCode.XML_NAMES,
                name,
                f"<{ROOT}> holds a <{record.name}> element; only <{RECORD}> elements are allowed.",
            )
    names: dict[str, None] = {}
    values: list[dict[str, tuple[int, bool, str]]] = []
    for record in records:
        names.update(dict.fromkeys(record.fields))
        problems = [
            RowError(record.line, key, f"<{key}> appears {count} times in one contact.")
            if count > 1
            else RowError(record.line, key, f"<{key}> holds elements; it must hold text only.")
            for key, (count, nested, _) in record.fields.items()
            if count > 1 or nested
        ]
        if problems:
            table.row_errors.extend(problems)
        else:
            values.append(record.fields)
            table.lines.append(record.line)
    table.header = list(names)
    empty = (1, False, "")
    table.rows = [[fields.get(n, empty)[2] for n in table.header] for fields in values]
    return table


def write(contract: Contract, records: list[Record], encoding: str) -> bytes:
    """Typed contacts as UTF-8 XML, one element per field named by its xml name (the file declares UTF-8)."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>\n<contacts>\n']
    for record in records:
        parts.append("  <contact>\n")
        for f in contract.fields:
            text = escape(to_text(f, record.get(f.id)), CARRIAGE_RETURN)
            parts.append(f"    <{f.id}>{text}</{f.id}>\n" if text else f"    <{f.id}/>\n")
        parts.append("  </contact>\n")
    parts.append("</contacts>\n")
    return "".join(parts).encode("utf-8")
