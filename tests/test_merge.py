"""The merge rule, table-driven: exact duplicates, emails merged (trimmed, case-insensitive), the latest
non-empty value wins and an empty one never erases, within a file, across files and against the store."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tasks import importer
from tasks.merge import merge_rows
from tasks.settings import load_settings
from tests.importing import BASE_TIME, contacts, ledger, make_contract, stage_records

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
    data = pd.DataFrame(
        [(e, n, c, Decimal(a) if a else None) for e, n, c, a in rows], columns=["email", "name", "city", "amount"]
    ).astype(object)
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


@pytest.mark.parametrize(
    ("rows", "expected", "duplicates", "merged"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_merge_within_a_file(
    rows: list[Row], expected: dict[str, tuple[str | None, ...]], duplicates: int, merged: int
) -> None:
    result = merge_rows(frame(rows), CONTRACT)
    got = {
        key: (r["email"], r["name"], r["city"], None if r["amount"] is None else str(r["amount"].normalize()))
        for key, r in result.rows.to_dict("index").items()
    }
    assert got == expected
    assert list(result.rows.index) == list(expected)  # first appearance order
    assert (result.duplicates_removed, result.emails_merged) == (duplicates, merged)


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
        importer.import_file(settings, CONTRACT, name, "run-1")
    stored = {c["email"]: (c["name"], c["city"], c["amount"]) for c in contacts(settings, CONTRACT)}
    assert stored == expected
    files_stats = ledger(settings, "acme")
    assert [(files_stats[n]["new_contacts"], files_stats[n]["updated_contacts"]) for n in names] == counts


def test_one_run_equals_one_merged_file(home: Path) -> None:
    """Three files imported in order give the contacts of their rows merged as one file."""
    settings = load_settings()
    files = [
        [record("a@x.com", "Ann", None, "1"), record("b@x.com", "Bob")],
        [record("B@X.com", None, "Rome"), record("c@x.com", "Cy", "Oslo")],
        [record("a@x.com", None, "Lima", "2"), record("c@x.com", None, None)],
    ]
    for i, records in enumerate(files):
        stage_records(settings, CONTRACT, f"f{i}.csv", records, BASE_TIME.replace(minute=i))
        importer.import_file(settings, CONTRACT, f"f{i}.csv", "run-1")
    together = merge_rows(
        frame(
            [
                (r["email"], r["name"], r["city"], r["amount"] and str(r["amount"]))  # type: ignore[misc]
                for records in files
                for r in records
            ]
        ),
        CONTRACT,
    )
    stored = {c["email"].strip().lower(): (c["name"], c["city"], c["amount"]) for c in contacts(settings, CONTRACT)}
    assert stored == {k: (r["name"], r["city"], r["amount"]) for k, r in together.rows.to_dict("index").items()}
