"""The result documents in the clients' `results/` folders, read over SFTP as a client's script reads them."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from schemas.contract import load_contracts
from schemas.samples import write_sample
from tasks import report, results, retention, sftp, store, sync
from tasks.errors import RejectCode
from tasks.pickup import PickupCheck, check_staged
from tasks.settings import load_settings
from tests.client_folder import SCHEMA, VALIDATOR, documents, put, read_folder
from tests.conftest import EXAMPLE_CLIENTS
from tests.sftp_fixtures import SftpTarget

pytestmark = pytest.mark.usefixtures("backend")  # every test on DuckDB and on PostgreSQL

CONTRACTS = load_contracts(EXAMPLE_CLIENTS)
NORTHWIND = CONTRACTS["northwind"]
HEADER = "Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\n"
BAD_ROWS = (
    HEADER
    + "anna@example.com,Anna,Jansen,00123,15/01/2024,19.99,SMB\n"
    + "not-an-email,Bram,,,,,\n"  # line 3: the email is not one
    + ",Chloe,,,,,\n"  # line 4: no email
    + "dan@example.com,Dan,,,,bob@example.org,SMB\n"  # line 5: another contact's email as the amount
    + "eve@example.com,Eve,,,31/02/2024,,Huge\n"  # line 6: two errors
).encode()
EMAILS = ("anna@example.com", "dan@example.com", "bob@example.org", "eve@example.com")
SAMPLE = write_sample(NORTHWIND, "csv")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
UPLOADS = {
    "monday.csv": SAMPLE,
    "bad-rows.csv": BAD_ROWS,
    "wrong-header.csv": (HEADER.replace("First Name,Last Name", "Last Name,First Name") + "a@x.io,,,,,,\n").encode(),
    "notes.pdf": b"%PDF-1.4 not a contact list",
    "quiet-day.csv": HEADER.encode(),
    "quiet-day.xml": b'<?xml version="1.0" encoding="UTF-8"?>\n<contacts>\n</contacts>\n',
}


@pytest.fixture(params=["asyncssh_target", "openssh_target"])
def target(request: pytest.FixtureRequest) -> SftpTarget:
    """Each of the suite's real SFTP servers in turn, with a folder per example client."""
    found: SftpTarget = request.getfixturevalue(request.param)
    for contract in CONTRACTS.values():
        found.client_dir(contract.directory)
    return found


def _utc(moment: dict[str, str]) -> datetime:
    return datetime.fromisoformat(moment["utc"])


def publish_due() -> list[store.ResultKey]:
    """What the flows do after their store work: write the due documents, record them written."""
    settings = load_settings()
    with settings.store.read() as con:
        due = results.pending_documents(con, CONTRACTS, settings.retention_days)
    written = [key for cid, docs in due.items() for key in results.publish(settings, CONTRACTS[cid], docs)]
    with settings.store.write() as con:
        store.record_results_written(con, written, datetime.now(UTC))
    return written


def pending(client: str) -> list[str]:
    with load_settings().store.read() as con:
        return [row["name"] for row in store.pending_results(con, [client])]


# --- the document, as a plain function --------------------------------------------------------------


def ledger_row(**values: Any) -> dict[str, Any]:
    """A ledger row as `store.result_files` returns it: a staged CSV with its pickup check."""
    row: dict[str, Any] = dict.fromkeys(store.RESULT_COLUMNS.replace(" ", "").split(","))
    check = PickupCheck("ok", "csv", "utf-8", ",", ["Email"], rows=3).to_json()
    return row | {"name": "a.csv", "status": "staged", "size": 120, "sha256": "0" * 64, "pickup": check} | values


@pytest.mark.parametrize(
    ("received", "import_at", "late"),
    [  # Europe/Amsterdam, 06:00 (CET: 05:00 UTC)
        (datetime(2026, 3, 2, 4, 59, tzinfo=UTC), datetime(2026, 3, 2, 5, 0, tzinfo=UTC), False),
        (datetime(2026, 3, 2, 5, 0, tzinfo=UTC), datetime(2026, 3, 3, 5, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 2, 22, 30, tzinfo=UTC), datetime(2026, 3, 3, 5, 0, tzinfo=UTC), True),  # 23:30 local
    ],
)
def test_a_received_file_says_when_it_will_be_imported(received: datetime, import_at: datetime, late: bool) -> None:
    document = results.result_document(NORTHWIND, ledger_row(received_at=received), [], received, 35)
    VALIDATOR.validate(document)
    assert document["status"] == "received" and document["pickup_check"]["rows"] == 3
    assert _utc(document["received"]["import_at"]) == import_at
    assert document["received"]["import_at"]["local"] == import_at.astimezone(NORTHWIND.zone).isoformat()
    assert document["received"]["after_cutoff"] is late
    assert ("after today's import time (06:00 Europe/Amsterdam)" in document["summary"]) is late
    assert (
        "to be imported at " + import_at.astimezone(NORTHWIND.zone).strftime("%Y-%m-%d 06:00 CET")
        in (document["summary"])
    )
    assert _utc(document["kept_until"]) == received + timedelta(days=35)


