"""The `sftp-import` command. Commands that run no flow never import prefect (it costs ~1.4 s)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from deployments import server
from tasks import formats
from tasks.settings import Settings, load_settings

if TYPE_CHECKING:  # pydantic is imported by the commands that read contracts, not by `--help`
    from schemas.contract import Contract


def _contracts(settings: Settings, client: str | None) -> dict[str, Contract]:
    """The contracts (all, or the one client's), from the cache in the home while no file changed."""
    from schemas.contract import ContractError, cached_contracts

    try:
        contracts = cached_contracts(settings.clients_dir, settings.home)
    except ContractError as exc:
        raise SystemExit(f"{exc}\n{len(exc.problems)} problem(s) in {settings.clients_dir}") from None
    if client is None:
        return contracts
    if client not in contracts:
        raise SystemExit(f"unknown client {client!r} (contracts in {settings.clients_dir}: {', '.join(contracts)})")
    return {client: contracts[client]}


def cmd_contracts_check(args: argparse.Namespace, settings: Settings) -> int:
    from schemas.contract import check_contracts

    contracts, problems = check_contracts(settings.clients_dir)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {settings.clients_dir}", file=sys.stderr)
        return 1
    print(f"{len(contracts)} contract(s) OK in {settings.clients_dir}: {', '.join(contracts)}")
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from tasks.status import render_table, status_report

    report = status_report(settings, _contracts(settings, args.client), datetime.now(UTC))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(render_table(report))
    return 0


def _per_client(result: dict[str, Any], line: Callable[[dict[str, Any]], str]) -> int:
    """Print a flow's {"clients": {id: counts}, "failed": {id: error}} a line per client; 1 if any failed."""
    for client_id, counts in sorted(result["clients"].items()):
        print(f"{client_id}: {line(counts)}")
    for client_id, error in sorted(result["failed"].items()):
        print(f"{client_id}: FAILED {error}", file=sys.stderr)
    return 1 if result["failed"] else 0


def _prefect_ready(settings: Settings) -> None:
    """Before a command imports prefect to run a flow: its API (see `deployments.server.use_server`)."""
    try:
        started = server.use_server(settings.home, settings.prefect_port, settings.prefect_database_url)
    except server.ServerError as exc:
        raise SystemExit(str(exc)) from exc
    if started is not None:
        print(f"started the resident Prefect server: {started.ui} (log {started.log})", file=sys.stderr)


def _outcome_line(outcome: dict[str, Any]) -> str:
    """`name: status (reason): stats` of one imported file."""
    stats = ", ".join(f"{k} {v}" for k, v in outcome["stats"].items())
    reason = f" ({outcome['reason']})" if outcome["reason"] else ""
    return f"{outcome['name']}: {outcome['status']}{reason}" + (f": {stats}" if stats else "")


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    _contracts(settings, args.client)  # an unknown client fails here, before Prefect is imported
    _prefect_ready(settings)
    from prefect.states import State

    from flows.hourly_sync import hourly_sync

    with server.watched_here():
        state = cast("State[Any]", hourly_sync(client=args.client, return_state=True))
    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, dict):  # the flow itself failed (bad contracts, …)
        print(f"sync failed: {summary}", file=sys.stderr)
        return 1
    kinds = ("staged", "waiting", "ignored", "rejected", "skipped")
    return _per_client(summary, lambda c: f"{c['listed']} listed: " + ", ".join(f"{k} {c[k]}" for k in kinds))


