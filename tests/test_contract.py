"""Contracts: loading, every problem reported with file and field, DST-safe cut-offs, the CLI check."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from schemas import contract as contract_module
from schemas.contract import (
    Contract,
    ContractError,
    ContractProblem,
    cached_contracts,
    check_contracts,
    load_contracts,
)
from tests.conftest import EXAMPLE_CLIENTS

GOOD = """
id: acme
name: Acme
timezone: Europe/Amsterdam
import_time: "02:30"
fields:
  - {name: Email, xml: email, type: email, required: true}
  - {name: Segment, xml: segment, type: enum, values: [A, B]}
"""


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")


def test_examples_load() -> None:
    contracts = load_contracts(EXAMPLE_CLIENTS)
    assert set(contracts) == {"northwind", "contoso", "fabrikam"}
    assert contracts["contoso"].csv.delimiter == ";"
    assert contracts["northwind"].email_field.name == "Email"
    assert [f.name for f in contracts["northwind"].fields][:2] == ["Email", "First Name"]


@pytest.mark.parametrize(
    ("text", "field", "fragment"),
    [
        (GOOD.replace("type: enum, values: [A, B]", "type: money"), "fields[1] (Segment).type", "Input should be"),
        (GOOD.replace("Europe/Amsterdam", "Mars/Olympus"), "timezone", "not an IANA timezone"),
        (GOOD.replace('"02:30"', '"24:00"'), "import_time", "HH:MM"),
        (GOOD.replace("name: Segment", "name: Email"), "fields", "duplicate field name 'Email'"),
        (GOOD.replace("xml: segment", "xml: email"), "fields", "duplicate field xml 'email'"),
        (GOOD.replace("type: email, required: true", "type: string"), "fields", "exactly one field of type email"),
        (GOOD.replace("required: true", "required: false"), "fields", "must be required"),
        (GOOD.replace(", values: [A, B]", ""), "fields[1] (Segment)", "needs 'values'"),
        (GOOD.replace("id: acme", "id: Acme Co"), "id", "must match"),
        (GOOD.replace("xml: segment", "xml: 1seg"), "fields[1] (Segment).xml", "not a valid XML element name"),
        (GOOD + "colour: blue\n", "colour", "Extra inputs"),
    ],
)
def test_each_problem_names_file_and_field(tmp_path: Path, text: str, field: str, fragment: str) -> None:
    write(tmp_path, "acme.yaml", text)
    contracts, problems = check_contracts(tmp_path)
    assert contracts == {}
    assert any(p.file == "acme.yaml" and p.field == field and fragment in p.message for p in problems), problems


def test_every_problem_in_every_file_is_reported(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.replace("Europe/Amsterdam", "Nowhere").replace("type: enum", "type: colour"))
    write(tmp_path, "b.yaml", "id: [")
    write(tmp_path, "c.yaml", GOOD)
    write(tmp_path, "d.yaml", GOOD)  # same id as c.yaml
    contracts, problems = check_contracts(tmp_path)
    assert set(contracts) == {"acme"}
    by_file = {p.file for p in problems}
    assert by_file == {"a.yaml", "b.yaml", "d.yaml"}
    assert len([p for p in problems if p.file == "a.yaml"]) == 2
    assert "used by another file" in next(p.message for p in problems if p.file == "d.yaml")


def test_cli_check_exits_non_zero_and_lists_problems(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.replace("Europe/Amsterdam", "Nowhere"))
    env = {"SFTP_IMPORT_CLIENTS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    bad = subprocess.run(
        [sys.executable, "-m", "flows.cli", "contracts", "check"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1
    assert "a.yaml: timezone: 'Nowhere' is not an IANA timezone" in bad.stderr
    env["SFTP_IMPORT_CLIENTS_DIR"] = str(EXAMPLE_CLIENTS)
    good = subprocess.run(
        [sys.executable, "-m", "flows.cli", "contracts", "check"], capture_output=True, text=True, env=env
    )
    assert good.returncode == 0, good.stderr
    assert "3 contract(s) OK" in good.stdout


def _contract(import_time: str, timezone: str) -> Contract:
    return Contract.model_validate(
        {
            "id": "x",
            "name": "X",
            "timezone": timezone,
            "import_time": import_time,
            "fields": [{"name": "Email", "xml": "email", "type": "email", "required": True}],
        }
    )


def test_cutoff_skipped_by_spring_forward_moves_after_the_gap() -> None:
    contract = _contract("02:30", "Europe/Amsterdam")
    cutoff = contract.cutoff_on(date(2026, 3, 29))  # 02:00-03:00 does not exist that night
    assert cutoff.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)


def test_cutoff_in_the_repeated_hour_is_taken_once() -> None:
    contract = _contract("02:30", "Europe/Amsterdam")
    cutoff = contract.cutoff_on(date(2026, 10, 25))  # 02:00-03:00 happens twice: the first one counts
    assert cutoff.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize("timezone", ["Europe/Amsterdam", "America/New_York"])
def test_one_cutoff_per_local_day_across_dst(timezone: str) -> None:
    contract = _contract("02:30", timezone)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    days = []
    for _ in range(300):  # walk cut-off to cut-off through both changes of the year
        now = contract.next_cutoff(now)
        days.append(now.astimezone(contract.zone).date())
    assert len(days) == len(set(days))
    assert all((b - a).days == 1 for a, b in itertools.pairwise(days))
    assert contract.last_cutoff(now) == now


def test_a_yaml_error_is_told_in_the_pure_loaders_words(tmp_path: Path) -> None:
    write(tmp_path, "b.yaml", "id: [")  # libyaml reads the contracts; its messages do not quote the line
    _, problems = check_contracts(tmp_path)
    assert [p.message for p in problems] == [
        "cannot be read as YAML: while parsing a flow node expected the node content, but found '<stream end>' "
        'in "<unicode string>", line 1, column 6: id: [ ^'
    ]


FULL_YAML = """
id: acme
import_time: "02:30"
max_rows: 5000
ratio: 1.5
active: yes
since: 2024-01-15
empty:
nothing: null
1: one
defaults: &defaults {type: string, required: false}
fields:
  - {<<: *defaults, name: Email, xml: email}
  - &second {name: First Name, xml: first_name, values: [a, "b", 'c']}
  - *second
