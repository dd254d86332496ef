"""What the demo's sample clients upload: their sample files in every format, plus files that show
each kind of problem (bad rows, wrong header, wrong separator, unsafe XML, unaccepted extension,
duplicates and merges). Plain bytes, made from the contracts, uploaded over SFTP as a client would."""

from __future__ import annotations

from typing import Any

from schemas.contract import Contract
from schemas.samples import sample_records, write_rows, write_sample
from tasks.settings import SftpSettings

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE contacts [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<contacts><contact><email>&b;</email></contact></contacts>
"""


def _with_bad_rows(contract: Contract) -> bytes:
    """The sample CSV plus rows that fail: an invalid email, a missing email, a wrong field count."""
    good = write_sample(contract, "csv").decode("utf-8").rstrip("\r\n").splitlines()
    sep = contract.csv.delimiter
    bad = [
        sep.join(["not-an-email", *good[1].split(sep)[1:]]),
        sep.join(["", *good[2].split(sep)[1:]]),
        sep.join(["short@example.com", "only two"]),
    ]
    return ("\n".join([*good, *bad]) + "\n").encode("utf-8")


def _duplicates_and_merges(contract: Contract) -> bytes:
    """The sample rows twice (exact duplicates), then the first contact again under its email in capitals
    with one field changed and the others empty (merged: the new value wins, empty values erase nothing)."""
    records = sample_records(contract)
    email = contract.email_field.id
    again: dict[str, Any] = {field.id: None for field in contract.fields}
    again[email] = str(records[0][email]).upper()
    changed = next(f for f in contract.fields if f.type == "string")
    again[changed.id] = "Updated"
    return write_rows(contract, [*records, *records, again], "csv")


def demo_uploads(contract: Contract) -> dict[str, bytes]:
    """File name -> bytes that this client uploads in the demo."""
    files = {
        f"{contract.id}-sample.csv": write_sample(contract, "csv"),
        f"{contract.id}-sample.xlsx": write_sample(contract, "xlsx"),
        f"{contract.id}-sample.xml": write_sample(contract, "xml"),
    }
    if contract.id == "northwind":
        files["northwind-with-bad-rows.csv"] = _with_bad_rows(contract)
        files["northwind-duplicates.csv"] = _duplicates_and_merges(contract)
        files["northwind-bomb.xml"] = BILLION_LAUGHS
        files["northwind-notes.pdf"] = b"%PDF-1.4 not a contact list"
    if contract.id == "contoso":
        wrong_separator = write_sample(contract, "csv").replace(b";", b",")
        files["contoso-comma-separated.csv"] = wrong_separator
        files["contoso-sample-copy.csv"] = files["contoso-sample.csv"]  # same bytes, new name: flagged
    return files


def upload_demo_files(sftp: SftpSettings, contracts: dict[str, Contract]) -> None:
    """Each client's demo files into its (existing) folder on the SFTP server; one line per client."""
    from tasks.sftp import connect

    with connect(sftp) as session:
        for contract in contracts.values():
            uploads = demo_uploads(contract)
            for name, data in uploads.items():
                session.fs.pipe_file(session.path(contract.directory, name), data)
            print(f"  {contract.id}: uploaded {', '.join(uploads)}")
