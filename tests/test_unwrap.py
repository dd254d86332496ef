"""Compressed and encrypted uploads: round trips made with the real gzip, zip and gpg tools, the zip
shapes refused, bombs refused before they expand, wrong keys and signatures rejected."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from schemas.contract import Contract
from schemas.samples import write_sample
from tasks import formats, sync
from tasks.errors import FileRejected, RejectCode
from tasks.formats import RawTable, read_bytes
from tasks.formats.expansion import MAX_UNCOMPRESSED
from tasks.formats.pgp import PgpKey, PgpSetupError
from tasks.settings import load_settings
from tasks.status import render_table, status_report
from tests.importing import BASE_TIME, CLIENTS, import_file, ledger, stage_bytes
from tests.pgp_keys import Keys, make_keys

NORTHWIND = CLIENTS["northwind"]
BOMB_BYTES = MAX_UNCOMPRESSED + 44 * 1024 * 1024  # zeros: a few hundred KB compressed


def tool(*command: str, cwd: Path) -> None:
    subprocess.run(command, cwd=cwd, capture_output=True, check=True)


def sample(folder: Path, fmt: str, name: str = "contacts") -> Path:
    """The client's sample file, on disk for the tools."""
    path = folder / f"{name}.{fmt}"
    path.write_bytes(write_sample(NORTHWIND, fmt))
    return path


def same_table(a: RawTable, b: RawTable) -> bool:
    return (a.format, a.header, a.rows, a.lines, a.row_errors) == (b.format, b.header, b.rows, b.lines, b.row_errors)


def refused(name: str, data: bytes, contract: Contract = NORTHWIND, pgp: PgpKey | None = None) -> FileRejected:
    with pytest.raises(FileRejected) as exc:
        read_bytes(name, data, contract, pgp)
    assert exc.value.file == name  # the message names the uploaded file
    return exc.value


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("contacts.csv.gz", True),
        ("CONTACTS.XML.GZ", True),
        ("april.zip", True),
        ("contacts.xml.pgp", True),
        ("contacts.csv.gz.gpg", True),
        ("contacts.xlsx.asc", True),
        ("april.zip.gpg", True),
        ("contacts.gz", False),  # no format inside the name
        ("contacts.txt.gz", False),
        ("contacts.gpg", False),
        ("contacts.csv.gpg.gz", False),  # encryption goes last
        ("contacts.csv.gz.gz", False),
    ],
)
def test_the_sync_accepts_wrapped_names(name: str, accepted: bool) -> None:
    assert formats.accepts(name) is accepted


def test_the_refusal_says_what_may_be_wrapped() -> None:
    reason = sync.rejected_extension_reason("contacts.txt.gz")
    assert reason.startswith("the extension .txt.gz is not accepted; accepted: .csv, .xls, .xlsx, .xml")
    assert "gzip-compressed (.csv.gz) or alone in a .zip, and/or PGP-encrypted (.pgp, .gpg, .asc" in reason


@pytest.mark.parametrize("fmt", ["csv", "xml", "xlsx"])
def test_gzip_round_trip(tmp_path: Path, fmt: str) -> None:
    plain = sample(tmp_path, fmt)
    tool("gzip", "--keep", plain.name, cwd=tmp_path)
    table = read_bytes(f"{plain.name}.gz", (tmp_path / f"{plain.name}.gz").read_bytes(), NORTHWIND)
    assert same_table(table, read_bytes(plain.name, plain.read_bytes(), NORTHWIND))
    assert table.rows and table.described_format == f"{fmt} (gzip)" and table.file == f"{plain.name}.gz"


def test_zip_round_trip_detects_the_file_inside(tmp_path: Path) -> None:
    plain = sample(tmp_path, "xml")
    tool("zip", "-q", "april.zip", plain.name, cwd=tmp_path)
    table = read_bytes("april.zip", (tmp_path / "april.zip").read_bytes(), NORTHWIND)
    assert same_table(table, read_bytes(plain.name, plain.read_bytes(), NORTHWIND))
    assert table.described_format == "xml (zip)"


def _several(folder: Path) -> list[str]:
    sample(folder, "csv", "b")
    return ["a.zip", "contacts.csv", "b.csv"]


def _folder(folder: Path) -> list[str]:
    (folder / "export").mkdir()
    shutil.copy(folder / "contacts.csv", folder / "export")
    return ["-r", "a.zip", "export"]


