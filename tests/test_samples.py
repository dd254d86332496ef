"""Every sample file of every format validates with zero errors, for every example contract."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.contract import Contract, load_contracts
from schemas.samples import SAMPLE_ROWS, sample_records, write_sample
from tasks.formats import writable
from tasks.validate import parse_file
from tests.importing import typed_records

CONTRACTS = load_contracts(Path(__file__).parents[1] / "examples" / "clients")


@pytest.mark.parametrize("fmt", writable())
@pytest.mark.parametrize("client", sorted(CONTRACTS))
def test_sample_validates_with_zero_errors(client: str, fmt: str) -> None:
    contract: Contract = CONTRACTS[client]
    parsed = parse_file(f"sample.{fmt}", write_sample(contract, fmt), contract, max_bytes=10**8, warn_bytes=10**7)
    assert parsed.errors == []
    assert parsed.rows_read == len(parsed.rows) == SAMPLE_ROWS
    assert typed_records(parsed, contract) == sample_records(contract)


@pytest.mark.parametrize("client", sorted(CONTRACTS))
def test_sample_header_in_contract_order(client: str) -> None:
    contract = CONTRACTS[client]
    text = write_sample(contract, "csv").decode()
    assert text.splitlines()[0] == contract.csv.delimiter.join(f.name for f in contract.fields)
    xml = write_sample(contract, "xml").decode()
    positions = [xml.index(f"<{f.id}>") for f in contract.fields]
    assert positions == sorted(positions)


@pytest.mark.parametrize("fmt", writable())
def test_cli_writes_a_sample_that_validates(fmt: str, home: Path, tmp_path: Path) -> None:
    from flows.cli import main

    target = tmp_path / f"sample.{fmt}"
    assert main(["sample", "--client", "contoso", "--format", fmt, "-o", str(target)]) == 0
    contract = CONTRACTS["contoso"]
    parsed = parse_file(target.name, target.read_bytes(), contract, max_bytes=10**7, warn_bytes=10**7)
    assert parsed.errors == [] and parsed.rows_read == len(parsed.rows) > 0
