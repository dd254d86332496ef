"""The names a file is written under until its rename to its final name: a copy in staging
(`TMP_DIR`) and a document in a client's SFTP folder (`writing_name`).

A module of their own, so what only needs the names (the result documents' name budget, the
erasure's rewrite of a staged file) does not load the SSH stack: asyncssh and sshfs take 15 MB
and 0.1 s, which an import's process then spends only when it writes its results."""

from __future__ import annotations

import uuid

TMP_DIR = ".incoming"  # under the staging root; temporary copies, never read by the import


def writing_name(name: str) -> str:
    """The temporary name `Sftp.write_atomic` writes `name` under: hidden, unique, `.tmp`."""
    return f".{name}.{uuid.uuid4().hex[:12]}.tmp"