def cmd_backfill(args: argparse.Namespace, settings: Settings) -> int:
    _contracts(settings, args.client)  # an unknown client fails here, before Prefect is imported
    _prefect_ready(settings)
    from flows.backfill import backfill

    with server.watched_here():
        state: Any = backfill(client=args.client, files=args.file, return_state=True)  # the run tags itself
    if not state.is_completed():
        print(f"backfill refused or failed: {state.message}", file=sys.stderr)
        return 1
    for outcome in state.result()["files"]:
        print(_outcome_line(outcome))
    return 0


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    contracts = _contracts(settings, None)
    if args.dry_run:  # plain functions: lists what would go, changes nothing, no Prefect
        from tasks import retention, sftp

        with sftp.connect(settings.sftp) as connection:
            for contract in contracts.values():
                plan = retention.plan_client(connection, settings, contract, datetime.now(UTC))
                for d in plan.deletions:
                    print(f"{contract.id}: would delete {d.name} from {d.location}")
        return 0
    _prefect_ready(settings)
    from flows.retention import retention_flow

    with server.watched_here():
        state: Any = retention_flow(return_state=True)
    result = state.result(raise_on_failure=False)
    if not isinstance(result, dict):
        print(f"purge failed: {state.message}", file=sys.stderr)
        return 1
    return _per_client(result, lambda c: f"deleted {c['sftp']} from SFTP, {c['staging']} from staging")


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    _contracts(settings, args.client)  # an unknown client fails here, before Prefect is imported
    _prefect_ready(settings)
    from flows.daily_import import daily_import

    with server.watched_here():
        state: Any = daily_import(client=args.client, now=args.now, return_state=True)  # the run tags itself
    summary = state.result(raise_on_failure=False)
    if not isinstance(summary, dict):
        print(f"import failed: {state.message}", file=sys.stderr)
        return 1
    for outcome in summary["files"]:
        print(_outcome_line(outcome))
    print(f"{args.client}: " + ", ".join(f"{k} {v}" for k, v in summary["totals"].items()))
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from tasks import export, store

    contract = _contracts(settings, args.client)[args.client]
    with settings.store.read() as con:
        rows = store.read_contacts(con, contract)
    write = export.write_contacts_csv if args.format == "csv" else export.write_contacts_json
    if args.output is None:
        write(contract, rows, sys.stdout)
        return 0
    with open(args.output, "w", encoding="utf-8", newline="") as out:
        write(contract, rows, out)
    print(f"{len(rows)} contacts of {args.client} written to {args.output}", file=sys.stderr)
    return 0


def cmd_deletions(args: argparse.Namespace, settings: Settings) -> int:
    """The retention log, newest first: what was deleted, from where, when."""
    from tasks import store

    if args.client is not None:
        _contracts(settings, args.client)
    with settings.store.read() as con:
        log = store.deletion_log(con, args.client)
    for row in log:
        sha = f" sha256 {row['sha256'][:12]}…" if row["sha256"] else ""
        print(f"{row['deleted_at']:%Y-%m-%d %H:%M} UTC  {row['client']}: {row['name']} from {row['location']}{sha}")
    print(f"{len(log)} deletion(s)", file=sys.stderr)
    return 0


def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    """Erase one person from a client's data (GDPR art. 17); the address is neither printed nor stored."""
    from tasks import erasure

    contract = _contracts(settings, args.client)[args.client]
    try:
        done = erasure.erase(settings, contract, args.email, args.by or erasure.operator(), datetime.now(UTC))
    except ValueError as exc:
        raise SystemExit(f"erase: {exc}") from None
    files = [f"{name} rewritten" for name in done.rewritten] + [f"{name} deleted" for name in done.deleted]
    print(
        f"{contract.id}: erased {done.contacts} contact(s), {done.row_errors} row error(s), "
        f"{len(files)} staged file(s){': ' + ', '.join(files) if files else ''}; logged"
    )
    return 0


def cmd_errors(args: argparse.Namespace, settings: Settings) -> int:
    from tasks import export, store
    from tasks.errors import where

    _contracts(settings, args.client)
    with settings.store.read() as con:
        if store.file_status(con, args.client, args.file) is None:
            raise SystemExit(f"{args.client} has no file named {args.file!r}")
        errors = store.file_errors(con, args.client, args.file)
    if args.format == "csv":
        export.write_errors_csv(errors, sys.stdout)
        return 0
    for error in errors:
        print(f"{where(error['line'], error['field'])}: {error['message']}")
    print(f"{len(errors)} row error(s) in {args.file}", file=sys.stderr)
    return 0


def cmd_sample(args: argparse.Namespace, settings: Settings) -> int:
    from pathlib import Path

    from schemas.samples import write_sample

    contract = _contracts(settings, args.client)[args.client]
    output = Path(args.output or f"{contract.id}-sample.{args.format}")
    output.write_bytes(write_sample(contract, args.format))
    print(f"wrote {output}: {contract.name}'s {args.format} sample ({len(contract.fields)} fields)")
    return 0


def cmd_server(args: argparse.Namespace, settings: Settings) -> int:
    """start | stop | status of the home's resident Prefect server."""
    if args.action == "start":
        try:
            running, started = server.start(
                settings.home, port=settings.prefect_port, database_url=settings.prefect_database_url
            )
        except server.ServerError as exc:
            print(exc, file=sys.stderr)
            return 1
        state = "started" if started else "already running"
        print(
            f"Prefect server {state}: UI {running.ui}, API {running.url}, database {running.database} "
            f"(pid {running.pid}, log {running.log})"
        )
        return 0
    if args.action == "stop":
        stopped = server.stop(settings.home)
        print(f"Prefect server stopped (pid {stopped.pid})" if stopped else "no Prefect server was running")
        return 0
    current = server.running(settings.home)
    if current is None:
        stale = server.recorded(settings.home)
        note = f" (stale record: pid {stale.pid} is gone; the next start replaces it)" if stale else ""
        print(f"no Prefect server running for {settings.home}{note}")
        return 3
    health = "healthy" if server.healthy(current.url) else "not answering yet"
    print(
        f"Prefect server running, {health}: UI {current.ui}, API {current.url}, database {current.database} "
        f"(pid {current.pid}, since "
        f"{current.started_at}, log {current.log})"
    )
    return 0