def test_the_schema_knows_every_reject_code_and_refuses_a_partial_document() -> None:
    assert SCHEMA["$defs"]["reject_code"]["enum"] == [code.value for code in RejectCode]
    document = results.result_document(NORTHWIND, ledger_row(received_at=NOW), [], NOW, 35)
    for missing in ("status", "received", "import"):
        assert not VALIDATOR.is_valid({k: v for k, v in document.items() if k != missing})
    assert not VALIDATOR.is_valid(document | {"status": "imported"})  # imported needs its statistics


def test_a_pickup_check_that_cannot_run_says_so_and_never_raises(home: Path) -> None:
    check = check_staged(load_settings(), NORTHWIND, "gone.csv")  # no staged copy to read
    assert (check.outcome, check.rows, check.rejection) == ("not_checked", 0, None)
    document = results.result_document(NORTHWIND, ledger_row(received_at=NOW, pickup=check.to_json()), [], NOW, 35)
    VALIDATOR.validate(document)
    assert document["summary"] == (
        "Received after today's import time (06:00 Europe/Amsterdam); to be imported at 2026-03-03 06:00 CET."
        " The check at pickup could not run; the import will say what it finds."
    )


def test_errors_csv_cells_are_neutralised_against_formulas() -> None:
    errors = [{"line": 2, "field": "=Total", "message": "@SUM(A1) is not a number."}]
    assert results.errors_csv(errors).decode() == "line,field,message\n2,'=Total,'@SUM(A1) is not a number.\n"


# --- the client's folder, over both real SFTP servers ------------------------------------------------


@pytest.mark.usefixtures("prefect_harness")
def test_every_upload_gets_a_result_the_client_reads_over_sftp(target: SftpTarget) -> None:
    from flows.daily_import import daily_import
    from flows.hourly_sync import hourly_sync

    folder = target.local_root / NORTHWIND.directory
    for name, data in UPLOADS.items():
        put(folder, name, data)
    assert hourly_sync(return_state=True).is_completed()

    received = documents("northwind")  # each validated against the schema
    assert set(received) == set(UPLOADS)
    assert {name: d["status"] for name, d in received.items()} == {
        **dict.fromkeys(UPLOADS, "received"),
        "notes.pdf": "rejected",
    }
    check = {name: d["pickup_check"] for name, d in received.items()}
    assert check["monday.csv"]["outcome"] == "ok" and check["monday.csv"]["rows"] == 3
    assert check["monday.csv"]["columns"] == HEADER.strip().split(",")
    assert (check["bad-rows.csv"]["rows"], check["bad-rows.csv"]["row_errors"]) == (5, 5)
    assert check["bad-rows.csv"]["rows_with_errors"] == 4
    assert [(e["line"], e["field"]) for e in check["bad-rows.csv"]["first_row_errors"]] == [
        (3, "Email"),
        (4, "Email"),
        (5, "Amount"),
        (6, "Purchase Date"),
        (6, "Segment"),
    ]
    assert check["wrong-header.csv"]["outcome"] == "rejected"
    assert check["wrong-header.csv"]["rejection"]["code"] == "header"
    assert "will be rejected" in received["wrong-header.csv"]["summary"]
    assert (check["quiet-day.csv"]["outcome"], check["quiet-day.csv"]["rows"]) == ("ok", 0)
    assert (check["quiet-day.xml"]["outcome"], check["quiet-day.xml"]["rows"]) == ("ok", 0)
    assert check["notes.pdf"] is None and received["notes.pdf"]["rejection"]["code"] == "extension"
    monday = received["monday.csv"]
    assert _utc(monday["received"]["import_at"]) == NORTHWIND.next_cutoff(_utc(monday["received"]["at"]))
    assert monday["received"]["sha256"] == __import__("hashlib").sha256(SAMPLE).hexdigest()

    assert daily_import(client="northwind", now=True, return_state=True).is_completed()
    imported = documents("northwind")
    assert imported["monday.csv"]["status"] == "imported"
    assert imported["monday.csv"]["import"]["rows_imported"] == 3
    assert imported["monday.csv"]["import"]["errors_file"] is None
    bad = imported["bad-rows.csv"]["import"]
    assert (bad["rows_read"], bad["rows_imported"], bad["rows_rejected"]) == (5, 1, 4)
    assert bad["errors_file"] == "results/bad-rows.csv.errors.csv"
    assert imported["wrong-header.csv"]["status"] == "rejected"
    assert imported["wrong-header.csv"]["rejection"]["code"] == "header"
    for quiet in ("quiet-day.csv", "quiet-day.xml"):
        assert imported[quiet]["status"] == "imported" and imported[quiet]["import"]["rows_read"] == 0
        assert imported[quiet]["summary"] == "Imported: 0 rows (no contact rows)."
    assert imported["notes.pdf"] == received["notes.pdf"]  # unchanged since: not rewritten
    csv_text = read_folder("northwind", "results")["bad-rows.csv.errors.csv"].decode()
    assert csv_text.splitlines()[0] == "line,field,message"
    assert [line.split(",")[:2] for line in csv_text.splitlines()[1:]] == [
        ["3", "Email"],
        ["4", "Email"],
        ["5", "Amount"],
        ["6", "Purchase Date"],
        ["6", "Segment"],
    ]
    shown = csv_text + json.dumps(imported)
    assert not [email for email in EMAILS if email in shown]  # no value of any row, emails least of all

    settings = load_settings()
    rows, markdown = report.build_reports(settings, {"northwind": NORTHWIND}, datetime.now(UTC))["northwind"]
    quiet_rows = [row for row in rows if row["name"].startswith("quiet-day")]
    assert [(row["status"], row["rows_read"]) for row in quiet_rows] == [("imported", 0), ("imported", 0)]
    assert "quiet-day" not in markdown.split("### Needs attention")[-1]

    put(folder, "monday.csv", SAMPLE + b"zoe@example.com,Zoe,,,,,\n", age=1800)  # a re-upload under a used name
    put(folder, "tuesday.csv", SAMPLE)  # monday's bytes under a new name
    state = hourly_sync(return_state=True)
    assert state.result()["clients"]["northwind"]["listed"] == len(UPLOADS) + 1  # results/ and samples/ not taken
    later = documents("northwind")
    assert later["monday.csv"]["status"] == "imported"
    assert later["monday.csv"]["import"] == imported["monday.csv"]["import"]  # the first upload's outcome stands
    assert [i["size"] for i in later["monday.csv"]["ignored"]] == [len(SAMPLE) + 25]
    assert "upload it under a new name" in later["monday.csv"]["ignored"][0]["message"]
    assert later["tuesday.csv"]["received"]["same_content_as"] == "monday.csv"
    assert "same content as monday.csv" in later["tuesday.csv"]["summary"]
    assert pending("northwind") == []


