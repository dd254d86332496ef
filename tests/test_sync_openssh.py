"""The sync against OpenSSH's sshd (internal-sftp, its own config on a high port): skipped only off CI."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from demo.sftp_server import prepare_keys, write_known_hosts
from tasks import sftp
from tasks.settings import load_settings
from tests.sftp_fixtures import SftpTarget
from tests.test_sync import CSV, files, incoming, put, run_sync, staged

pytestmark = pytest.mark.openssh


def test_wrong_host_key_copies_nothing(
    openssh_target: SftpTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(openssh_target.client_dir("contoso"), "contacts.csv")
    other_host_key, _ = prepare_keys(tmp_path / "other")
    wrong = tmp_path / "known_hosts"
    write_known_hosts(wrong, openssh_target.server.host, openssh_target.server.port, other_host_key)
    monkeypatch.setenv("SFTP_IMPORT_SFTP_KNOWN_HOSTS", str(wrong))
    with pytest.raises(sftp.HostKeyRejected):
        run_sync("contoso")
    assert not Path(load_settings().staging_url).exists()


def test_only_complete_regular_new_files_are_staged(openssh_target: SftpTarget) -> None:
    """Symlinks, folders and temp names are passed over; bad extensions rejected; good files staged."""
    secret = put(openssh_target.client_dir("fabrikam"), "secret.csv", b"Email\nceo@fabrikam.example\n")
    folder = openssh_target.client_dir("contoso")
    os.symlink(f"../fabrikam/{secret.name}", folder / "link.csv")
    (folder / "sub.csv").mkdir()
    for name in ("upload.csv.filepart", "~$book.xlsx", ".profile"):
        put(folder, name)
    put(folder, "notes.txt", b"hi")
    put(folder, "monday.csv")
    put(folder, "copy-of-monday.CSV")
    result = run_sync("contoso")
    assert {f.name: f.outcome for f in result.files if f.outcome != "skipped"} == {
        "notes.txt": "rejected",
        "monday.csv": "staged",
        "copy-of-monday.CSV": "staged",
    }
    assert result.count("skipped") == 3
    assert staged(load_settings(), "contoso") == {"monday.csv", "copy-of-monday.CSV"}
    assert set(files("contoso")) == {"notes.txt", "monday.csv", "copy-of-monday.CSV"}
    assert files("contoso")["monday.csv"]["same_content_as"] == "copy-of-monday.CSV"  # sorted: C < m


def test_growing_file_then_reupload(openssh_target: SftpTarget) -> None:
    folder = openssh_target.client_dir("contoso")
    path = put(folder, "live.csv", CSV, age=0)
    mtime = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    assert run_sync("contoso", now=mtime).count("waiting") == 1
    with path.open("ab") as handle:
        handle.write(b"bob@example.com,Bob\n" * 1000)
    assert run_sync("contoso", now=mtime + timedelta(seconds=0.5)).count("waiting") == 1
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert run_sync("contoso", now=later).count("staged") == 1
    assert (Path(load_settings().staging_url) / "contoso" / "live.csv").read_bytes() == path.read_bytes()
    put(folder, "live.csv", b"Email\nnew@example.com\n", age=600)  # the same name again
    for hour in (1, 2, 3):
        assert run_sync("contoso", now=later + timedelta(hours=hour)).count("ignored") == 1
    with sftp.connect(load_settings().sftp) as connection:
        connection.remove("contoso", "live.csv")
        assert connection.list_files("contoso") == []
    assert incoming(load_settings(), "contoso") == []