def cmd_store_copy(args: argparse.Namespace, settings: Settings) -> int:
    """Copy this store (SFTP_IMPORT_STORE_URL, else the home's DuckDB file) into an empty PostgreSQL store."""
    from tasks.store import store_at
    from tasks.store.copy import CopyRefused, copy_store

    target = store_at(args.to)
    try:
        tables, seconds = copy_store(settings.store, target)
    except CopyRefused as exc:
        print(f"store copy refused: {exc}", file=sys.stderr)
        return 1
    for table in tables:
        print(f"{table.table:<32} {table.rows:>10,} rows  checksum {table.checksum}  verified")
    print(
        f"copied {settings.store.location} to {target.location}: {len(tables)} tables, "
        f"{sum(t.rows for t in tables):,} rows, counts and checksums verified, in {seconds:.1f} s"
    )
    print("next: set SFTP_IMPORT_STORE_URL to the new store for every process (workers, CLI, deployments)")
    return 0


Command = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sftp-import", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Command, help_text: str, into: Any = sub) -> argparse.ArgumentParser:
        command: argparse.ArgumentParser = into.add_parser(name, help=help_text)
        command.set_defaults(func=func)
        return command

    contracts = sub.add_parser("contracts", help="client contracts").add_subparsers(dest="action", required=True)
    add("check", cmd_contracts_check, "check every contract file; non-zero exit on any problem", contracts)

    sample = add("sample", cmd_sample, "write a client's sample file, made from its contract")
    sample.add_argument("--client", required=True)
    sample.add_argument("--format", choices=formats.writable(), required=True)
    sample.add_argument("-o", "--output", help="the file to write (default: <client>-sample.<format>)")

    sync = add("sync", cmd_sync, "copy complete new files from every client's SFTP folder to staging (hourly-sync)")
    sync.add_argument("--client")

    backfill = add("backfill", cmd_backfill, "import named files of a client now instead of at its next import")
    backfill.add_argument("--client", required=True)
    backfill.add_argument("--file", action="append", required=True, help="a file name; repeat for more")

    purge = add("purge", cmd_purge, "delete files older than SFTP_IMPORT_RETENTION_DAYS from SFTP and staging")
    purge.add_argument("--dry-run", action="store_true", help="only list what would be deleted")

    imp = add("import", cmd_import, "import a client's staged files (daily-import): those before its last cut-off")
    imp.add_argument("--client", required=True)
    imp.add_argument("--now", action="store_true", help="everything received so far, not only before the cut-off")

    export = add("export", cmd_export, "a client's merged contacts, keyed by the contract's field names")
    export.add_argument("--client", required=True)
    export.add_argument("--format", choices=("csv", "json"), required=True)
    export.add_argument("-o", "--output", help="write to this file instead of standard output")

    deletions = add("deletions", cmd_deletions, "the retention log: every file deleted, from where, when")
    deletions.add_argument("--client")

    errors = add("errors", cmd_errors, "every row error of one imported file")
    errors.add_argument("--client", required=True)
    errors.add_argument("--file", required=True)
    errors.add_argument("--format", choices=("text", "csv"), default="text")

    erase = add("erase", cmd_erase, "erase one person from a client's contacts, row errors and staged files (GDPR)")
    erase.add_argument("--client", required=True)
    erase.add_argument("--email", required=True, help="the person's address (compared trimmed, case-insensitively)")
    erase.add_argument("--by", help="who asks, for the log (default: user@host)")

    prefect_server = add(
        "server", cmd_server, "the resident local Prefect server of this home (used when PREFECT_API_URL is unset)"
    )
    prefect_server.add_argument("action", choices=("start", "stop", "status"))

    stores = sub.add_parser("store", help="the platform's store").add_subparsers(dest="action", required=True)
    copy = add(
        "copy", cmd_store_copy, "copy this store into an empty PostgreSQL store, verified table by table", stores
    )
    copy.add_argument("--to", required=True, metavar="URL", help="postgresql://user@host:port/database")

    status = add("status", cmd_status, "files per client: status, statistics, next import time")
    status.add_argument("--client")
    status.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args, load_settings())
    return result


if __name__ == "__main__":
    sys.exit(main())
