"""Real OpenPGP keys for the tests, made with the `gpg` tool in temporary homes (nothing in the repo).

The platform's key is protected by a passphrase generated per run; the client's and a stranger's
keys have none. Files are encrypted (and signed) the way a client does it, with the `gpg` CLI."""

from __future__ import annotations

import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tasks.formats.pgp import PgpKey

PLATFORM_UID = "SFTP import platform <platform@example.invalid>"


@dataclass(frozen=True)
class Person:
    """A GnuPG home with one key pair, and its armoured public key."""

    home: Path
    uid: str
    public_key: str

    def gpg(self, *args: str, data: bytes | None = None) -> bytes:
        """Run the gpg CLI in this home; its output."""
        command = ["gpg", "--homedir", str(self.home), "--batch", "--yes", "--trust-model", "always", *args]
        return subprocess.run(command, input=data, capture_output=True, check=True).stdout

    def encrypt(self, source: Path, target: Path, *, sign: bool = True, armor: bool = False) -> Path:
        """`gpg --encrypt [--sign] [--armor] --recipient <platform>`, as the README tells clients."""
        flags = ["--sign"] * sign + ["--armor"] * armor
        self.gpg("--encrypt", *flags, "--recipient", PLATFORM_UID, "--output", str(target), str(source))
        return target


@dataclass(frozen=True)
class Keys:
    """The platform's private key (file and passphrase), a client and a stranger."""

    platform: PgpKey
    platform_fingerprint: str
    client: Person
    stranger: Person


def _person(folder: Path, uid: str, passphrase: str = "") -> Person:
    folder.mkdir(mode=0o700)
    base = ["gpg", "--homedir", str(folder), "--batch", "--pinentry-mode", "loopback", "--passphrase", passphrase]
    subprocess.run(
        [*base, "--quick-gen-key", uid, "future-default", "default", "never"], capture_output=True, check=True
    )
    public = subprocess.run([*base, "--armor", "--export", uid], capture_output=True, check=True).stdout.decode()
    return Person(folder, uid, public)


def make_keys(folder: Path) -> Iterator[Keys]:
    """Generate the keys under `folder` (yielded), then stop the homes' agents."""
    passphrase = secrets.token_hex(16)
    platform = _person(folder / "platform", PLATFORM_UID, passphrase)
    secret = platform.gpg("--pinentry-mode", "loopback", "--passphrase", passphrase, "--armor", "--export-secret-keys")
    key_file = folder / "platform-private.asc"
    key_file.write_bytes(secret)
    listing = platform.gpg("--with-colons", "--list-keys", PLATFORM_UID).decode()
    fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
    client = _person(folder / "client", "Client <client@example.invalid>")
    stranger = _person(folder / "stranger", "Stranger <stranger@example.invalid>")
    for person in (client, stranger):
        person.gpg("--import", data=platform.public_key.encode())
    try:
        yield Keys(PgpKey(key_file, passphrase), fingerprint, client, stranger)
    finally:
        for person in (platform, client, stranger):
            subprocess.run(
                ["gpgconf", "--homedir", str(person.home), "--kill", "all"], capture_output=True, check=False
            )
