"""A PostgreSQL cluster of its own, from Debian's `postgresql` binaries: for the tests, the benchmarks
and `make demo-cluster`. Production points `SFTP_IMPORT_STORE_URL` at its own server instead.

The cluster lives in one folder (data, socket, log), listens on 127.0.0.1 on a free port and trusts
local connections (no password exists to leak). `initdb` refuses root: as root the cluster is made
and run by the `postgres` user, which then owns the folder."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from deployments.server import free_port

HOST = "127.0.0.1"


class PostgresMissing(RuntimeError):
    """Debian's PostgreSQL server binaries are not installed (`apt-get install postgresql`)."""


def bin_dir() -> Path:
    """The newest installed server's bin folder (/usr/lib/postgresql/<major>/bin)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        raise PostgresMissing("PostgreSQL's server is not installed: apt-get install postgresql")
    return found[-1].parent


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its folder and port; `url(database)` to connect."""

    folder: Path
    port: int
    durable: bool = True

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"


def _as_owner(args: list[str]) -> list[str]:
    """The command as the cluster's owner: `postgres` when we are root (initdb refuses root)."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


def _run(args: list[str]) -> None:
    done = subprocess.run(_as_owner(args), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


def start_cluster(folder: Path | None = None, *, durable: bool = True) -> Cluster:
    """Create (if new) and start a cluster in `folder` (a new temp folder when None) on a free port.

    `durable=False` turns fsync off: for tests, where a killed process (not a lost machine) is
    the crash to survive."""
    folder = Path(tempfile.mkdtemp(prefix="sftp-import-pg-")) if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        for path in (folder, *folder.rglob("*")):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        if subprocess.run(_as_owner(["test", "-w", str(folder)]), check=False).returncode != 0:
            raise RuntimeError(f"the postgres user cannot reach {folder}: a folder above it is closed to others")
    data = folder / "data"
    if not (data / "PG_VERSION").exists():
        _run(
            [
                str(bin_dir() / "initdb"),
                "-D",
                str(data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-N",
            ]
        )
    cluster = Cluster(folder, free_port(), durable)
    restart_cluster(cluster)
    return cluster


def stop_cluster(cluster: Cluster, *, mode: str = "fast") -> None:
    """Stop the cluster (`mode` immediate is a crash: PostgreSQL recovers at the next start)."""
    _run([str(bin_dir() / "pg_ctl"), "stop", "-w", "-m", mode, "-D", str(cluster.folder / "data")])


def restart_cluster(cluster: Cluster) -> None:
    """Start the (stopped or new) cluster on its port."""
    options = f"-p {cluster.port} -k {cluster.folder} -c listen_addresses={HOST} -c max_connections=200"
    if not cluster.durable:
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    data, log = cluster.folder / "data", cluster.folder / "server.log"
    _run([str(bin_dir() / "pg_ctl"), "start", "-w", "-t", "120", "-D", str(data), "-l", str(log), "-o", options])


def create_database(cluster: Cluster, name: str) -> str:
    """A new empty database in the cluster; its URL."""
    import psycopg

    with psycopg.connect(cluster.url(), autocommit=True) as con:
        con.execute(f'CREATE DATABASE "{name}"')
    return cluster.url(name)


@contextmanager
def postgres_cluster(folder: Path | None = None, *, durable: bool = True) -> Iterator[Cluster]:
    """A cluster for the duration of the block; its folder is removed after when it was a temp one."""
    cluster = start_cluster(folder, durable=durable)
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
        if folder is None:
            shutil.rmtree(cluster.folder, ignore_errors=True)
