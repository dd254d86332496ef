"""Fuzzing: any bytes under any accepted name end in rows or one clear rejection, never another
exception; any contract text ends in a contract or a list of problems. CI runs a bounded number of
examples (derandomized); `make fuzz` runs many more (FUZZ_EXAMPLES)."""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from schemas.contract import parse_contract
from tasks.errors import ConfigurationError, FileRejected
from tasks.validate import parse_file
from tests.importing import CLIENTS

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
BOUND_CPU_SECONDS = 10.0  # an input of a few KB takes milliseconds: this is a guard against hangs, not a speed test
BOUND_MEMORY_BYTES = 256 * 2**20
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = ("a.csv", "a.xlsx", "a.xls", "a.xml", "a.csv.gz", "a.zip", "a.csv.gpg")
SAMPLES = {  # a valid file of each format to mutate: most of what breaks readers is near-valid input
    fmt: (Path(__file__).parent / "data" / f"northwind.{fmt}").read_bytes() for fmt in ("xlsx", "xls")
} | {
    "csv": b"Email,First Name,Last Name,Account ID,Purchase Date,Amount,Segment\na@x.com,A,B,1,01/02/2026,1.5,SMB\n",
    "xml": b"<contacts><contact><email>a@x.com</email><amount>1.5</amount></contact></contacts>",
}


@contextmanager
def _bounded() -> Iterator[None]:
    """The block stays within BOUND_CPU_SECONDS of CPU and BOUND_MEMORY_BYTES of Python and NumPy
    allocations at its peak: a hang or a blow-up (a decompression bomb, runaway backtracking) fails."""
    tracemalloc.start()
    started = time.process_time()
    try:
        yield
    finally:
        spent, peak = time.process_time() - started, tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert spent < BOUND_CPU_SECONDS, f"{spent:.1f} s of CPU for one input"
    assert peak < BOUND_MEMORY_BYTES, f"{peak / 2**20:.0f} MB at the peak for one input"


def _parsed_or_rejected(name: str, data: bytes) -> None:
    """The one allowed ending besides rows: a FileRejected naming the file, with a message. (With no
    platform key set, a PGP name is the platform's configuration error, not the client's.) Within
    the bounds of CPU and memory."""
    with _bounded():
        _parse_once(name, data)


def _parse_once(name: str, data: bytes) -> None:
    try:
        parsed = parse_file(name, data, CLIENTS["northwind"], max_bytes=10_000_000, warn_bytes=10_000_000)
    except FileRejected as rejected:
        assert rejected.file == name and rejected.message
        return
    except ConfigurationError as error:
        assert name.endswith(".gpg") and "SFTP_IMPORT_PGP_KEY_FILE" in str(error)
        return
    rejected_lines = {e.line for e in parsed.errors}  # every row read was kept or rejected, none twice
    assert parsed.rows_read == len(parsed.rows) + len(rejected_lines)


@FUZZ
@given(name=st.sampled_from(NAMES), data=st.binary(max_size=4096))
def test_any_bytes_end_in_rows_or_one_rejection(name: str, data: bytes) -> None:
    _parsed_or_rejected(name, data)


@FUZZ
@example(fmt="xlsx", cuts=[(41, b"\x00")])  # inflating a damaged member raised zlib.error
@example(fmt="xls", cuts=[(3514, b"\xaf\x1c\x03\x0e\x98\xbe[\xd0")])  # calamine panicked (pyo3 PanicException)
@given(
    fmt=st.sampled_from(sorted(SAMPLES)),
    cuts=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=8)), min_size=1, max_size=4),
)
def test_a_damaged_file_ends_in_rows_or_one_rejection(fmt: str, cuts: list[tuple[int, bytes]]) -> None:
    data = bytearray(SAMPLES[fmt])
    for at, patch in cuts:  # overwrite a few bytes here and there, or cut the file short
        at %= len(data) + 1
        data[at : at + len(patch)] = patch
    _parsed_or_rejected(f"a.{fmt}", bytes(data))


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contracts")


YAML = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
KEYS = st.sampled_from(["id", "name", "timezone", "import_time", "max_rows", "csv", "fields", "sftp_dir", "x"])


@FUZZ
@given(
    raw=st.dictionaries(KEYS, YAML, max_size=8) | YAML,
    text=st.text(max_size=200),
    as_text=st.booleans(),
)
def test_any_contract_text_ends_in_a_contract_or_its_problems(
    folder: Path, raw: object, text: str, as_text: bool
) -> None:
    file = folder / "client.yaml"
    file.write_text(text if as_text else yaml.safe_dump(raw), encoding="utf-8")
    contract, problems = parse_contract(file)
    assert (contract is None) == bool(problems)
    assert all(p.file == "client.yaml" and p.message for p in problems)
