"""The `samples/` folder in each client's SFTP folder: valid samples and the rules, following the contract."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from schemas.contract import Contract, load_contracts
from schemas.samples import SAMPLE_ROWS
from tasks import samples_folder, sftp
from tasks.settings import load_settings
from tasks.validate import parse_file
from tests.client_folder import read_folder
from tests.conftest import EXAMPLE_CLIENTS
from tests.sftp_fixtures import SftpTarget

NAMES = {"northwind-sample.csv", "northwind-sample.xlsx", "northwind-sample.xml", "README.txt"}


def assert_valid(contract: Contract, files: dict[str, bytes]) -> None:
    """Every sample reads with the contract's rows and zero errors, as the import would read it."""
    for name, data in files.items():
        if name != samples_folder.README:
            parsed = parse_file(name, data, contract, max_bytes=10**8, warn_bytes=10**8)
            assert (parsed.rows_read, len(parsed.rows), parsed.errors, parsed.warnings) == (SAMPLE_ROWS, 3, [], [])


@pytest.fixture
def clients(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clients folder of the example contracts that the test may change."""
    folder = tmp_path / "clients"
    shutil.copytree(EXAMPLE_CLIENTS, folder)
    monkeypatch.setenv("SFTP_IMPORT_CLIENTS_DIR", str(folder))
    return folder


@pytest.mark.usefixtures("prefect_harness")
def test_the_sync_writes_samples_that_validate_and_follows_the_contract(
    asyncssh_target: SftpTarget, clients: Path
) -> None:
    from flows.hourly_sync import hourly_sync

    contracts = load_contracts(clients)
    for contract in contracts.values():
        asyncssh_target.client_dir(contract.directory)
    assert hourly_sync(return_state=True).is_completed()
    files = read_folder("northwind", "samples")
    assert set(files) == NAMES
    assert_valid(contracts["northwind"], files)
    readme = files["README.txt"].decode()
    assert re.findall(r"^  \d+\. (.+?) <", readme, re.M) == [f.name for f in contracts["northwind"].fields]
    for rule in ("a comma (,)", "Save as UTF-8", "At most 5,000 contact rows", "Daily import: 06:00 Europe/Amsterdam"):
        assert rule in readme
    assert "Purchase Date <purchase_date>: a date, DD/MM/YYYY or YYYY-MM-DD" in readme
    assert "a semicolon (;)" in read_folder("contoso", "samples")["README.txt"].decode()

    local = asyncssh_target.local_root / "northwind" / "samples"
    for path in local.iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    assert hourly_sync(return_state=True).is_completed()  # the contract is unchanged: nothing written
    assert {path.stat().st_mtime for path in local.iterdir()} == {1_000_000_000}

    contract_file = clients / "northwind.yaml"
    text = contract_file.read_text().replace('import_time: "06:00"', 'import_time: "07:15"')
    contract_file.write_text(text + "  - {name: Phone, xml: phone, type: string}\n")
    assert hourly_sync(return_state=True).is_completed()
    changed = read_folder("northwind", "samples")
    assert changed["northwind-sample.csv"].splitlines()[0].endswith(b",Phone")
    assert "Daily import: 07:15 Europe/Amsterdam" in changed["README.txt"].decode()
    assert "8. Phone <phone>: text" in changed["README.txt"].decode()
    assert_valid(load_contracts(clients)["northwind"], changed)


def test_samples_over_openssh_written_once_per_contract(openssh_target: SftpTarget) -> None:
    contract = load_contracts(EXAMPLE_CLIENTS)["contoso"]
    openssh_target.client_dir(contract.directory)
    with sftp.connect(load_settings().sftp) as connection:
        written = samples_folder.refresh(connection, contract, None)
        assert written == samples_folder.digest(contract)
        assert samples_folder.refresh(connection, contract, written) is None  # up to date: nothing written
    files = read_folder("contoso", "samples")
    assert set(files) == {name.replace("northwind", "contoso") for name in NAMES}
    assert_valid(contract, files)


def test_a_folder_that_cannot_be_written_is_left_for_the_next_pass(asyncssh_target: SftpTarget) -> None:
    contract = load_contracts(EXAMPLE_CLIENTS)["northwind"]
    (asyncssh_target.client_dir("northwind") / "samples").write_bytes(b"a file where the folder goes")
    with sftp.connect(load_settings().sftp) as connection:
        assert samples_folder.refresh(connection, contract, None) is None
