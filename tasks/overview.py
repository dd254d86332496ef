"""The ops screen across clients: `uploads-overview` (a table, one row per client, those needing
attention first) and `overview-today` (markdown: today's counts across the platform and who needs
attention, each with its first reason).

A client needs attention for, in this order: its last import failed (or crashed); a file of it was
rejected today; more than REJECTED_ROWS_SHARE of the rows it sent today were rejected; it has sent
nothing for longer than its contract's `expected_every`. "Today" is the UTC day of `now`, the same
day for every client, whatever its timezone.

Plain functions build both from `store.overview_figures` (two queries for all clients) and are
testable without Prefect; `publish_overview` is the thin part: two API calls per run, however many
clients. The table is capped at MAX_TABLE_ROWS (a last row counts the clients left out): measured
in Debian's Chromium (`bench/bench_ui.py`), the Prefect UI shows a 1,000-row table after ~4 s and
a 100-row one after ~0.7 s. Like the per-client artifacts, the overview carries ids, file names,
counts and reasons, never a cell value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.contract import Contract
from tasks import store
from tasks.report import artifact_key, one_line, when_text
from tasks.settings import Settings

OVERVIEW_KEY = "uploads-overview"
TODAY_KEY = "overview-today"
REJECTED_ROWS_SHARE = 0.05  # a client whose rows rejected today are more than this share of those read
MAX_TABLE_ROWS = 100  # rows of `uploads-overview`: the page stays fast (< 1 s); the rest is summed up
MAX_LISTED = 50  # clients needing attention listed in `overview-today`; the table has them all first
ATTENTION_CHARS = 60  # the table's attention cell: the first reason, cut to a line (the figures stay on screen)
LISTED_CHARS = 160  # a reason in the list of `overview-today`
# the kinds of attention, most urgent first: the order of the rows, and the counts of `overview-today`
KINDS = {
    "failed": "with a failed import",
    "rejected": "with files rejected",
    "rows": f"with more than {REJECTED_ROWS_SHARE:.0%} of rows rejected",
    "silent": "silent for longer than agreed",
}


@dataclass(frozen=True)
class ClientLine:
    """One client on the overview: its figures of today, when it imports next, why it needs attention."""

    contract: Contract
    figures: dict[str, Any]  # of `store.overview_figures`
    next_import_at: datetime
    reasons: tuple[tuple[str, str], ...]  # (kind, text), most urgent first; empty: all is well


def plural(count: int, noun: str) -> str:
    """`1 file`, `2 files`."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def day_of(now: datetime) -> tuple[datetime, datetime]:
    """The UTC day holding `now`: [midnight, next midnight)."""
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def attention(contract: Contract, figures: dict[str, Any], now: datetime) -> tuple[tuple[str, str], ...]:
    """Why a client needs attention, most urgent first: (kind of KINDS, text); empty when nothing does."""
    zone = contract.zone
    reasons = []
    if figures["last_import_state"] in ("failed", "crashed"):
        at = when_text(figures["last_import_at"], zone)
        reasons.append(("failed", f"last import {figures['last_import_state']} at {at}"))
    if figures["rejected"]:
        why = f"{figures['rejected_name']}: {figures['rejected_reason'] or 'no reason recorded'}"
        reasons.append(("rejected", f"{plural(figures['rejected'], 'file')} rejected today; latest {why}"))
    read, rejected = figures["rows_read"], figures["rows_rejected"]
    if read and rejected / read > REJECTED_ROWS_SHARE:
        reasons.append(("rows", f"{rejected} of {read} rows rejected today ({rejected / read:.1%})"))
    interval, last = contract.expected_interval, figures["last_received_at"]
    if interval is not None and (last is None or now - last > interval):
        since = f"since {when_text(last, zone)}" if last else "yet"
        reasons.append(("silent", f"no upload {since} (expected every {contract.expected_every})"))
    return tuple(reasons)


def read_overview(con: Any, contracts: dict[str, Contract], now: datetime) -> list[ClientLine]:
    """Every client's line, those needing attention first (most urgent kind first, then by id), then the rest by id."""
    figures = store.overview_figures(con, sorted(contracts), *day_of(now))
    lines = [
        ClientLine(contract, figures[cid], contract.next_cutoff(now), attention(contract, figures[cid], now))
        for cid, contract in sorted(contracts.items())
    ]
    order = list(KINDS)
    return sorted(lines, key=lambda line: order.index(line.reasons[0][0]) if line.reasons else len(order))


def _link(ui: str, key: str, text: str | None = None) -> str:
    """A markdown link to an artifact key's page of the Prefect UI (`ui` "": relative to the UI's root)."""
    return f"[{text or key}]({ui}/artifacts/key/{key})"


