"""The end state the kill loop compares: every table of the store (every column but the moments and ids
that legitimately differ between runs), the runs' consistency with the ledger, staging against the
ledger, and the clients' SFTP folders. Read through the settings (`Settings.store`), whatever the store."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tasks import sftp as sftp_module
from tasks import store, temporary_names
from tasks.settings import Settings

# differ from run to run however right the result: when it ran, how long it took, which run did it
VOLATILE = frozenset(
    {"imported_at", "run_id", "read_seconds", "upsert_seconds", "updated_at", "written_at", "changed_at", "applied_at"}
)
# the backfill syncs at the real time (tasks/backfill.py takes no `now`): its arrival moments differ too
BACKFILL_VOLATILE = VOLATILE | {"received_at", "seen_at", "first_seen_at"}
CLOSED_RUN_STATES = frozenset({"completed", "failed", "crashed"})
RUN_TOTALS = ("files_imported", "files_rejected", *store.IMPORT_STATS)
Rows = list[tuple[Any, ...]]


@dataclass(frozen=True)
class EndState:
    """What is compared with the uninterrupted run: tables (runs summed per client and kind), files."""

    tables: dict[str, Rows]
    staging: frozenset[str]
    sftp: frozenset[str]


def _records(con: Any, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _comparable(row: dict[str, Any], volatile: frozenset[str]) -> tuple[Any, ...]:
    kept = {k: v for k, v in row.items() if k not in volatile}
    if kept.get("pickup"):  # the pickup check's JSON carries how long it took
        kept["pickup"] = json.dumps({k: v for k, v in json.loads(kept["pickup"]).items() if k != "seconds"})
    return tuple(sorted(kept.items()))


def _run_sums(runs: list[dict[str, Any]]) -> Rows:
    """The runs' totals summed per client and kind: a killed run and its rerun split what one run did."""
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * len(RUN_TOTALS))
    for run in runs:
        totals = sums[run["client"], run["kind"]]
        for i, key in enumerate(RUN_TOTALS):
            totals[i] += run[key] or 0
    return sorted((*key, *totals) for key, totals in sums.items())


def run_problems(runs: list[dict[str, Any]], files: list[dict[str, Any]]) -> list[str]:
    """Each run closed, with the totals of the ledger rows it closed; each such row's run recorded."""
    problems = [
        f"run {r['run_id']} of {r['client']} left {r['state']}" for r in runs if r["state"] not in CLOSED_RUN_STATES
    ]
    by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in files:
        if row["run_id"] is not None:
            by_run[row["run_id"]].append(row)
    for run in runs:
        closed = by_run.pop(run["run_id"], [])
        expected = {
            "files_imported": sum(r["status"] == "imported" for r in closed),
            "files_rejected": sum(r["status"] == "rejected" for r in closed),
        } | {key: sum(r[key] or 0 for r in closed) for key in store.IMPORT_STATS}
        found = {key: run[key] or 0 for key in RUN_TOTALS}
        if found != expected:
            problems.append(f"run {run['run_id']} ({run['state']}) totals {found}, its ledger rows {expected}")
    problems += [f"files of run {run_id} without its run row: {len(rows)}" for run_id, rows in by_run.items()]
    return problems


def staging_problems(settings: Settings, files: list[dict[str, Any]]) -> tuple[frozenset[str], list[str]]:
    """The staged files (relative paths) and where they and the ledger disagree: a file without its
    row, a row (not purged) without its file or with other bytes, a temporary copy left over."""
    root = Path(settings.staging_url)
    incoming = root / temporary_names.TMP_DIR
    on_disk = {p for p in root.rglob("*") if p.is_file() and incoming not in p.parents}
    problems = []
    for row in files:
        if row["staged_path"] is None or row["purged_at"] is not None:
            continue
        path = Path(row["staged_path"])
        if path not in on_disk:
            problems.append(f"{row['client']}/{row['name']}: ledger row {row['status']}, staged copy missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != row["sha256"]:
            problems.append(f"{row['client']}/{row['name']}: staged bytes differ from the ledger's sha256")
        on_disk.discard(path)
    problems += [f"staged file without its ledger row: {p.relative_to(root)}" for p in sorted(on_disk)]
    problems += _leftovers(settings, incoming)
    relative = frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    return relative, problems


def _leftovers(settings: Settings, incoming: Path) -> list[str]:
    """Temporary copies a pass would leave once they are stale: a killed copy's are removed then (never
    earlier, so a concurrent sync's copy in progress is safe)."""
    later = datetime.now(UTC) + sftp_module.STALE_TMP
    for client in sorted(p.name for p in incoming.iterdir()) if incoming.exists() else []:
        sftp_module.remove_stale_temporaries(settings.staging_url, client, later)
    return [f"temporary copy never removed: {p}" for p in incoming.rglob("*") if p.is_file()]


def sftp_files(root: Path) -> frozenset[str]:
    """The clients' SFTP folders as relative paths, without the result documents' temporary dotfiles."""
    return frozenset(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def end_state(settings: Settings, sftp_root: Path, volatile: frozenset[str]) -> tuple[EndState, list[str]]:
    """The state to compare and the problems found on the way (runs, staging). The store must open."""
    with settings.store.read() as con:
        listed = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        names = [r["table_name"] for r in _records(con, listed)]
        raw = {name: _records(con, f'SELECT * FROM "{name}"') for name in names if name != "schema_version"}
    runs, files = raw.pop("runs"), raw["files"]
    tables = {name: sorted((_comparable(row, volatile) for row in rows), key=repr) for name, rows in raw.items()}
    tables["runs (summed)"] = _run_sums(runs)
    staged, problems = staging_problems(settings, files)
    problems += run_problems(runs, files)
    return EndState(tables, staged, sftp_files(sftp_root)), problems


def differences(expected: EndState, found: EndState) -> list[str]:
    """Where `found` differs from `expected`: per table, a row or two on each side."""
    problems = []
    for name in sorted(expected.tables.keys() | found.tables.keys()):
        want, got = expected.tables.get(name, []), found.tables.get(name, [])
        if want != got:
            missing = [r for r in want if r not in got][:2]
            extra = [r for r in got if r not in want][:2]
            problems.append(f"{name}: {len(want)} rows expected, {len(got)} found; missing {missing}; extra {extra}")
    for what, want_files, got_files in (
        ("staging", expected.staging, found.staging),
        ("sftp", expected.sftp, found.sftp),
    ):
        if want_files != got_files:
            problems.append(f"{what}: missing {sorted(want_files - got_files)}, extra {sorted(got_files - want_files)}")
    return problems
