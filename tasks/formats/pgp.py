"""OpenPGP uploads decrypted with GnuPG (`gpg`, Debian's `gnupg`), in memory, signature checked when required.

Each file gets its own temporary GNUPGHOME: the platform's private key (and the client's public
key, when its contract has one) is imported, the message decrypted, then the home's agent stopped
and the home deleted, so no key or plaintext stays on disk. The passphrase goes to gpg through a
pipe (never an argument, a log or a file). gpg's status lines (doc/DETAILS) decide the outcome.

gpg is run directly rather than through python-gnupg: the plaintext is read from gpg's output as
it streams and gpg is killed the moment it passes the expansion cap (a compressed PGP message is a
bomb like any other), where python-gnupg buffers it all and cannot stop gpg early."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

from tasks.errors import ConfigurationError, FileRejected, RejectCode
from tasks.formats.expansion import ExpansionCap

BAD_PASSPHRASE, NO_PASSPHRASE = 11, 177  # gpg-error codes, in the low 16 bits of an ERROR status
EXPIRED_OR_REVOKED = ("EXPSIG", "EXPKEYSIG", "REVKEYSIG")
SOCKET_ROOM = 107 - len("/S.gpg-agent.browser")  # gpg-agent's sockets go in the home: a socket path is short
HOW = "encrypt it with the platform's public key (gpg --encrypt --sign --recipient …) and send it again"


class PgpSetupError(ConfigurationError):
    """The platform cannot decrypt at all (no key, unreadable key, wrong passphrase): not the client's fault.

    The file stays staged and the client's import fails, naming the problem for ops."""


@dataclass(frozen=True)
class PgpKey:
    """The platform's private key (an ASCII-armoured key file) and its passphrase, if any."""

    file: Path | None
    passphrase: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Status:
    """gpg's status lines of one run, by keyword (the rest of each line, split)."""

    lines: list[list[str]]

    @classmethod
    def parse(cls, text: str) -> Status:
        return cls([line.split()[1:] for line in text.splitlines() if line.startswith("[GNUPG:] ")])

    def has(self, keyword: str) -> bool:
        return any(words and words[0] == keyword for words in self.lines)

    def args(self, keyword: str) -> list[list[str]]:
        """The arguments of every line with that keyword."""
        return [words[1:] for words in self.lines if words and words[0] == keyword]


class _Home:
    """A temporary GNUPGHOME and the gpg runs in it."""

    def __init__(self, path: Path, gpg: str) -> None:
        self.path, self.gpg = path, gpg

    def command(self, *args: str) -> list[str]:
        return [self.gpg, "--homedir", str(self.path), "--batch", "--no-tty", "--no-permission-warning", *args]

    def import_key(self, armoured: str) -> Status:
        """Import an armoured key (public or private; a protected private key needs no passphrase to import)."""
        done = subprocess.run(
            self.command("--status-fd", "1", "--import"),
            input=armoured.encode(),
            capture_output=True,
            check=False,
        )
        return Status.parse(done.stdout.decode(errors="replace"))


@contextmanager
def _temporary_home() -> Iterator[_Home]:
    """A fresh GNUPGHOME, its agent stopped and the folder deleted afterwards."""
    gpg = shutil.which("gpg")
    if gpg is None:
        raise PgpSetupError("gpg is not installed: install GnuPG (Debian's gnupg) to read PGP-encrypted files")
    with tempfile.TemporaryDirectory(prefix="sftp-import-gpg-") as folder:
        if len(folder) > SOCKET_ROOM:
            raise PgpSetupError(f"the temporary folder {folder} is too long a path for gpg-agent: set a shorter TMPDIR")
        home = _Home(Path(folder), gpg)
        # the agent calibrates its key protection (~1 s) unless told a count; it protects nothing that outlives the home
        (home.path / "gpg-agent.conf").write_text("s2k-count 65536\n")
        try:
            yield home
        finally:
            subprocess.run(["gpgconf", "--homedir", folder, "--kill", "all"], capture_output=True, check=False)


def _imported(status: Status, secret: bool) -> set[str]:
    """Fingerprints of the keys an import took in (only those with their private key when `secret`)."""
    return {args[1] for args in status.args("IMPORT_OK") if len(args) > 1 and (not secret or int(args[0]) & 16)}


