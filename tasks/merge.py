"""The merge rule of design.md, in one place: the SQL that folds contact rows by email.

Emails are compared by their key, trimmed and lower-cased. The rows of one email are taken in
order: the stored contact first (order 0), then the file's rows by line (from 1); for each field
the value of the latest row where it is not empty wins, so an empty value never erases one.
Merging a file's rows among themselves and with the stored contacts is one fold, done by one
query (`fold_sql`). Since the fold is associative, the query folds the file's rows by email first
(nothing to fold when every email is once in the file, the common case) and then each with its
stored contact, and importing files one after the other gives the contacts of merging them all at once.

Counts (`MergeCounts.of`): rows equal to another row of the file after normalisation (the email
by its key, the values typed) are duplicates removed; the remaining rows folded into another row
of the same email are emails merged. A stored contact is updated only when the fold changes a value.

The queries read relations of generic columns: `k` the email key, `o` the order, the fields'
typed values under the names given, `f` the stored contact's first file. The same SQL runs on both
stores; only the "latest non-empty value" aggregate is spelled per backend (`store.sql.latest`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class MergeCounts:
    """What merging one file did, named as the import statistics."""

    duplicates_removed: int
    emails_merged: int
    new_contacts: int
    updated_contacts: int

    @classmethod
    def of(cls, rows: int, distinct_rows: int, emails: int, new: int, updated: int) -> MergeCounts:
        """The counts of a file of `rows` rows, `distinct_rows` of them distinct, for `emails` emails."""
        return cls(rows - distinct_rows, distinct_rows - emails, new, updated)


def email_key(email: str) -> str:
    """The comparison key of an email: trimmed, lower-cased; the email itself when it already is (most
    are: a file's keys then cost no memory of their own)."""
    key = email.strip().lower()
    return email if key == email else key


def distinct_rows_sql(rows: str, values: list[str]) -> str:
    """SELECT of the number of distinct rows of a file: `rows` (k and `values`, the fields but the email)."""
    return f"SELECT count(*) FROM (SELECT DISTINCT {', '.join(['k', *values])} FROM {rows}) AS d"


def fold_sql(stored: str, incoming: str, values: list[str], latest: Callable[[str], str], *, keys_unique: bool) -> str:
    """SELECT of one merged contact per email key of a file's rows and the stored contacts of their emails.

    `stored` gives the stored contacts (k, the values, f), `incoming` the file's rows (k, o, the
    values); `latest(v)` is the backend's aggregate of v's latest non-empty value by o, needed only
    unless `keys_unique` (no email twice in the file). Columns: k, the merged values, f, `is_new` (no
    stored contact) and `is_changed` (a stored contact whose values the merge changes)."""
    folded = incoming
    if not keys_unique:
        folded = f"SELECT k, {', '.join(f'{latest(v)} AS {v}' for v in values)} FROM ({incoming}) AS i GROUP BY k"
    merged = [f"COALESCE(m.{v}, s.{v})" for v in values]  # the file's latest non-empty value, else the stored one
    changed = " OR ".join(f"{value} IS DISTINCT FROM s.{v}" for value, v in zip(merged, values, strict=True))
    listed = ", ".join(f"{value} AS {v}" for value, v in zip(merged, values, strict=True))
    return f"""
        SELECT m.k, {listed}, s.f, s.k IS NULL AS is_new, s.k IS NOT NULL AND ({changed}) AS is_changed
        FROM ({folded}) AS m LEFT JOIN ({stored}) AS s USING (k)"""