def _path_in_name(folder: Path) -> list[str]:
    _folder(folder)
    return ["-D", "a.zip", "export/contacts.csv"]  # no folder entry: the path is in the file's name


def _not_accepted(folder: Path) -> list[str]:
    (folder / "notes.txt").write_text("hello")
    return ["a.zip", "notes.txt"]


@pytest.mark.parametrize(
    ("arguments", "code", "says"),
    [
        (_several, RejectCode.ARCHIVE, "it holds 2 files"),
        (_folder, RejectCode.ARCHIVE, "it has folders or paths (export/"),
        (_path_in_name, RejectCode.ARCHIVE, "it has folders or paths (export/contacts.csv)"),
        (lambda _: ["-P", "zip-password", "a.zip", "contacts.csv"], RejectCode.ENCRYPTED, "password-protected"),
        (_not_accepted, RejectCode.EXTENSION, "The zip holds notes.txt, not an accepted file"),
    ],
    ids=["several-files", "folder", "path-in-name", "encrypted-entry", "not-accepted-inside"],
)
def test_zip_shapes_refused_saying_what_to_send(
    tmp_path: Path, arguments: Callable[[Path], list[str]], code: RejectCode, says: str
) -> None:
    sample(tmp_path, "csv")
    tool("zip", "-q", *arguments(tmp_path), cwd=tmp_path)
    rejection = refused("a.zip", (tmp_path / "a.zip").read_bytes())
    assert rejection.code == code and says in rejection.message
    assert "Send a .zip holding exactly one .csv, .xls, .xlsx or .xml file, at its top level" in rejection.message


def test_content_that_is_not_what_the_name_says(tmp_path: Path) -> None:
    csv = write_sample(NORTHWIND, "csv")
    assert refused("contacts.csv.gz", csv).code == RejectCode.ARCHIVE
    assert refused("contacts.zip", csv).code == RejectCode.ARCHIVE
    plain = sample(tmp_path, "csv")
    tool("gzip", plain.name, cwd=tmp_path)
    cut = (tmp_path / "contacts.csv.gz").read_bytes()[:-12]
    assert refused("contacts.csv.gz", cut).code == RejectCode.CORRUPT


# --- bombs ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zeros(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sparse `contacts.csv` of zeros beyond the cap (no disk used), for the tools to compress."""
    folder = tmp_path_factory.mktemp("bombs")
    with (folder / "contacts.csv").open("wb") as out:
        out.truncate(BOMB_BYTES)
    return folder


def _lying_zip(data: bytes) -> bytes:
    """The zip with its member's uncompressed size declared as 1,000 bytes (local and central headers)."""
    patched = bytearray(data)
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = patched.index(signature) + offset
        patched[at : at + 4] = (1000).to_bytes(4, "little")
    return bytes(patched)


@pytest.mark.parametrize(
    ("name", "command", "lie", "code", "most"),
    [
        ("contacts.csv.gz", ["gzip", "-1", "--keep", "contacts.csv"], None, RejectCode.UNSAFE, MAX_UNCOMPRESSED),
        ("bomb.zip", ["zip", "-q", "-1", "bomb.zip", "contacts.csv"], None, RejectCode.UNSAFE, 0),
        ("bomb.zip", ["zip", "-q", "-1", "bomb.zip", "contacts.csv"], _lying_zip, RejectCode.CORRUPT, 0),
    ],
    ids=["gzip-counted-as-it-streams", "zip-declared-size", "zip-lying-size"],
)
def test_bombs_refused_before_they_expand(
    zeros: Path, name: str, command: list[str], lie: Callable[[bytes], bytes] | None, code: RejectCode, most: int
) -> None:
    """Refused with at most `most` bytes expanded (plus the chunk in hand): a zip's declared size refuses it
    at once, and a zip member is never read beyond its declared size (a lie ends in a bad checksum)."""
    tool(*command, cwd=zeros)
    data = (zeros / name).read_bytes()
    (zeros / name).unlink()
    assert len(data) < 2 * 1024 * 1024
    tracemalloc.start()
    rejection = refused(name, lie(data) if lie else data)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert rejection.code == code
    if code == RejectCode.UNSAFE:
        assert "would expand to more than 256 MB" in rejection.message
    assert peak < most + 16 * 1024 * 1024


