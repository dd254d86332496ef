"""`sftp-import erase` (GDPR art. 17): the person leaves the contacts, the row errors and the staged
copies, the erasure is logged without the address, and the DuckDB file's bytes no longer hold it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from flows.cli import main
from tasks import store
from tasks.errors import RowError
from tasks.settings import load_settings
from tasks.staging import staged_url
from tasks.store import DuckDBStore, Store
from tests.importing import CLIENTS, contacts, import_file, ledger, stage_bytes

NORTHWIND = CLIENTS["northwind"]
HEADER = "Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\r\n"
ADDRESS = "Zed.Secret@Example.org"
JAN = (
    HEADER
    + "ada@example.com,Ada,Lovelace,001,01/01/2026,10.5,SMB\r\n"
    + " Zed.Secret@Example.org ,Zed,Secret,002,02/01/2026,20,SMB\r\n"
    + "zed.secret@example.org,Zed,Secret,002,02/01/2026,not-a-number,SMB\r\n"  # a row error of the person
    + "bo@example.com,Bo,Berg,003,03/01/2026,30,Enterprise\r\n"
    + "bo@example.com,Bo,Berg,003,03/01/2026,lots,Enterprise\r\n"  # someone else's row error: stays
)
FEB_KEPT = (
    HEADER + 'cara@example.com,Cara,"multi\r\nline",004,04/02/2026,1,SMB\r\n',
    "dan@example.com,Dan,Dee,005,05/02/2026,2,SMB\r\n",
)
FEB = FEB_KEPT[0] + 'zed.secret@example.org,Zed,"Se\ncret",002,06/02/2026,3,SMB\r\n' + FEB_KEPT[1]
MAR = (
    "<contacts><contact><email>zed.secret@example.org</email></contact>"
    "<contact><email>eve@example.com</email></contact></contacts>"
)
APR = HEADER + "fay@example.com,Fay,Fox,006,01/04/2026,4,SMB\r\n"


def store_bytes(backend: Store) -> bytes:
    """Every byte of the store's files: DuckDB's database and write-ahead log; PostgreSQL's tables and
    indexes of the store's database, after a checkpoint (its WAL is recycled later: see the README)."""
    if isinstance(backend, DuckDBStore):
        return b"".join(p.read_bytes() for p in sorted(backend.path.parent.glob("store.duckdb*")) if p.is_file())
    with backend.read() as con:
        con.execute("CHECKPOINT")
        (folder,) = con.execute("SHOW data_directory").fetchone()
        (oid,) = con.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
    return b"".join(p.read_bytes() for p in sorted((Path(folder) / "base" / str(oid)).iterdir()) if p.is_file())


def holds_address(data: bytes) -> bool:
    return ADDRESS.lower().encode() in data.lower()


def test_erase_removes_the_person_everywhere_and_logs_no_address(
    home: Path, backend: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = load_settings()
    for name, text in (("jan.csv", JAN), ("feb.csv", FEB), ("mar.xml", MAR), ("apr.csv", APR)):
        stage_bytes(settings, "northwind", name, text.encode())
    import_file(settings, NORTHWIND, "jan.csv", "run-1")
    with settings.store.write() as con:  # an old message that quoted an address
        store.record_row_errors(con, "northwind", "old.csv", [RowError(2, "Email", f"bad {ADDRESS.upper()}")])
    assert {c["email"] for c in contacts(settings, NORTHWIND)} == {"ada@example.com", ADDRESS, "bo@example.com"}
    assert holds_address(store_bytes(backend))  # the check below can fail

    assert main(["erase", "--client", "northwind", "--email", f"  {ADDRESS.upper()} ", "--by", "dpo-ticket-42"]) == 0
    out = capsys.readouterr().out
    assert "erased 1 contact(s), 2 row error(s), 3 staged file(s)" in out and not holds_address(out.encode())

    assert {c["email"] for c in contacts(settings, NORTHWIND)} == {"ada@example.com", "bo@example.com"}
    with settings.store.read() as con:
        assert [e["line"] for e in store.file_errors(con, "northwind", "jan.csv")] == [6]  # Bo's stays
        assert store.file_errors(con, "northwind", "old.csv") == []
        (logged,) = store.erasure_log(con, "northwind")
    assert logged["erased_by"] == "dpo-ticket-42" and (logged["contacts"], logged["row_errors"]) == (1, 2)
    assert (logged["files_rewritten"], logged["files_deleted"]) == (2, 1)
    assert not holds_address(repr(logged).encode())

    staged = {
        n: Path(staged_url(settings.staging_url, "northwind", n)) for n in ("jan.csv", "feb.csv", "mar.xml", "apr.csv")
    }
    assert staged["feb.csv"].read_bytes() == "".join(FEB_KEPT).encode()  # the record alone, every other byte kept
    assert not staged["mar.xml"].exists()
    assert staged["apr.csv"].read_bytes() == APR.encode()
    rows = ledger(settings, "northwind")
    assert rows["feb.csv"]["sha256"] == hashlib.sha256(staged["feb.csv"].read_bytes()).hexdigest()
    assert (rows["mar.xml"]["status"], rows["mar.xml"]["code"]) == ("rejected", "erased")
    assert "erased on request" in rows["mar.xml"]["reason"]
    everything = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert not holds_address(everything + store_bytes(backend))  # store, staging, temporaries: nowhere

    assert import_file(settings, NORTHWIND, "feb.csv", "run-2").status == "imported"  # the new hash is accepted
    emails = {c["email"] for c in contacts(settings, NORTHWIND)}
    assert emails == {"ada@example.com", "bo@example.com", "cara@example.com", "dan@example.com"}


def test_erase_refuses_what_is_not_an_address(home: Path) -> None:
    with pytest.raises(SystemExit, match="not an email address"):
        main(["erase", "--client", "northwind", "--email", "zed"])
