"""The contacts store: typed columns per client, a contract gaining a field, isolation, statistics."""

from __future__ import annotations

import gc
import weakref
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tasks import importer, store
from tasks.settings import load_settings
from tasks.staging import staged_url
from tests.importing import contacts, import_file, ledger, make_contract, stage_bytes, stage_records

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL

ALL_TYPES = [
    {"name": "Email", "xml": "email", "type": "email", "required": True},
    {"name": "Name", "xml": "name", "type": "string"},
    {"name": "Points", "xml": "points", "type": "integer"},
    {"name": "Amount", "xml": "amount", "type": "decimal"},
    {"name": "Born", "xml": "born", "type": "date"},
    {"name": "Seen", "xml": "seen", "type": "datetime"},
    {"name": "Opted In", "xml": "opted_in", "type": "boolean"},
    {"name": "Tier", "xml": "tier", "type": "enum", "values": ["Gold", "Silver"]},
]
ACME = make_contract("acme", ALL_TYPES)
FULL = {
    "email": "a@x.com",
    "name": "007",
    "points": 9_000_000_000,
    "amount": Decimal("123456789012345678901234567.0123456789"),
    "born": date(1901, 2, 3),
    "seen": datetime(2026, 3, 29, 2, 30, 15, 123456),
    "opted_in": False,
    "tier": "Gold",
}


def test_each_type_has_its_own_column_type_and_round_trips(home: Path) -> None:
    settings = load_settings()
    stage_records(settings, ACME, "a.csv", [FULL])
    assert import_file(settings, ACME, "a.csv", "r").status == "imported"
    with settings.store.read() as con:
        types = dict(store.contact_columns(con, "acme").values())
    assert types == {
        "email_key": "VARCHAR",
        "email": "VARCHAR",
        "name": "VARCHAR",
        "points": "BIGINT",
        "amount": "DECIMAL(38,10)",
        "born": "DATE",
        "seen": "TIMESTAMP",
        "opted_in": "BOOLEAN",
        "tier": "VARCHAR",
        "first_file": "VARCHAR",
        "last_file": "VARCHAR",
        "updated_at": "TIMESTAMPTZ",
    }
    assert contacts(settings, ACME) == [FULL]


def test_a_decimal_is_stored_exactly_however_the_file_writes_it(home: Path) -> None:
    """A decimal reaches the store as its text: a sign, leading zeros, a bare point, spaces or 38 digits
    are read exactly by the store's DECIMAL, the same number as the type's parser reads."""
    settings = load_settings()
    amounts = {
        "a@x.com": ("+007.50", Decimal("7.5")),
        "b@x.com": ("-0", Decimal("0")),
        "c@x.com": (".5", Decimal("0.5")),
        "d@x.com": ("5.", Decimal("5")),
        "e@x.com": (" 12.50 ", Decimal("12.5")),
        "f@x.com": ("0000000000000000000000000001.25", Decimal("1.25")),
        "g@x.com": ("-9999999999999999999999999999.9999999999", Decimal("-9999999999999999999999999999.9999999999")),
        "h@x.com": ("00000000000000000000000000000000000042", Decimal("42")),  # 38 digits, 36 of them zeros
    }
    contract = make_contract("acme", [ALL_TYPES[0], ALL_TYPES[3]])
    body = "".join(f'{email},"{text}"\r\n' for email, (text, _) in amounts.items())
    stage_bytes(settings, "acme", "a.csv", ("Email,Amount\r\n" + body).encode())
    assert import_file(settings, contract, "a.csv", "r").status == "imported"
    stored = {c["email"]: c["amount"] for c in contacts(settings, contract)}
    assert stored == {email: value for email, (_, value) in amounts.items()}


def test_a_contract_gaining_a_field_keeps_the_stored_data(home: Path) -> None:
    settings = load_settings()
    before = make_contract("acme", ALL_TYPES[:3])
    stage_records(settings, before, "old.csv", [{"email": "a@x.com", "name": "Ann", "points": 1}])
    import_file(settings, before, "old.csv", "r1")
    after = make_contract("acme", [*ALL_TYPES[:2], {"name": "City", "xml": "city"}])  # points dropped, city added
    stage_records(settings, after, "new.csv", [{"email": "a@x.com", "name": None, "city": "Oslo"}])
    outcome = import_file(settings, after, "new.csv", "r2")
    assert outcome.stats["updated_contacts"] == 1
    assert contacts(settings, after) == [{"email": "a@x.com", "name": "Ann", "city": "Oslo"}]
    assert contacts(settings, before) == [{"email": "a@x.com", "name": "Ann", "points": 1}]  # still stored


def test_a_field_changing_type_is_refused_and_nothing_changes(home: Path) -> None:
    settings = load_settings()
    stage_records(settings, ACME, "a.csv", [FULL])
    import_file(settings, ACME, "a.csv", "r1")
    changed = make_contract("acme", [ALL_TYPES[0], {"name": "Points", "xml": "points", "type": "string"}])
    stage_records(settings, changed, "b.csv", [{"email": "a@x.com", "points": "many"}])
    with pytest.raises(store.ContactsLayoutError, match="points"):
        import_file(settings, changed, "b.csv", "r2")
    assert ledger(settings, "acme")["b.csv"]["status"] == "staged"
    assert contacts(settings, ACME) == [FULL]


