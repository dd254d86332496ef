"""Compressed and encrypted uploads unwrapped in memory, before the inner file's format is detected.

What Fivetran's SFTP connector accepts: `.gz` around any accepted format, a `.zip` holding exactly
one accepted file, and OpenPGP (`.pgp`, `.gpg`, `.asc`) around either or around a plain file. The
uploaded name says which wrappers to take off (`formats.wrappers`), outermost first; each checks
that its content is what the name says. Whatever expands is capped as it streams
(tasks/formats/expansion.py): a bomb is refused before it expands. A contract with the client's
public key (`pgp_public_key`) takes only PGP files with a valid signature by that key."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass

from tasks.errors import FileRejected, RejectCode
from tasks.formats import PGP, ZIP_MAGIC, by_extension, extensions, wrappers
from tasks.formats.expansion import ZIP_ERRORS, ExpansionCap
from tasks.formats.pgp import PgpKey, decrypt

GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Unwrapped:
    """The file inside an upload: its name (its extension counts for detection), bytes, and what was taken off."""

    name: str
    data: bytes
    layers: tuple[str, ...]  # outermost first, e.g. ("pgp", "gzip"); () for a plain upload


def _what_to_zip() -> str:
    listed = extensions()
    return (
        f"Send a .zip holding exactly one {', '.join(listed[:-1])} or {listed[-1]} file, at its top level "
        "and without a password, or send the file itself."
    )


def gunzip(name: str, data: bytes) -> bytes:
    """The bytes inside a gzip file (several members are read as one), within the expansion cap.

    Counted as it streams only: gzip declares its size at its end, modulo 4 GiB, and a file cut
    short declares whatever its last bytes happen to be."""
    if not data.startswith(GZIP_MAGIC):
        raise FileRejected(
            RejectCode.ARCHIVE, name, "The file is named .gz but is not gzip-compressed; compress it with gzip."
        )
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            return ExpansionCap(name, "The compressed file").read(stream)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise FileRejected(
            RejectCode.CORRUPT, name, f"The compressed file is damaged or incomplete ({exc}); compress it again."
        ) from None


def _only_entry(name: str, archive: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The zip's one file: ARCHIVE rejection for folders, paths, several files or none."""
    entries = archive.infolist()
    nested = [e.filename for e in entries if e.is_dir() or "/" in e.filename or "\\" in e.filename]
    if nested:
        problem = f"it has folders or paths ({', '.join(nested[:3])})"
    elif len(entries) != 1:
        problem = f"it holds {len(entries)} files" if entries else "it is empty"
    else:
        return entries[0]
    raise FileRejected(RejectCode.ARCHIVE, name, f"The zip is refused: {problem}. {_what_to_zip()}")


def unzip(name: str, data: bytes) -> tuple[str, bytes]:
    """The name and bytes of the one accepted file in a zip, within the expansion cap."""
    if not data.startswith(ZIP_MAGIC):
        raise FileRejected(
            RejectCode.ARCHIVE, name, f"The file is named .zip but is not a zip archive. {_what_to_zip()}"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entry = _only_entry(name, archive)
            if entry.flag_bits & 0x1:
                raise FileRejected(
                    RejectCode.ENCRYPTED, name, f"The file in the zip is password-protected. {_what_to_zip()}"
                )
            if by_extension(entry.filename) is None:
                raise FileRejected(
                    RejectCode.EXTENSION,
                    name,
                    f"The zip holds {entry.filename}, not an accepted file. {_what_to_zip()}",
                )
            cap = ExpansionCap(name, "The zip")
            cap.declared(entry.file_size)
            with archive.open(entry) as stream:
                return entry.filename, cap.read(stream)
    except ZIP_ERRORS as exc:
        raise FileRejected(
            RejectCode.CORRUPT, name, f"The zip is damaged or incomplete ({exc}); zip it again."
        ) from None


def unwrap(name: str, data: bytes, pgp: PgpKey | None, client_key: str | None) -> Unwrapped:
    """Take off the wrappers the name announces: decrypt (with the platform's key `pgp`), then decompress.

    `client_key`: the client's armoured public key from its contract; then only a PGP file with a
    valid signature by it is taken."""
    inner, layers = wrappers(name)
    if client_key and PGP not in layers:
        raise FileRejected(
            RejectCode.SIGNATURE,
            name,
            "Your contract requires files encrypted and signed with PGP (gpg --encrypt --sign --recipient …, "
            "named .pgp, .gpg or .asc); send it again that way.",
        )
    for layer in layers:
        if layer == PGP:
            data = decrypt(name, data, pgp or PgpKey(None), client_key)
        elif layer == "gzip":
            data = gunzip(name, data)
        else:
            inner, data = unzip(name, data)
    return Unwrapped(inner, data, layers)
