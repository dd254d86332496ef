"""The `sftp-import` command. Commands that run no flow never import prefect (it costs ~1.4 s)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas.contract import Contract, check_contracts, load_contracts
from tasks.settings import Settings, load_settings


def _contracts(settings: Settings, client: str | None) -> dict[str, Contract]:
    contracts = load_contracts(settings.clients_dir)
    if client is None:
        return contracts
    if client not in contracts:
        raise SystemExit(f"unknown client {client!r} (contracts in {settings.clients_dir}: {', '.join(contracts)})")
    return {client: contracts[client]}


def cmd_contracts_check(args: argparse.Namespace, settings: Settings) -> int:
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