# --- PGP -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Keys]:
    if shutil.which("gpg") is None:
        if os.environ.get("SFTP_IMPORT_REQUIRE_GPG"):
            pytest.fail("gpg is not installed but SFTP_IMPORT_REQUIRE_GPG is set (CI must run the PGP tests)")
        pytest.skip("needs GnuPG (gpg); .ci/run installs gnupg (set SFTP_IMPORT_REQUIRE_GPG=1 to make this an error)")
    yield from make_keys(tmp_path_factory.mktemp("gpg"))


def signed_contract(keys: Keys) -> Contract:
    return NORTHWIND.model_copy(update={"pgp_public_key": keys.client.public_key})


@pytest.mark.parametrize(
    ("fmt", "name", "gzip_first", "armor", "shown"),
    [
        ("csv", "contacts.csv.pgp", False, False, "csv (pgp)"),
        ("xml", "contacts.xml.asc", False, True, "xml (pgp)"),
        ("csv", "contacts.csv.gz.gpg", True, False, "csv (pgp, gzip)"),
    ],
)
def test_pgp_round_trip(
    tmp_path: Path, keys: Keys, fmt: str, name: str, gzip_first: bool, armor: bool, shown: str
) -> None:
    plain = sample(tmp_path, fmt)
    source = plain
    if gzip_first:
        tool("gzip", "--keep", plain.name, cwd=tmp_path)
        source = tmp_path / f"{plain.name}.gz"
    encrypted = keys.client.encrypt(source, tmp_path / name, armor=armor).read_bytes()
    assert b"Email" not in encrypted
    table = read_bytes(name, encrypted, NORTHWIND, keys.platform)
    assert same_table(table, read_bytes(plain.name, plain.read_bytes(), NORTHWIND))
    assert table.described_format == shown
    assert same_table(table, read_bytes(name, encrypted, signed_contract(keys), keys.platform))  # signed: taken


@pytest.mark.parametrize(
    ("sender", "sign", "says"),
    [
        ("client", False, "it is not signed, and your contract requires your signature"),
        ("stranger", True, "it is signed with another key than the one in your contract"),
    ],
)
def test_a_contract_key_requires_a_valid_signature(
    tmp_path: Path, keys: Keys, sender: str, sign: bool, says: str
) -> None:
    person = keys.client if sender == "client" else keys.stranger
    encrypted = person.encrypt(sample(tmp_path, "csv"), tmp_path / "c.csv.gpg", sign=sign).read_bytes()
    read_bytes("c.csv.gpg", encrypted, NORTHWIND, keys.platform)  # no key in the contract: no signature needed
    rejection = refused("c.csv.gpg", encrypted, signed_contract(keys), keys.platform)
    assert rejection.code == RejectCode.SIGNATURE and says in rejection.message


def test_a_contract_key_refuses_unencrypted_files(keys: Keys) -> None:
    rejection = refused("c.csv", write_sample(NORTHWIND, "csv"), signed_contract(keys), keys.platform)
    assert rejection.code == RejectCode.SIGNATURE and "encrypted and signed with PGP" in rejection.message


