"""Exact duplicates dropped, then rows merged by email: the merge rule of design.md, on DataFrames.

Emails are compared trimmed and case-insensitively. Rows are taken in file order; for each field
the latest non-empty value wins and an empty value never erases one. The store applies the same
rule against the contacts it already holds (COALESCE(new, old)), so importing files one after the
other gives the same contacts as merging them all at once."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from schemas.contract import Contract

KEY = "email_key"


@dataclass(frozen=True)
class Merged:
    """One row per email (index `email_key`, columns = the contract's xml names), with exact counts.

    `duplicates_removed`: rows identical to another row after normalisation (the last one is kept,
    so dropping them never changes the merged values).
    `emails_merged`: the remaining rows folded into an earlier row with the same email."""

    rows: pd.DataFrame
    duplicates_removed: int
    emails_merged: int


def email_key(email: str) -> str:
    """The comparison key of an email: trimmed, lower-cased."""
    return email.strip().lower()


def _with_none(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns with None (not NaN) for empty values, as the store and the merge rule expect."""
    frame = frame.astype(object)
    return frame.where(frame.notna(), None)


def merge_rows(rows: pd.DataFrame, contract: Contract) -> Merged:
    """Drop exact duplicates (email compared by its key), then fold rows sharing an email, in order.

    `rows` holds typed values (None for empty) under the contract's xml names; other columns
    (such as `_line`) are ignored."""
    columns = [f.xml for f in contract.fields]
    email = contract.email_field.xml
    frame = _with_none(rows[columns])
    keys = frame[email].map(email_key)
    normalised = frame.assign(**{email: keys})
    unique = ~normalised.duplicated(keep="last")  # a repeated row restates its values latest: same merge
    frame, keys = frame[unique], keys[unique]
    merged = frame.groupby(keys.rename(KEY), sort=False).last(skipna=True)
    merged = _with_none(merged)
    duplicates = len(rows) - len(frame)
    return Merged(rows=merged, duplicates_removed=duplicates, emails_merged=len(frame) - len(merged))