@pytest.mark.usefixtures("prefect_harness")
def test_a_write_that_fails_fails_nothing_and_is_retried_at_the_next_pass(asyncssh_target: SftpTarget) -> None:
    """A `results` file where the folder should be: every write into it fails until it is gone."""
    from flows.daily_import import daily_import
    from flows.hourly_sync import hourly_sync

    for contract in CONTRACTS.values():
        asyncssh_target.client_dir(contract.directory)
    northwind = asyncssh_target.local_root / "northwind"
    put(northwind, "results", b"in the way")
    put(northwind, "monday.csv", SAMPLE)
    put(asyncssh_target.local_root / "contoso", "c.csv", write_sample(CONTRACTS["contoso"], "csv"))
    assert hourly_sync(return_state=True).is_completed()
    assert set(documents("contoso")) == {"c.csv"}  # the other client is not held up
    assert pending("northwind") == ["monday.csv", "results"]

    assert daily_import(client="northwind", now=True, return_state=True).is_completed()
    assert pending("northwind") == ["monday.csv", "results"]

    (northwind / "results").unlink()
    assert hourly_sync(return_state=True).is_completed()
    written = documents("northwind")
    assert written["monday.csv"]["status"] == "imported" and written["results"]["status"] == "rejected"
    assert pending("northwind") == []


@pytest.mark.parametrize("server", ["asyncssh_target", "openssh_target"])
def test_a_client_reading_while_the_platform_writes_never_sees_part_of_a_document(
    server: str, request: pytest.FixtureRequest
) -> None:
    target: SftpTarget = request.getfixturevalue(server)
    target.client_dir("northwind")
    settings = load_settings()
    versions = [json.dumps({"n": n, "pad": "x" * (200_000 if n % 2 else 10)}).encode() for n in range(40)]
    seen: list[int] = []
    done = threading.Event()

    def read_in_a_loop() -> None:
        with sftp.connect(settings.sftp) as client:
            path = client.path("northwind", "results/a.csv.json")
            while not done.is_set():
                seen.append(json.loads(client.fs.cat_file(path))["n"])  # a partial document does not parse

    with sftp.connect(settings.sftp) as platform:
        platform.write_atomic("northwind", "results/a.csv.json", versions[0])
        reader = threading.Thread(target=read_in_a_loop)
        reader.start()
        try:
            for data in versions[1:]:
                platform.write_atomic("northwind", "results/a.csv.json", data)  # the reader reads on meanwhile
                reads = len(seen) + 2  # the second read from now starts after the write: it sees this version
                deadline = time.monotonic() + 30
                while len(seen) < reads and reader.is_alive() and time.monotonic() < deadline:
                    time.sleep(0.001)
        finally:
            done.set()
            reader.join()
    assert len(seen) >= 2 * (len(versions) - 1) and seen == sorted(seen) and seen[-1] == len(versions) - 1
    assert sorted(p.name for p in (target.local_root / "northwind" / "results").iterdir()) == ["a.csv.json"]