def test_wrong_key_password_and_damage_are_one_clear_rejection(tmp_path: Path, keys: Keys) -> None:
    plain = sample(tmp_path, "csv")
    for_stranger = keys.stranger.gpg("--encrypt", "--recipient", keys.stranger.uid, "--output", "-", str(plain))
    rejection = refused("c.csv.gpg", for_stranger, pgp=keys.platform)
    assert rejection.code == RejectCode.DECRYPT and "encrypted for another key" in rejection.message
    assert keys.platform_fingerprint in rejection.message  # which key to use
    with_password = keys.client.gpg(
        "--symmetric", "--pinentry-mode", "loopback", "--passphrase", "pw", "-o", "-", str(plain)
    )
    assert "encrypted with a password" in refused("c.csv.gpg", with_password, pgp=keys.platform).message
    good = keys.client.encrypt(plain, tmp_path / "c.csv.gpg").read_bytes()
    for damaged in (good[: len(good) // 2], good[:40] + bytes(b ^ 0xFF for b in good[40:80]) + good[80:], b"hello"):
        rejection = refused("c.csv.gpg", damaged, pgp=keys.platform)
        assert rejection.code == RejectCode.DECRYPT and "not a complete PGP message" in rejection.message


def test_a_pgp_bomb_is_refused_as_it_streams(zeros: Path, keys: Keys) -> None:
    bomb = keys.client.encrypt(zeros / "contacts.csv", zeros / "bomb.csv.gpg", sign=False).read_bytes()
    assert len(bomb) < 2 * 1024 * 1024
    rejection = refused("bomb.csv.gpg", bomb, pgp=keys.platform)
    assert rejection.code == RejectCode.UNSAFE and "The encrypted file is refused" in rejection.message


def test_the_platform_key_problems_are_errors_not_rejections(tmp_path: Path, keys: Keys) -> None:
    encrypted = keys.client.encrypt(sample(tmp_path, "csv"), tmp_path / "c.csv.gpg").read_bytes()
    public_only = tmp_path / "public.asc"
    public_only.write_text(keys.client.public_key)
    assert keys.platform.passphrase is not None
    cases = {
        PgpKey(None): "SFTP_IMPORT_PGP_KEY_FILE is not set",
        PgpKey(keys.platform.file, "not-" + keys.platform.passphrase): "SFTP_IMPORT_PGP_PASSPHRASE is missing or wrong",
        PgpKey(keys.platform.file): "SFTP_IMPORT_PGP_PASSPHRASE is missing or wrong",
        PgpKey(public_only): "holds no ASCII-armoured private key",
        PgpKey(tmp_path / "missing.asc"): "cannot be read",
    }
    for key, says in cases.items():
        with pytest.raises(PgpSetupError, match=says) as exc:
            read_bytes("c.csv.gpg", encrypted, NORTHWIND, key)
        assert keys.platform.passphrase not in str(exc.value) and keys.platform.passphrase not in repr(key)


def test_nothing_stays_on_disk(tmp_path: Path, keys: Keys) -> None:
    encrypted = keys.client.encrypt(sample(tmp_path, "csv"), tmp_path / "c.csv.gpg").read_bytes()
    homes = Path(tempfile.gettempdir())
    before = set(homes.glob("sftp-import-gpg-*"))
    read_bytes("c.csv.gpg", encrypted, NORTHWIND, keys.platform)
    with pytest.raises(FileRejected):
        read_bytes("c.csv.gpg", encrypted[:100], NORTHWIND, keys.platform)
    assert set(homes.glob("sftp-import-gpg-*")) == before  # the temporary GNUPGHOMEs are gone


def test_import_records_the_unwrapping_in_the_ledger_and_status(
    home: Path, tmp_path: Path, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = sample(tmp_path, "csv")
    tool("gzip", plain.name, cwd=tmp_path)
    encrypted = keys.client.encrypt(tmp_path / "contacts.csv.gz", tmp_path / "monday.csv.gz.gpg").read_bytes()
    settings = load_settings()
    stage_bytes(settings, "northwind", "monday.csv.gz.gpg", encrypted)
    with pytest.raises(PgpSetupError):  # no key configured: an error for ops, the file stays staged
        import_file(settings, NORTHWIND, "monday.csv.gz.gpg", "r1")
    assert ledger(settings, "northwind")["monday.csv.gz.gpg"]["status"] == "staged"

    assert keys.platform.file is not None and keys.platform.passphrase is not None
    monkeypatch.setenv("SFTP_IMPORT_PGP_KEY_FILE", str(keys.platform.file))
    monkeypatch.setenv("SFTP_IMPORT_PGP_PASSPHRASE", keys.platform.passphrase)
    settings = load_settings()
    assert keys.platform.passphrase not in repr(settings)
    outcome = import_file(settings, NORTHWIND, "monday.csv.gz.gpg", "r2")
    assert outcome.status == "imported" and outcome.stats["rows_imported"] == 3
    row = ledger(settings, "northwind")["monday.csv.gz.gpg"]
    assert row["format"] == "csv (pgp, gzip)" and row["sha256"]
    shown = render_table(status_report(settings, {"northwind": NORTHWIND}, BASE_TIME))
    assert "monday.csv.gz.gpg  imported  csv (pgp, gzip)" in shown


def test_the_contract_key_must_be_an_armoured_public_key() -> None:
    raw = NORTHWIND.model_dump() | {"pgp_public_key": "-----BEGIN PGP PRIVATE KEY BLOCK-----\nxx\n"}
    with pytest.raises(ValueError, match="must be an ASCII-armoured public key"):
        Contract.model_validate(raw)