def _platform_key(home: _Home, key: PgpKey) -> set[str]:
    """Import the platform's private key (its fingerprints); PgpSetupError when not set, unreadable or not private."""
    if key.file is None:
        raise PgpSetupError("SFTP_IMPORT_PGP_KEY_FILE is not set: PGP-encrypted files cannot be decrypted")
    try:
        armoured = key.file.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise PgpSetupError(f"the platform's PGP key file {key.file} cannot be read: {exc}") from None
    fingerprints = _imported(home.import_key(armoured), secret=True)
    if not fingerprints:
        raise PgpSetupError(f"the platform's PGP key file {key.file} holds no ASCII-armoured private key")
    return fingerprints


def _run_decrypt(home: _Home, name: str, data: bytes, passphrase: str | None) -> tuple[bytes, Status]:
    """Run `gpg --decrypt`; the plaintext read as it streams within the cap (gpg killed past it)."""
    message, status_file = home.path / "message", home.path / "status"
    message.write_bytes(data)
    command = home.command(
        "--status-file", str(status_file), "--logger-file", str(home.path / "log"), "--trust-model", "always"
    )
    command += ["--pinentry-mode", "loopback", "--passphrase-fd", "0", "--decrypt", str(message)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert process.stdin is not None and process.stdout is not None
    try:
        with suppress(BrokenPipeError), process.stdin:  # gpg may be done before it asks (not PGP at all)
            process.stdin.write(((passphrase or "") + "\n").encode())
        plaintext = ExpansionCap(name, "The encrypted file").read(process.stdout)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        process.stdout.close()
    return plaintext, Status.parse(status_file.read_text(errors="replace") if status_file.exists() else "")


def _why_not_decrypted(name: str, status: Status, platform: set[str]) -> Exception:
    """The error of a message gpg did not decrypt: the platform's setup, or the client's file."""
    codes = {int(args[1]) & 0xFFFF for args in status.args("ERROR") if len(args) > 1 and args[0] == "pkdecrypt_failed"}
    if codes & {BAD_PASSPHRASE, NO_PASSPHRASE}:
        return PgpSetupError(
            "the platform's PGP key needs a passphrase: SFTP_IMPORT_PGP_PASSPHRASE is missing or wrong"
        )
    if status.has("NEED_PASSPHRASE_SYM"):
        return FileRejected(RejectCode.DECRYPT, name, f"The file is encrypted with a password, not a key: {HOW}.")
    if status.has("NO_SECKEY") and not status.has("DECRYPTION_KEY"):
        ours = ", ".join(sorted(platform))
        return FileRejected(RejectCode.DECRYPT, name, f"The file is encrypted for another key, not {ours}: {HOW}.")
    return FileRejected(
        RejectCode.DECRYPT, name, f"The file is not a complete PGP message (damaged or cut short): {HOW}."
    )


def _check_signature(name: str, status: Status, client_keys: set[str]) -> None:
    """A valid signature by one of the client's keys is required: else one clear rejection."""
    signers = {args[-1] for args in status.args("VALIDSIG") if args}  # the signing key's primary fingerprint
    expired = any(status.has(keyword) for keyword in EXPIRED_OR_REVOKED)
    if status.has("BADSIG"):
        problem = "its signature does not match it (changed after signing, or damaged)"
    elif signers & client_keys and not expired:
        return
    elif not status.has("NEWSIG"):
        problem = "it is not signed, and your contract requires your signature"
    elif expired:
        problem = "it is signed with a key that has expired or been revoked"
    else:
        problem = f"it is signed with another key than the one in your contract ({', '.join(sorted(client_keys))})"
    raise FileRejected(
        RejectCode.SIGNATURE,
        name,
        f"The file is refused: {problem}. Sign it with your key (gpg --encrypt --sign …) and send it again.",
    )


def decrypt(name: str, data: bytes, key: PgpKey, client_key: str | None) -> bytes:
    """The plaintext of an OpenPGP message (binary or armoured), signed by `client_key` when one is given.

    FileRejected for the client's mistakes (wrong key, password-encrypted, damaged, bad or missing
    signature, a bomb); PgpSetupError for the platform's (no key, wrong passphrase)."""
    with _temporary_home() as home:
        platform = _platform_key(home, key)
        client_keys = _imported(home.import_key(client_key), secret=False) if client_key else set()
        if client_key and not client_keys:
            raise PgpSetupError(f"the contract's pgp_public_key cannot be imported (checking {name})")
        plaintext, status = _run_decrypt(home, name, data, key.passphrase)
    if not status.has("DECRYPTION_OKAY") or status.has("DECRYPTION_FAILED") or status.has("BADMDC"):
        raise _why_not_decrypted(name, status, platform)
    if client_key:
        _check_signature(name, status, client_keys)
    return plaintext