tags: !!set {a, b}
ordered: !!omap [{a: 1}, {b: 2}]
text: !!str 007
blob: !!binary aGVsbG8=
folded: >
  two
  lines
"""


@pytest.mark.parametrize("text", [FULL_YAML, GOOD, "", "# only a comment\n", "[1, 2]", "plain"])
def test_contract_yaml_reads_what_safe_load_reads(text: str) -> None:
    import yaml

    from schemas import contract_yaml

    assert contract_yaml.load(text) == yaml.safe_load(text)
    assert contract_yaml.load(text) == yaml.safe_load(text)  # the second time from the kept tags


def test_contract_yaml_aliases_share_one_object_and_may_recurse() -> None:
    from schemas import contract_yaml

    data = contract_yaml.load("a: &x [1, 2]\nb: *x\nc: &self {me: *self}\n")
    assert data["a"] is data["b"]
    assert data["c"]["me"] is data["c"]


def test_contract_yaml_refuses_an_unhashable_key_in_pyyamls_words() -> None:
    import yaml

    from schemas import contract_yaml

    with pytest.raises(yaml.constructor.ConstructorError, match="found unhashable key"):
        contract_yaml.load("? [a, b]\n: c\n")


@pytest.fixture
def new_process() -> Callable[[], None]:
    """Forgets the contracts this process has cached, as a new process would not have them."""
    contract_module._in_process.clear()
    return contract_module._in_process.clear


@pytest.mark.parametrize(
    ("old", "new", "same_mtime"),
    [('"02:30"', '"03:45"', False), ("name: Acme", "name: Acme Co", True), ('"02:30"', '"03:45"', True)],
    ids=["same size, new mtime", "new size, same mtime", "same size and mtime, written within a second"],
)
def test_cached_contracts_follow_a_changed_file(
    tmp_path: Path, new_process: Callable[[], None], old: str, new: str, same_mtime: bool
) -> None:
    folder, home = tmp_path / "clients", tmp_path / "home"
    home.mkdir()
    write(folder, "acme.yaml", GOOD)
    original = cached_contracts(folder, home)
    file = folder / "acme.yaml"
    mtime = file.stat().st_mtime_ns + (0 if same_mtime else 10**9)  # set: no waiting for the clock to tick
    write(folder, "acme.yaml", GOOD.replace(old, new))
    os.utime(file, ns=(mtime, mtime))
    changed = load_contracts(folder)
    assert changed != original
    assert cached_contracts(folder, home) == changed  # in this process
    new_process()
    assert cached_contracts(folder, home) == changed  # in the next one, from the cache file


def test_the_contracts_cache_file_serves_the_next_process_and_a_corrupt_one_is_rebuilt(
    tmp_path: Path, new_process: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, home = tmp_path / "clients", tmp_path / "home"
    home.mkdir()
    write(folder, "acme.yaml", GOOD)
    expected = cached_contracts(folder, home)
    cache = home / contract_module.CACHE_FILE
    assert cache.exists()
    new_process()
    with monkeypatch.context() as patched:
        patched.setattr(contract_module, "parse_contract", lambda *args: pytest.fail("parsed again"))
        assert cached_contracts(folder, home) == expected
    cache.write_bytes(b"not a pickle")
    new_process()
    assert cached_contracts(folder, home) == expected
    assert cache.read_bytes() != b"not a pickle"  # rewritten


def test_only_the_files_whose_bytes_changed_are_parsed_again(
    tmp_path: Path, new_process: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, home = tmp_path / "clients", tmp_path / "home"
    home.mkdir()
    for name in ("a", "b", "c"):
        write(folder, f"{name}.yaml", GOOD.replace("id: acme", f"id: {name}"))
    cached_contracts(folder, home)
    parsed: list[str] = []
    parse = contract_module.parse_contract

    def counting(file: Path, data: bytes | None = None) -> tuple[Contract | None, list[ContractProblem]]:
        parsed.append(file.name)
        return parse(file, data)

    monkeypatch.setattr(contract_module, "parse_contract", counting)
    later = (folder / "a.yaml").stat().st_mtime_ns + 10**9
    os.utime(folder / "a.yaml", ns=(later, later))  # touched: same bytes
    write(folder, "b.yaml", GOOD.replace("id: acme", "id: b").replace("Acme", "Bee"))
    new_process()
    contracts = cached_contracts(folder, home)
    assert parsed == ["b.yaml"]
    assert contracts["b"].name == "Bee" and set(contracts) == {"a", "b", "c"}
    parsed.clear()
    new_process()
    assert cached_contracts(folder, home) == contracts  # the touch and the edit were written to the cache
    assert parsed == []


def test_a_broken_file_is_reported_by_name_until_fixed_and_the_others_stay_cached(
    tmp_path: Path, new_process: Callable[[], None]
) -> None:
    folder, home = tmp_path / "clients", tmp_path / "home"
    home.mkdir()
    write(folder, "a.yaml", GOOD.replace("id: acme", "id: a"))
    write(folder, "b.yaml", GOOD.replace("id: acme", "id: b"))
    cached_contracts(folder, home)
    write(folder, "b.yaml", GOOD.replace("id: acme", "id: b").replace("Europe/Amsterdam", "Nowhere"))
    new_process()
    with pytest.raises(ContractError, match=r"b\.yaml: timezone: 'Nowhere' is not an IANA timezone"):
        cached_contracts(folder, home)
    with pytest.raises(ContractError, match=r"b\.yaml"):  # in this process too: problems are never cached
        cached_contracts(folder, home)
    write(folder, "b.yaml", GOOD.replace("id: acme", "id: b").replace("Europe/Amsterdam", "Europe/Paris"))
    new_process()
    assert cached_contracts(folder, home)["b"].timezone == "Europe/Paris"


def test_the_cached_contracts_are_unpickled_only_for_a_file_still_as_cached(
    tmp_path: Path, new_process: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    import pickle

    folder, home = tmp_path / "clients", tmp_path / "home"
    home.mkdir()
    for name in ("a", "b"):
        write(folder, f"{name}.yaml", GOOD.replace("id: acme", f"id: {name}"))
    cached_contracts(folder, home)
    cache = home / contract_module.CACHE_FILE
    key, stats, _ = pickle.loads(cache.read_bytes())
    cache.write_bytes(pickle.dumps((key, stats, b"not a pickle")))  # the file stats kept, the contracts lost
    for name in ("a", "b"):  # every file edited (a deploy): the lost contracts are never needed
        write(folder, f"{name}.yaml", GOOD.replace("id: acme", f"id: {name}").replace("Acme", name.upper()))
    new_process()
    loaded: list[bytes] = []
    unpickle = pickle.loads
    with monkeypatch.context() as patched:
        patched.setattr(contract_module.pickle, "loads", lambda data: loaded.append(data) or unpickle(data))
        assert {c.name for c in cached_contracts(folder, home).values()} == {"A", "B"}
    assert b"not a pickle" not in loaded and len(loaded) == 1  # the cache file read, its contracts not
    _, stats, _ = pickle.loads(cache.read_bytes())
    cache.write_bytes(pickle.dumps((key, stats, b"not a pickle")))
    new_process()  # the files as cached, their contracts unreadable: parsed again, the cache rewritten
    assert {c.name for c in cached_contracts(folder, home).values()} == {"A", "B"}
    assert pickle.loads(pickle.loads(cache.read_bytes())[2])["a.yaml"].name == "A"
