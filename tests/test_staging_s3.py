"""Staging on S3-compatible object storage (`SFTP_IMPORT_STAGING=s3://…`, as on several machines): the
sync copies into it, the import reads from it, retention deletes from it, and a listing this process
made earlier never hides what another machine wrote since.

The S3 side is moto's server on loopback, spoken to over HTTP by s3fs exactly as a real bucket is (no
S3-compatible server can be installed here); the SFTP side is the real asyncssh server."""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.contract import load_contracts
from tasks import importer, retention, sftp, sync, temporary_names
from tasks.settings import load_settings
from tests.conftest import EXAMPLE_CLIENTS
from tests.importing import contacts, ledger
from tests.sftp_fixtures import SftpTarget

NORTHWIND = load_contracts(EXAMPLE_CLIENTS)["northwind"]
CSV = b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\nada@example.com,Ada,Lovelace,007,,,SMB\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """An S3 endpoint on loopback for the session (s3fs keeps one client per process, as production does)."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_staging(
    asyncssh_target: SftpTarget, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, str]]:
    """A new bucket, staging pointed into it; yields an s3fs of its own (another machine's view of the
    bucket) and the staging folder's path in it."""
    import s3fs

    for key, value in {
        "AWS_ACCESS_KEY_ID": "test-key-id",
        "AWS_SECRET_ACCESS_KEY": "test-not-a-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": s3_endpoint,
    }.items():
        monkeypatch.setenv(key, value)
    bucket = f"staging-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("SFTP_IMPORT_STAGING", f"s3://{bucket}/staging")
    other = s3fs.S3FileSystem(skip_instance_cache=True)
    other.mkdir(bucket)
    yield other, f"{bucket}/staging"


def put(folder: Path, name: str, data: bytes) -> None:
    path = folder / name
    path.write_bytes(data)
    stamp = time.time() - 3600
    os.utime(path, (stamp, stamp))


def run_sync(now: datetime) -> sync.ClientSyncResult:
    settings = load_settings()
    with sftp.connect(settings.sftp) as connection:
        return sync.sync_client(connection, settings, NORTHWIND, now)


def staged_names(result: sync.ClientSyncResult) -> list[str]:
    return [f.name for f in result.files if f.outcome == "staged"]


def test_sync_import_and_retention_on_s3_staging(asyncssh_target: SftpTarget, s3_staging: tuple[Any, str]) -> None:
    bucket, staging = s3_staging
    settings = load_settings()
    put(asyncssh_target.client_dir("northwind"), "monday.csv", CSV)
    now = datetime.now(UTC)

    assert staged_names(run_sync(now)) == ["monday.csv"]
    staged = f"{staging}/northwind/monday.csv"
    assert bucket.cat_file(staged) == CSV  # whole, under its own name
    assert bucket.find(f"{staging}/{temporary_names.TMP_DIR}") == []  # no temporary copy left
    row = ledger(settings, "northwind")["monday.csv"]
    assert (row["status"], row["sha256"]) == ("staged", hashlib.sha256(CSV).hexdigest())

    result = importer.import_client(
        settings, NORTHWIND, ["monday.csv"], run_id="s3-run", kind="daily", cutoff=None, started_at=now
    )
    assert [o.status for o in result.outcomes] == ["imported"]
    assert [c[NORTHWIND.email_field.id] for c in contacts(settings, NORTHWIND)] == ["ada@example.com"]

    later = now + timedelta(days=settings.retention_days + 1)
    with sftp.connect(settings.sftp) as connection:
        purge = retention.purge_client(connection, settings, NORTHWIND, later)
    assert purge.summary()["staging"] == 1
    assert not bucket.exists(staged)
    assert ledger(settings, "northwind")["monday.csv"]["purged_at"] is not None


def test_a_listing_made_earlier_never_hides_what_another_machine_wrote(
    asyncssh_target: SftpTarget, s3_staging: tuple[Any, str]
) -> None:
    """A long-lived process sweeps every copy a crashed sync left on another machine, and imports what that
    machine's sync staged, although it listed the same folder before they were written."""
    bucket, staging = s3_staging
    settings = load_settings()
    now = datetime.now(UTC)
    incoming = f"{staging}/{temporary_names.TMP_DIR}/northwind"
    bucket.pipe_file(f"{incoming}/first.part", b"half a file")  # a copy in progress on another machine
    assert sftp.remove_stale_temporaries(settings.staging_url, "northwind", now) == 0  # recent: kept, listed
    bucket.pipe_file(f"{incoming}/second.part", b"half a file")  # then that machine's sync dies mid-copy
    assert sftp.remove_stale_temporaries(settings.staging_url, "northwind", now + timedelta(hours=7)) == 2
    assert bucket.find(incoming) == []

    bucket.pipe_file(f"{staging}/northwind/tuesday.csv", CSV)  # staged by another machine
    prepared = importer.prepare_file(settings, NORTHWIND, "tuesday.csv")
    assert prepared.sha256 == hashlib.sha256(CSV).hexdigest()
