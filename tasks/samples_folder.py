"""The `samples/` folder in each client's SFTP folder: the client's sample files, made from its contract
as `sftp-import sample` makes them, and README.txt with the rules a file must follow.

The sync writes the folder when the contract differs from the one it was last written from (the
store keeps that contract's digest), so a new or changed contract reaches the folder at the next
pass. A write that fails is logged and tried again at the next pass; it never fails the sync."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable

from schemas.contract import Contract, ContractField
from schemas.field_types import human_format
from schemas.samples import write_sample
from tasks import formats
from tasks.results import FOLDER as RESULTS_FOLDER
from tasks.sftp import Sftp

log = logging.getLogger(__name__)

FOLDER = "samples"
README = "README.txt"
LAYOUT = 1  # raise when what the folder holds changes: every client's folder is written again
TYPE_RULES: dict[str, Callable[[ContractField], str]] = {  # a field's type in words; others by their name
    "string": lambda f: "text",
    "email": lambda f: "an email address",
    "integer": lambda f: "a whole number",
    "decimal": lambda f: "a number, with a dot for decimals (1234.50)",
    "date": lambda f: "a date, " + (f"{human_format(f.format)} or " if f.format else "") + "YYYY-MM-DD",
    "datetime": lambda f: (
        "a date and time, " + (f"{human_format(f.format)} or " if f.format else "") + "YYYY-MM-DDThh:mm:ss"
    ),
    "boolean": lambda f: "yes or no: true/false, yes/no, y/n or 1/0",
    "enum": lambda f: "one of: " + ", ".join(f.values or ()),
}
ENCODINGS = {"utf-8": "UTF-8", "utf-8-sig": "UTF-8 with a BOM", "utf-16": "UTF-16", "cp1252": "Windows-1252"}
SEPARATORS = {",": "a comma (,)", ";": "a semicolon (;)"}


def digest(contract: Contract) -> str:
    """What the folder is written from: the contract (every setting of it) and the folder's layout."""
    return hashlib.sha256(f"{LAYOUT}\n{contract.model_dump_json()}".encode()).hexdigest()


def is_current(contract: Contract, written_from: str | None) -> bool:
    """Whether the samples folder written from `written_from` (the stored digest) follows this contract."""
    return digest(contract) == written_from


def sample_name(contract: Contract, fmt: str) -> str:
    """A sample's file name, as `sftp-import sample` names it: `<client>-sample.<format>`."""
    return f"{contract.id}-sample.{fmt}"


def field_rule(field: ContractField) -> str:
    """`Purchase Date <purchase_date>: a date, DD/MM/YYYY or YYYY-MM-DD`, `, required` when it is."""
    rule = TYPE_RULES[field.type](field) if field.type in TYPE_RULES else field.type
    return f"{field.name} <{field.id}>: {rule}{', required' if field.required else ''}"


def readme(contract: Contract) -> str:
    """The rules of the client's files in plain words: fields in order with their types, the CSV
    separator and encodings, the row limit, the daily import time and where results appear."""
    samples = ", ".join(sample_name(contract, fmt) for fmt in formats.writable())
    *others, last = (f.name.upper() for f in formats.FORMATS)
    email = contract.email_field.id
    csv = next(f for f in formats.FORMATS if f.delimited)
    also = ", ".join(ENCODINGS.get(e, e) for e in csv.encodings[1:])
    lines = [
        f"{contract.name} ({contract.id}): how to send contact lists",
        "",
        f"Upload each list into the folder above this one, under a new name each time, as {', '.join(others)}"
        f" or {last}; accepted too: {formats.wrapped_text()}.",
        f"The samples in this folder are made from your contract: {samples}.",
        "",
        "Fields, in this order (the header row of CSV and Excel files; <element> names in XML):",
        *(f"  {n}. {field_rule(f)}" for n, f in enumerate(contract.fields, start=1)),
        "",
        f"{csv.name.upper()}: values separated by {SEPARATORS.get(contract.csv.delimiter, contract.csv.delimiter)}."
        f" Save as {ENCODINGS.get(csv.encodings[0], csv.encodings[0])}; also read: {also}.",
        f"XML: <contacts><contact><{email}>...</{email}>...</contact></contacts>, element names as above.",
        f"At most {contract.max_rows:,} contact rows per file: split longer lists. A file with the header"
        " and no rows is fine (a day with no new contacts).",
        "",
        f"Daily import: {contract.import_time} {contract.timezone}. Files received before it are imported"
        " then; files received after it, at the next day's import.",
        f"Each upload gets its result in {RESULTS_FOLDER}/<name>.json, and the rows rejected from an imported"
        f" file in {RESULTS_FOLDER}/<name>.errors.csv.",
    ]
    return "\n".join(lines) + "\n"


def folder_files(contract: Contract) -> dict[str, bytes]:
    """The samples folder's files by their path in the client's folder."""
    files = {f"{FOLDER}/{sample_name(contract, fmt)}": write_sample(contract, fmt) for fmt in formats.writable()}
    files[f"{FOLDER}/{README}"] = readme(contract).encode("utf-8")
    return files


def refresh(connection: Sftp, contract: Contract, written_from: str | None) -> str | None:
    """Write the client's samples folder unless it follows this contract already (`written_from`, the
    stored digest); the digest written, or None when nothing was written (up to date, or it failed)."""
    if is_current(contract, written_from):
        return None
    try:
        for path, data in folder_files(contract).items():
            connection.write_atomic(contract.directory, path, data)
    except Exception as exc:  # the next pass tries again
        log.warning("%s: samples folder not written, tried again at the next sync: %s", contract.id, exc)
        return None
    return digest(contract)