def test_without_posix_rename_the_old_document_is_replaced(
    asyncssh_target: SftpTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that does not offer the extension: the old document is removed, then the new one renamed."""

    async def unsupported(self: Any, old: Any, new: Any) -> None:
        raise asyncssh.SFTPOpUnsupported("POSIX rename not supported")

    monkeypatch.setattr(asyncssh.SFTPClient, "posix_rename", unsupported)
    asyncssh_target.client_dir("northwind")
    with sftp.connect(load_settings().sftp) as connection:
        connection.write_atomic("northwind", "results/a.csv.json", b"{}")
        connection.write_atomic("northwind", "results/a.csv.json", b'{"n": 2}')
    assert read_folder("northwind", "results") == {"a.csv.json": b'{"n": 2}'}


# --- retention ------------------------------------------------------------------------------------------


def test_retention_deletes_a_result_with_its_upload_and_logs_it(asyncssh_target: SftpTarget) -> None:
    settings = load_settings()
    now = datetime.now(UTC).replace(microsecond=0)
    folder = asyncssh_target.client_dir("northwind")
    put(folder, "old.csv", BAD_ROWS, age=41 * 86400)
    with sftp.connect(settings.sftp) as connection:
        sync.sync_client(connection, settings, NORTHWIND, now - timedelta(days=40))
        put(folder, "recent.csv", SAMPLE)
        sync.sync_client(connection, settings, NORTHWIND, now)
    publish_due()
    put(folder / "results", ".old.csv.json.0123.tmp", b'{"n"', age=50 * 86400)  # left by a killed write
    assert set(read_folder("northwind", "results")) == {"old.csv.json", "recent.csv.json", ".old.csv.json.0123.tmp"}

    with sftp.connect(settings.sftp) as connection:
        purged = retention.purge_client(connection, settings, NORTHWIND, now)
    assert purged.summary()["results"] == 2
    assert set(read_folder("northwind", "results")) == {"recent.csv.json"}
    with settings.store.read() as con:
        logged = {(row["name"], row["location"]) for row in store.deletion_log(con, "northwind")}
    assert {("old.csv", "results"), (".old.csv.json.0123.tmp", "results")} <= logged

    put(folder, "old.csv", SAMPLE, age=600)  # a re-upload under the purged name: its result says it all
    with sftp.connect(settings.sftp) as connection:
        sync.sync_client(connection, settings, NORTHWIND, now + timedelta(minutes=5))
    publish_due()
    document = documents("northwind")["old.csv"]
    assert document["purged"] is not None and len(document["ignored"]) == 1
    assert "deleted from the folder (retention)" in document["summary"]


def test_a_name_too_long_for_its_result_files_gets_a_short_unique_stem_that_fits(asyncssh_target: SftpTarget) -> None:
    short = "contacts.csv"
    assert results.result_stem(short) == short and results.json_name(short) == "results/contacts.csv.json"
    longest = ("é" * 125) + "x.csv"  # 255 bytes: the most a file name can hold
    twin = ("é" * 125) + "y.csv"
    stems = {results.result_stem(longest), results.result_stem(twin)}
    assert len(stems) == 2  # two names alike in their first bytes: two stems
    for stem in stems:
        assert stem.startswith("é" * 50) and "~" in stem and len(stem.encode()) <= 226
    asyncssh_target.client_dir("northwind")
    with sftp.connect(load_settings().sftp) as connection:  # the names fit a real filesystem, temporary ones too
        connection.write_atomic("northwind", results.errors_name(longest), b"line,field,message\n")
        connection.write_atomic("northwind", results.json_name(longest), b"{}")
    written = sorted(p.name for p in (asyncssh_target.local_root / "northwind" / "results").iterdir())
    assert written == [f"{results.result_stem(longest)}.errors.csv", f"{results.result_stem(longest)}.json"]
    assert [results.result_of(name) for name in written] == [results.result_stem(longest)] * 2
