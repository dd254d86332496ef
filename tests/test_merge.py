"""The merge rule, table-driven: exact duplicates, emails merged (trimmed, case-insensitive), the latest
non-empty value wins and an empty one never erases, within a file, across files and against the store."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tasks import store
from tasks.merge import MergeCounts, email_key
from tasks.settings import load_settings
from tasks.store import Store
from tests.importing import BASE_TIME, contacts, import_file, ledger, make_contract, stage_records

CONTRACT = make_contract(
    "acme",
    [
        {"name": "Email", "xml": "email", "type": "email", "required": True},
        {"name": "Name", "xml": "name"},
        {"name": "City", "xml": "city"},
        {"name": "Amount", "xml": "amount", "type": "decimal"},
    ],
)
Row = tuple[str, str | None, str | None, str | None]


def frame(rows: list[Row]) -> pd.DataFrame:
    """A file's rows as `tasks.validate` hands them to the store: the amount as the file's exact text."""
    data = pd.DataFrame(rows, columns=["email", "name", "city", "amount"]).astype(object)
    data["_line"] = range(2, len(rows) + 2)
    return data


CASES: list[tuple[str, list[Row], dict[str, tuple[str | None, ...]], int, int]] = [
    # id, rows in file order, expected {key: (email, name, city, amount)}, duplicates removed, emails merged
    (
        "distinct",
        [("a@x.com", "Ann", None, None), ("b@x.com", "Bob", None, None)],
        {"a@x.com": ("a@x.com", "Ann", None, None), "b@x.com": ("b@x.com", "Bob", None, None)},
        0,
        0,
    ),
    ("exact duplicates", [("a@x.com", "Ann", "Oslo", "1.5")] * 3, {"a@x.com": ("a@x.com", "Ann", "Oslo", "1.5")}, 2, 0),
    (
        "duplicate after normalising the email and the decimal",
        [("a@x.com", "Ann", None, "1.5"), ("A@X.COM", "Ann", None, "1.50")],
        {"a@x.com": ("A@X.COM", "Ann", None, "1.5")},
        1,
        0,
    ),
    (
        "latest non-empty wins",
        [("a@x.com", "Ann", "Oslo", "1"), ("a@x.com", "Anna", None, "2")],
        {"a@x.com": ("a@x.com", "Anna", "Oslo", "2")},
        0,
        1,
    ),
    (
        "empty never erases",
        [("a@x.com", "Ann", "Oslo", "1"), ("a@x.com", None, None, None)],
        {"a@x.com": ("a@x.com", "Ann", "Oslo", "1")},
        0,
        1,
    ),
    (
        "case and spaces",
        [(" Ann@X.com", "Ann", None, None), ("ann@x.com ", None, "Rome", None), ("ANN@X.COM", None, None, "3")],
        {"ann@x.com": ("ANN@X.COM", "Ann", "Rome", "3")},
        0,
        2,
    ),
    (
        "case beyond ASCII",
        [("ÅSA@x.com", "Åsa", None, None), ("åsa@x.com", None, "Umeå", None)],
        {"åsa@x.com": ("åsa@x.com", "Åsa", "Umeå", None)},
        0,
        1,
    ),
    (
        "a value changed and changed back: the latest wins",
        [("a@x.com", "Ann", None, None), ("a@x.com", "Bob", None, None), ("a@x.com", "Ann", None, None)],
        {"a@x.com": ("a@x.com", "Ann", None, None)},
        1,
        1,
    ),
    (
        "duplicates and merges counted apart",
        [
            ("a@x.com", "A", None, None),
            ("a@x.com", "A", None, None),
            ("a@x.com", "B", None, None),
            ("b@x.com", "C", None, None),
            ("a@x.com", "A", None, None),
        ],
        {"a@x.com": ("a@x.com", "A", None, None), "b@x.com": ("b@x.com", "C", None, None)},
        2,
        1,
    ),
]


def merge_into_store(db: Store, rows: pd.DataFrame, name: str) -> MergeCounts:
    """One file's typed rows merged into the store `db`, in its own transaction."""
    with db.write() as con, store.transaction(con):
        return store.upsert_contacts(con, CONTRACT, rows, name, BASE_TIME)


def stored(db: Store) -> dict[str, tuple[str | None, ...]]:
    """The stored contacts by email key: (email, name, city, amount as written)."""
    with db.read() as con:
        return {
            email_key(c["email"]): (c["email"], c["name"], c["city"], c["amount"] and str(c["amount"].normalize()))
            for c in store.read_contacts(con, CONTRACT)
        }


