"""The references an import is measured against, each in a child process with its own peak memory.

- the DuckDB floor: DuckDB's own `read_csv` and a plain INSERT into a new table of the same column
  types, on a connection to the same store file (`python -m bench.peers floor …`, this environment);
- dlt's fastest configuration (bench/peer_tools.py), in a virtual environment of its own made here
  (`python3 -m venv` + pip from the registry, under bench/.venv-peers): never in the project's.
A child's seconds are its own measurement of the work (not its start-up); its peak is its VmHWM
(`peer_tools.peak_mb`)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.peer_tools import peak_mb

HERE = Path(__file__).resolve().parent
PEERS_VENV = HERE / ".venv-peers"
PEER_PACKAGES = ("dlt[duckdb]", "pyarrow", "xlwt")


def peers_python() -> Path:
    """The peers' interpreter, its environment made (once, ~1 min) with dlt, pyarrow and xlwt."""
    python = PEERS_VENV / "bin" / "python"
    if not (PEERS_VENV / ".installed").exists():
        print(f"making {PEERS_VENV} for the peers ({', '.join(PEER_PACKAGES)}) ...", flush=True)
        subprocess.run(["python3", "-m", "venv", str(PEERS_VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *PEER_PACKAGES], check=True)
        (PEERS_VENV / ".installed").touch()
    return python


def child(args: list[str]) -> dict[str, Any]:
    """Run a measuring child process from the repo root; its JSON answer (seconds, peak_mb, ...)."""
    run = subprocess.run(args, cwd=HERE.parent, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed: {run.stderr[-2000:]}")
    answer: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return answer


def dlt(seed: Path, file: Path, delimiter: str, db: Path) -> dict[str, Any]:
    """dlt merging `file` into a DuckDB table seeded with `seed` (both CSV)."""
    return child([str(peers_python()), str(HERE / "peer_tools.py"), "dlt", str(seed), str(file), delimiter, str(db)])


def write_xls(csv_file: Path, delimiter: str, out: Path) -> None:
    """An XLS workbook of the CSV's cells (xlwt, in the peers' environment)."""
    child([str(peers_python()), str(HERE / "peer_tools.py"), "xls", str(csv_file), delimiter, str(out)])


def floor(db: Path, table: str, file: Path, delimiter: str, encoding: str, columns: dict[str, str]) -> dict[str, Any]:
    """The DuckDB floor in a child process of this environment."""
    spec = json.dumps({"db": str(db), "table": table, "file": str(file), "delimiter": delimiter,
                       "encoding": encoding, "columns": columns})  # fmt: skip
    return child([sys.executable, "-m", "bench.peers", "floor", spec])


def _floor(spec: dict[str, Any]) -> dict[str, float]:
    """Connect to the store, read the CSV (typed columns) and INSERT it into a new table; commit, close."""
    import duckdb

    columns = ", ".join(f"'{name}': '{kind}'" for name, kind in spec["columns"].items())
    table = ", ".join(f'"{name}" {kind}' for name, kind in spec["columns"].items())
    started = time.perf_counter()
    con = duckdb.connect(spec["db"])
    con.execute("BEGIN")
    con.execute(f"CREATE TABLE {spec['table']} ({table})")
    con.execute(
        f"INSERT INTO {spec['table']} SELECT * FROM read_csv(?, header = true, delim = ?, encoding = ?, "
        f"columns = {{{columns}}})",
        [spec["file"], spec["delimiter"], spec["encoding"]],
    )
    con.execute("COMMIT")
    con.close()
    return {"seconds": time.perf_counter() - started}


def main(argv: list[str]) -> None:
    command, spec = argv
    assert command == "floor"
    result = _floor(json.loads(spec))
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
