"""XML, `<contacts><contact><field>…</field>…</contact>…</contacts>`: read with xmltodict, written as text.

Entities are disabled (xmltodict rejects entity declarations) and any DOCTYPE is refused before
its internal subset is read, so billion-laughs, quadratic blow-up and external entities (XXE) are
rejected, never expanded or fetched. Fields are streamed (item_depth=3: xmltodict builds no dict of a
record); each record's line is the line of its <contact> start tag, taken from the expat parser as
the tag is opened."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat
from xml.sax.saxutils import escape

import xmltodict

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


@dataclass
class _Trace:
    """What the parser saw: the root element's name, and per element inside it (a record) its name, its
    line and its fields by name (a field's text; None when empty; a dict when it holds elements; a
    list of those when it appears more than once)."""

    root: str | None = None
    names: list[str] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def add_field(self, path: list[tuple[str, Any]], item: Any) -> bool:
        """xmltodict's item callback, for each element inside a record: kept in the record it is in."""
        record, key = self.records[-1], path[2][0]
        if key not in record:
            record[key] = item
        else:
            seen = record[key]
            record[key] = [*seen, item] if isinstance(seen, list) else [seen, item]
        return True


class _LineTrackingParser:
    """An expat parser that refuses DOCTYPEs and records the root's name and each record's line."""

    def __init__(self, parser: Any, trace: _Trace) -> None:
        object.__setattr__(self, "_parser", parser)
        object.__setattr__(self, "_trace", trace)
        parser.StartDoctypeDeclHandler = self._refuse_doctype
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)

    @staticmethod
    def _refuse_doctype(*_args: object) -> None:
        raise DoctypeRefused

    def __getattr__(self, name: str) -> Any:
        return getattr(self._parser, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "StartElementHandler":
            value = self._on_start(value)
        setattr(self._parser, name, value)

    def _on_start(self, handler: Callable[..., None]) -> Callable[..., None]:
        """xmltodict's start handler, after noting the root's name and each record's line. The elements
        open are xmltodict's own `path` (the one it hands the item callback): no handler of ours per end."""
        open_elements, trace, parser = handler.__self__.path, self._trace, self._parser  # type: ignore[attr-defined]

        def start(name: str, attrs: Any) -> None:
            depth = len(open_elements)
            if depth == 1:
                trace.names.append(name)
                trace.lines.append(parser.CurrentLineNumber)
                trace.records.append({})
            elif depth == 0:
                trace.root = name
            handler(name, attrs)

        return start


class _Expat:
    """The `expat` module as xmltodict calls it, handing out line-tracking parsers."""

    def __init__(self, trace: _Trace) -> None:
        self.trace = trace

    def ParserCreate(self, encoding: str | None = None, namespace_separator: str | None = None) -> _LineTrackingParser:
        return _LineTrackingParser(expat.ParserCreate(encoding, namespace_separator), self.trace)


def read(name: str, data: bytes, options: ReadOptions) -> RawTable:
    """Read the records; names are checked later against the contract (validate), values kept as text."""
    trace = _Trace()
    try:
        xmltodict.parse(
            data,
            expat=_Expat(trace),
            disable_entities=True,
            xml_attribs=False,
            strip_whitespace=False,
            item_depth=3,  # each field handed over as it ends: no dict of a record built, then read again
            item_callback=trace.add_field,
        )
    except DoctypeRefused:
        raise FileRejected(
            RejectCode.UNSAFE, name, "The XML has a DOCTYPE declaration; DTDs and entities are not accepted. Remove it."
        ) from None
    except ValueError:  # xmltodict's refusal of an entity declaration
        raise FileRejected(
            RejectCode.UNSAFE, name, "The XML declares entities, which are not accepted. Remove them."
        ) from None
    except expat.ExpatError as exc:
        raise FileRejected(
            RejectCode.CORRUPT, name, f"The XML is not well-formed: {expat.ErrorString(exc.code)} at line {exc.lineno}."
        ) from None
    if trace.root != ROOT:
        raise FileRejected(RejectCode.XML_NAMES, name, f"The root element is <{trace.root}>; it must be <{ROOT}>.")
    return _table(name, data, trace)


def _table(name: str, data: bytes, trace: _Trace) -> RawTable:
    """Records to rows over the union of element names seen, in order of first appearance."""
    match = DECLARED_ENCODING.match(data.removeprefix(b"\xef\xbb\xbf"))
    encoding = (
        match.group(1).decode().lower() if match else "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8"
    )
    table = RawTable(file=name, format="xml", header=[], encoding=encoding)
    for record_name in trace.names:
        if record_name != RECORD:
            raise FileRejected(
                RejectCode.XML_NAMES,
                name,
                f"<{ROOT}> holds a <{record_name}> element; only <{RECORD}> elements are allowed.",
            )
    names: dict[str, None] = {}
    kept: list[tuple[dict[str, str | None], int]] = []
    for fields, line in zip(trace.records, trace.lines, strict=True):
        names.update(dict.fromkeys(fields))
        nested = [
            _nested(key, value, line)
            for key, value in fields.items()
            if value is not None and not isinstance(value, str)
        ]
        if nested:
            table.row_errors.extend(nested)
            continue
        kept.append((fields, line))
    table.header = list(names)
    for fields, line in kept:
        table.add([fields.get(n) or "" for n in table.header], line)
    return table


def _nested(key: str, value: list[Any] | dict[str, Any], line: int) -> RowError:
    """The row error of a field element that does not hold text alone: repeated, or holding elements."""
    if isinstance(value, list):
        return RowError(line, key, f"<{key}> appears {len(value)} times in one contact.")
    return RowError(line, key, f"<{key}> holds elements; it must hold text only.")


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