def test_clients_are_isolated(home: Path) -> None:
    settings = load_settings()
    other = make_contract("acme-2", ALL_TYPES[:2])
    stage_records(settings, ACME, "same.csv", [FULL])
    stage_records(settings, other, "same.csv", [{"email": "a@x.com", "name": "Other"}])
    import_file(settings, ACME, "same.csv", "r1")
    assert contacts(settings, other) == []
    assert import_file(settings, other, "same.csv", "r2").stats["new_contacts"] == 1
    assert contacts(settings, ACME) == [FULL]
    assert contacts(settings, other) == [{"email": "a@x.com", "name": "Other"}]
    with pytest.raises(ValueError, match="client id"):
        store.contacts_table('acme"; DROP TABLE files; --')


def test_statistics_row_errors_and_a_rejected_file(home: Path) -> None:
    settings = load_settings()
    csv = (
        b"Email,Name,Points,Amount,Born,Seen,Opted In,Tier\n"
        b"a@x.com,Ann,1,,,,,\n"
        b"b@x.com,Bob,lots,,,,,\n"
        b"a@x.com,Ann,1,,,,,\n"
        b"A@x.com,,2,,,,,Gold\n"
        b",Nobody,,,,,,\n"
        b"c@x.com,Cy,,,,,,Bronze\n"
    )
    stage_bytes(settings, "acme", "mixed.csv", csv)
    stage_bytes(settings, "acme", "bad.csv", b"Wrong,Header\nx,y\n")
    outcome = import_file(settings, ACME, "mixed.csv", "r1")
    assert outcome.stats == {
        "rows_read": 6,
        "rows_imported": 3,
        "rows_rejected": 3,
        "duplicates_removed": 1,
        "emails_merged": 1,
        "new_contacts": 1,
        "updated_contacts": 0,
    }
    rejected = import_file(settings, ACME, "bad.csv", "r1")
    assert rejected.status == "rejected" and rejected.reason and "header" in rejected.reason
    files = ledger(settings, "acme")
    assert files["mixed.csv"]["status"] == "imported" and files["mixed.csv"]["rows_rejected"] == 3
    assert files["bad.csv"]["status"] == "rejected" and files["bad.csv"]["reason"] == rejected.reason
    with settings.store.read() as con:
        errors = store.file_errors(con, "acme", "mixed.csv")
        assert [e["line"] for e in errors] == [3, 6, 7]
        assert store.client_errors(con, ["acme"], 2)["acme"]["mixed.csv"] == (errors[:2], 3)
    assert contacts(settings, ACME)[0]["points"] == 2


def test_staged_bytes_that_are_not_the_file_received_are_never_imported(home: Path) -> None:
    settings = load_settings()
    stage_bytes(settings, "acme", "a.csv", b"Email,Name\nada@example.com,Ada\n")
    Path(staged_url(settings.staging_url, "acme", "a.csv")).write_bytes(b"Email,Name\nmallory@example.com,M\n")
    with pytest.raises(importer.StagedCopyChanged, match="not the file received"):
        import_file(settings, ACME, "a.csv", "r1")
    assert ledger(settings, "acme")["a.csv"]["status"] == "staged"
    assert contacts(settings, ACME) == []


def test_a_file_whose_every_row_is_rejected_is_imported_with_its_errors(home: Path) -> None:
    settings = load_settings()
    stage_bytes(settings, "acme", "bad.csv", b"Email,Name,Points,Amount,Born,Seen,Opted In,Tier\nnope,Ann,,,,,,\n")
    outcome = import_file(settings, ACME, "bad.csv", "r1")
    assert (outcome.status, outcome.stats["rows_rejected"], outcome.stats["new_contacts"]) == ("imported", 1, 0)
    assert contacts(settings, ACME) == []


def test_a_files_rows_are_freed_as_soon_as_it_is_committed(home: Path) -> None:
    """A file's typed rows (most of a large import's memory) are held by nothing once its transaction commits:
    not by the next file's merge, the run's close or the store's checkpoint. Reference counting alone frees
    them (the cycle collector is off here): no cycle keeps them until a collection."""
    settings = load_settings()
    header = "Email,Name,Points,Amount,Born,Seen,Opted In,Tier\n"
    stage_bytes(
        settings, "acme", "a.csv", f"{header}ada@example.com,Ada,1,2.5,2000-01-01,,yes,Gold\nnope,,,,,,,\n".encode()
    )
    stage_bytes(settings, "acme", "b.csv", f"{header}bob@example.com,Bob,,,,,,\n".encode())
    prepared = importer.prepare_files(settings, ACME, ["a.csv", "b.csv"])
    rows = [weakref.ref(item.parsed.rows) for item in prepared if item.parsed is not None]
    held: list[list[bool]] = []
    gc.disable()
    try:
        with settings.store.write() as con:
            outcomes = importer.commit_files(
                con, ACME, prepared, "r1", on_commit=lambda _: held.append([ref() is not None for ref in rows])
            )
    finally:
        gc.enable()
    assert [o.status for o in outcomes] == ["imported", "imported"]
    assert held == [[False, True], [False, False]]  # after a.csv's commit only b.csv's rows remain; then none
    assert {c["email"] for c in contacts(settings, ACME)} == {"ada@example.com", "bob@example.com"}