def _last_import(line: ClientLine) -> str:
    figures = line.figures
    if figures["last_import_at"] is None:
        return ""
    return f"{when_text(figures['last_import_at'], line.contract.zone)} {figures['last_import_state']}"


def overview_rows(lines: list[ClientLine], ui: str, limit: int = MAX_TABLE_ROWS) -> list[dict[str, Any]]:
    """The `uploads-overview` table (JSON-native): at most `limit` clients, then one row counting the rest."""
    rows: list[dict[str, Any]] = []
    for line in lines[:limit]:
        first = line.reasons[0][1] if line.reasons else ""
        more = f" (+{len(line.reasons) - 1} more)" if len(line.reasons) > 1 else ""
        figures = line.figures
        rows.append(
            {
                "client": line.contract.id,
                "attention": one_line(first, ATTENTION_CHARS) + more,
                "received": figures["received"],
                "imported": figures["imported"],
                "rejected": figures["rejected"],
                "rows_imported": int(figures["rows_imported"]),
                "rows_rejected": int(figures["rows_rejected"]),
                "last_import": _last_import(line),
                "next_import": when_text(line.next_import_at, line.contract.zone),
                "summary": _link(ui, artifact_key("summary", line.contract.id)),
            }
        )
    rest = lines[limit:]
    if rest:
        needing = sum(1 for line in rest if line.reasons)
        rows.append(
            dict.fromkeys(rows[0])
            | {
                "client": f"… {len(rest)} more",
                "attention": f"{needing:,} of them {'needs' if needing == 1 else 'need'} attention" if needing else "",
                "summary": "all: `sftp-import status`",
            }
        )
    return rows


def overview_markdown(lines: list[ClientLine], now: datetime, ui: str, limit: int = MAX_LISTED) -> str:
    """`overview-today`: the day's counts across the platform, and who needs attention with the first reason."""
    day = day_of(now)[0]
    total = {key: sum(int(line.figures[key]) for line in lines) for key in ("received", "imported", "rejected")}
    counted = {key: sum(int(line.figures[key]) for line in lines) for key in ("rows_imported", "rows_rejected")}
    needing = [line for line in lines if line.reasons]
    by_kind = {kind: sum(1 for line in needing if kind in dict(line.reasons)) for kind in KINDS}
    text = [
        f"## Uploads today, {day:%Y-%m-%d} (UTC)",
        "",
        f"**{plural(len(lines), 'client')}, {len(needing):,} {'needs' if len(needing) == 1 else 'need'} attention**: "
        + ", ".join(f"{n:,} {KINDS[kind]}" for kind, n in by_kind.items())
        + ".",
        "",
        f"Today: {plural(total['received'], 'file')} received, {total['imported']:,} imported, "
        f"{total['rejected']:,} rejected; {plural(counted['rows_imported'], 'row')} imported, "
        f"{counted['rows_rejected']:,} rejected.",
        "",
    ]
    if needing:
        text += ["### Needs attention", ""]
        for line in needing[:limit]:
            link = _link(ui, artifact_key("summary", line.contract.id), line.contract.id)
            text.append(f"- **{link}**: {one_line(line.reasons[0][1], LISTED_CHARS)}")
        if len(needing) > limit:
            text.append(f"- … and {len(needing) - limit} more, first in {_link(ui, OVERVIEW_KEY)}")
        text.append("")
    text += [
        f"Every client, those needing attention first: {_link(ui, OVERVIEW_KEY)}. "
        f"Today is the UTC day; files count on the day they were received, imported or rejected. "
        f"Updated {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC.",
    ]
    return "\n".join(text) + "\n"


def build_overview(
    settings: Settings, contracts: dict[str, Contract], now: datetime, ui: str, failed_runs: list[store.Run]
) -> tuple[list[dict[str, Any]], str]:
    """The overview's (table rows, markdown), after recording `failed_runs` (`store.record_failed_runs`).

    Read-only, unless there are failed runs to record: then one short hold of the writer lock."""
    opened = settings.store.write if failed_runs else settings.store.read
    with opened(store.WAIT_FOR_WRITER_SECONDS) as con:
        if failed_runs:
            with store.transaction(con):
                store.record_failed_runs(con, failed_runs, now)
        lines = read_overview(con, contracts, now)
    return overview_rows(lines, ui), overview_markdown(lines, now, ui)


def publish_overview(rows: list[dict[str, Any]], markdown: str) -> None:
    """Create the two artifacts (same keys, latest wins): two API calls."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_table_artifact(
        table=rows,
        key=OVERVIEW_KEY,
        description="Every client's files received, imported and rejected today (UTC), those needing attention first",
    )
    create_markdown_artifact(markdown=markdown, key=TODAY_KEY, description="Uploads today across the platform")