@pytest.mark.parametrize(
    ("rows", "expected", "duplicates", "merged"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_merge_within_a_file(
    backend: Store, rows: list[Row], expected: dict[str, tuple[str | None, ...]], duplicates: int, merged: int
) -> None:
    counts = merge_into_store(backend, frame(rows), "f.csv")
    assert stored(backend) == expected
    assert counts == MergeCounts(duplicates, merged, new_contacts=len(expected), updated_contacts=0)


def test_a_file_merged_again_changes_nothing(backend: Store) -> None:
    """The rows of a file merged into what they produced: every contact stored already, none updated."""
    db = backend
    rows = frame([("a@x.com", "Ann", None, "1.50"), ("b@x.com", "Bob", "Oslo", None), ("A@x.com", None, "Rome", None)])
    merge_into_store(db, rows, "first.csv")
    before = stored(db)
    assert merge_into_store(db, rows, "again.csv") == MergeCounts(0, 1, new_contacts=0, updated_contacts=0)
    assert stored(db) == before


def test_a_contract_of_emails_only_and_a_file_of_no_valid_rows(backend: Store) -> None:
    emails = make_contract("emails", [CONTRACT.fields[0].model_dump()])
    rows = pd.DataFrame({"email": ["a@x.com", "A@x.com ", "a@x.com", "b@x.com"], "_line": [2, 3, 4, 5]})
    with backend.write() as con, store.transaction(con):
        assert store.upsert_contacts(con, emails, rows, "f.csv", BASE_TIME) == MergeCounts(2, 0, 2, 0)
        assert store.upsert_contacts(con, emails, rows.iloc[:0], "none.csv", BASE_TIME) == MergeCounts(0, 0, 0, 0)
        assert store.read_contacts(con, emails) == [{"email": "a@x.com"}, {"email": "b@x.com"}]


def record(
    email: str, name: str | None = None, city: str | None = None, amount: str | None = None
) -> dict[str, object]:
    return {"email": email, "name": name, "city": city, "amount": Decimal(amount) if amount else None}


STORE_CASES = [
    # id, files (in received order), expected contacts by email, per-file (new, updated)
    (
        "across files: latest file wins, empty never erases",
        [[record("a@x.com", "Ann", "Oslo", "1")], [record("A@x.com", None, "Rome")], [record("a@x.com ", "Anna")]],
        {"a@x.com": ("Anna", "Rome", Decimal("1"))},
        [(1, 0), (0, 1), (0, 1)],
    ),
    (
        "an unchanged contact is not counted as updated",
        [[record("a@x.com", "Ann", "Oslo")], [record("a@x.com", "Ann"), record("b@x.com", "Bob")]],
        {"a@x.com": ("Ann", "Oslo", None), "b@x.com": ("Bob", None, None)},
        [(1, 0), (1, 0)],
    ),
    (
        "merged within a file, then against the store",
        [[record("a@x.com", "Ann", None, "5")], [record("a@x.com", None, "Oslo"), record("a@x.com", None, None, "7")]],
        {"a@x.com": ("Ann", "Oslo", Decimal("7"))},
        [(1, 0), (0, 1)],
    ),
]


@pytest.mark.parametrize(("files", "expected", "counts"), [c[1:] for c in STORE_CASES], ids=[c[0] for c in STORE_CASES])
def test_merge_across_files_and_against_the_store(
    home: Path,
    files: list[list[dict[str, object]]],
    expected: dict[str, tuple[object, ...]],
    counts: list[tuple[int, int]],
) -> None:
    settings = load_settings()
    names = [f"file{i}.csv" for i in range(len(files))]
    for i, (name, records) in enumerate(zip(names, files, strict=True)):
        stage_records(settings, CONTRACT, name, records, BASE_TIME.replace(minute=i))
    for name in names:
        import_file(settings, CONTRACT, name, "run-1")
    rows = contacts(settings, CONTRACT)
    stored = {c["email"]: (c["name"], c["city"], c["amount"]) for c in rows}
    assert stored == expected
    assert len(rows) == len(expected)  # one row per contact: an updated contact's old row is gone
    files_stats = ledger(settings, "acme")
    assert [(files_stats[n]["new_contacts"], files_stats[n]["updated_contacts"]) for n in names] == counts


def test_one_run_equals_one_merged_file(home: Path) -> None:
    """Three files imported in order give the contacts of their rows imported as one file."""
    settings = load_settings()
    files = [
        [record("a@x.com", "Ann", None, "1"), record("b@x.com", "Bob")],
        [record("B@X.com", None, "Rome"), record("c@x.com", "Cy", "Oslo")],
        [record("a@x.com", None, "Lima", "2"), record("c@x.com", None, None)],
    ]
    for i, records in enumerate(files):
        stage_records(settings, CONTRACT, f"f{i}.csv", records, BASE_TIME.replace(minute=i))
        import_file(settings, CONTRACT, f"f{i}.csv", "run-1")
    together = CONTRACT.model_copy(update={"id": "together"})
    stage_records(settings, together, "all.csv", [r for records in files for r in records])
    import_file(settings, together, "all.csv", "run-1")
    assert contacts(settings, CONTRACT) == contacts(settings, together)
    assert contacts(settings, CONTRACT)[0] == {"email": "a@x.com", "name": "Ann", "city": "Lima", "amount": Decimal(2)}
