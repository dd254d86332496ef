"""What a client sees in its SFTP folder, read over SFTP as its scripts would; the result document schema."""

from __future__ import annotations

import json
import os
import posixpath
import time
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from tasks import sftp
from tasks.settings import load_settings

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "schemas" / "result.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def put(folder: Path, name: str, data: bytes, age: float = 3600) -> None:
    """Upload a file into a client's folder, complete `age` seconds ago."""
    path = folder / name
    path.write_bytes(data)
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


def read_folder(directory: str, sub: str) -> dict[str, bytes]:
    """Every regular file of `<client folder>/<sub>` over a connection of its own: name -> bytes."""
    settings = load_settings()
    with sftp.connect(settings.sftp) as connection:
        try:
            listed = connection.list_files(posixpath.join(directory, sub))
        except FileNotFoundError:
            return {}
        return {f.name: connection.fs.cat_file(connection.path(directory, f"{sub}/{f.name}")) for f in listed}


def documents(directory: str) -> dict[str, dict[str, Any]]:
    """The client's result documents by upload name, each checked against the schema first."""
    found = {}
    for name, data in read_folder(directory, "results").items():
        if name.endswith(".json"):
            document = json.loads(data)
            VALIDATOR.validate(document)
            found[name.removesuffix(".json")] = document
    return found
