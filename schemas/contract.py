"""The client contract: one YAML file per client, the single source for schema, samples and schedule."""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property, partial
from pathlib import Path
from time import time_ns
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pydantic import Field as PydField

from schemas.field_types import FIELD_TYPES, OPTIONS

if TYPE_CHECKING:
    FieldType = str
else:  # the registry's names: pydantic refuses any other, listing these
    FieldType = Literal[tuple(FIELD_TYPES)]
CLIENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
EVERY = re.compile(r"[1-9][0-9]*[hdw]")  # `expected_every`: hours, days or weeks
ARMOURED_KEY = r"^-----BEGIN PGP PUBLIC KEY BLOCK-----\s.+\s-----END PGP PUBLIC KEY BLOCK-----\s*$"


class ContractField(BaseModel):
    """One column of the client's files, in order."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = PydField(min_length=1)  # the column's header in CSV and Excel files
    # the field's id: its element name in XML files (`xml:` in the contract), its column in the store,
    # the key of its values everywhere in between
    id: str = PydField(alias="xml")
    type: FieldType = "string"
    required: bool = False
    values: tuple[str, ...] | None = None
    format: str | None = None  # strptime format for date/datetime, besides ISO

    @field_validator("id")
    @classmethod
    def _xml_name(cls, value: str) -> str:
        if not XML_NAME.match(value) or value.lower().startswith("xml"):
            raise ValueError(f"{value!r} is not a valid XML element name")
        return value

    @model_validator(mode="after")
    def _options(self) -> ContractField:
        """The options the field's type needs are set, and no option its type does not take."""
        spec = FIELD_TYPES[self.type]
        for option in OPTIONS:
            if option in spec.needs and not getattr(self, option):
                raise ValueError(f"{'an' if self.type[0] in 'aeiou' else 'a'} {self.type} field needs {option!r}")
            if option not in spec.options and getattr(self, option) is not None:
                takers = " and ".join(name for name, other in FIELD_TYPES.items() if option in other.options)
                raise ValueError(f"{option!r} is only for {takers} fields")
        return self


class CsvOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    delimiter: Literal[",", ";"] = ","


class Contract(BaseModel):
    """A client's contract. Field order is the column order of its CSV and Excel files."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    name: str
    timezone: str
    import_time: str
    max_rows: int = PydField(default=5000, gt=0)
    csv: CsvOptions = CsvOptions()
    sftp_dir: str | None = None
    expected_every: str | None = None  # "1d", "7d", "12h", "2w": silent longer, the overview lists the client
    pgp_public_key: str | None = None  # the client's ASCII-armoured public key: its files must be signed with it
    fields: tuple[ContractField, ...] = PydField(min_length=1)

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not CLIENT_ID.match(value):
            raise ValueError(f"{value!r} must match [a-z0-9][a-z0-9_-]*")
        return value

    @field_validator("sftp_dir")
    @classmethod
    def _sftp_dir(cls, value: str | None) -> str | None:
        if value is not None and (not value or "/" in value or value in (".", "..")):
            raise ValueError(f"{value!r} must be a single folder name")
        return value

    @field_validator("expected_every")
    @classmethod
    def _expected_every(cls, value: str | None) -> str | None:
        if value is not None and not EVERY.fullmatch(value):
            raise ValueError(f"{value!r} must be a whole number of hours, days or weeks: 12h, 1d, 7d, 2w")
        return value

    @field_validator("pgp_public_key")
    @classmethod
    def _pgp_public_key(cls, value: str | None) -> str | None:
        if value is not None and not re.search(ARMOURED_KEY, value, re.DOTALL):
            raise ValueError("must be an ASCII-armoured public key (gpg --armor --export …), BEGIN to END lines")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not an IANA timezone (e.g. Europe/Amsterdam)") from None
        return value

    @field_validator("import_time")
    @classmethod
    def _import_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} must be HH:MM (24-hour)")
        return value

    @model_validator(mode="after")
    def _fields(self) -> Contract:
        keys = [{"name": f.name, "xml": f.id, "type": f.type, "required": f.required} for f in self.fields]
        problems = field_list_problems(keys)  # what it reads of each field, without pydantic's dump of them all
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def directory(self) -> str:
        """The client's folder under the SFTP root."""
        return self.sftp_dir or self.id

    @property
    def expected_interval(self) -> timedelta | None:
        """How long the client usually goes between uploads at most (`expected_every`); None: not agreed."""
        if self.expected_every is None:
            return None
        count, unit = int(self.expected_every[:-1]), self.expected_every[-1]
        return timedelta(hours=count) if unit == "h" else timedelta(days=count * (7 if unit == "w" else 1))

    @property
    def email_field(self) -> ContractField:
        return next(f for f in self.fields if f.type == "email")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def cutoff_time(self) -> time:
        hours, minutes = self.import_time.split(":")
        return time(int(hours), int(minutes))

    def cutoff_on(self, day: date) -> datetime:
        """The cut-off instant of a local calendar day, normalised through UTC.

        A time skipped by a daylight-saving jump becomes the instant after the gap, so no day is
        skipped; an ambiguous time takes its first occurrence, so no day is doubled."""
        local = datetime.combine(day, self.cutoff_time, tzinfo=self.zone)
        return local.astimezone(UTC).astimezone(self.zone)

    def last_cutoff(self, now: datetime) -> datetime:
        """The most recent cut-off at or before `now`."""
        today = now.astimezone(self.zone).date()
        cutoff = self.cutoff_on(today)
        return cutoff if cutoff <= now else self.cutoff_on(today - timedelta(days=1))

    def next_cutoff(self, now: datetime) -> datetime:
        """The first cut-off strictly after `now`."""
        today = now.astimezone(self.zone).date()
        cutoff = self.cutoff_on(today)
        return cutoff if cutoff > now else self.cutoff_on(today + timedelta(days=1))


def field_list_problems(fields: list[dict[str, Any]]) -> list[str]:
    """Problems across the field list: duplicate names or XML names, not exactly one required email.

    Works on plain mappings too, so it reports alongside per-field errors of a contract that failed."""
    problems = []
    for attr in ("name", "xml"):
        seen: set[str] = set()
        for field in fields:
            key = field.get(attr)
            if key in seen:
                problems.append(f"duplicate field {attr} {key!r}")
            if isinstance(key, str):
                seen.add(key)
    emails = [f for f in fields if f.get("type") == "email"]
    if len(emails) != 1:
        problems.append(f"exactly one field of type email is needed, found {len(emails)}")
    elif not emails[0].get("required"):
        problems.append(f"the email field {emails[0].get('name')!r} must be required")
    return problems


@dataclass(frozen=True)
class ContractProblem:
    """One thing wrong in one contract file; `field` is the path inside it ('' for the file)."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class ContractError(Exception):
    """Contracts that cannot be loaded, with every problem found."""

    def __init__(self, problems: list[ContractProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def _location(loc: tuple[int | str, ...], raw: object) -> str:
    """A readable path for a pydantic error, naming fields by their `name` where there is one."""
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
            label = node.get("name") if isinstance(node, dict) else None
            parts[-1:] = [f"{parts[-1] if parts else ''}[{step}]" + (f" ({label})" if label else "")]
        else:
            node = node.get(step) if isinstance(node, dict) else None
            parts.append(str(step))
    return ".".join(parts)


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def _read_yaml(text: str) -> Any:
    """The document, read by libyaml and built quickly (schemas/contract_yaml.py).

    On an error the pure loader reads it again and decides: its messages quote the faulty line."""
    import yaml  # here, not at import time: a cached load never parses

    from schemas import contract_yaml

    try:
        return contract_yaml.load(text)
    except yaml.YAMLError:
        return yaml.safe_load(text)


def parse_contract(file: Path, data: bytes | None = None) -> tuple[Contract | None, list[ContractProblem]]:
    """Load one contract file (`data`: its bytes, when already read), returning it or every problem found in it."""
    import yaml

    name = file.name
    try:
        raw = _read_yaml((file.read_bytes() if data is None else data).decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [ContractProblem(name, "", "cannot be read as YAML: " + " ".join(str(exc).split()))]
    if not isinstance(raw, dict):
        return None, [ContractProblem(name, "", "must be a mapping of id, name, timezone, import_time, fields")]
    try:
        contract = Contract.model_validate(raw)
    except ValidationError as exc:
        problems = [
            ContractProblem(name, _location(tuple(err["loc"]), raw) or "fields", _message(err["msg"]))
            for err in exc.errors()
        ]
        raw_fields = raw.get("fields")
        if isinstance(raw_fields, list) and all(isinstance(f, dict) for f in raw_fields):
            seen = {p.message for p in problems}
            problems += [ContractProblem(name, "fields", m) for m in field_list_problems(raw_fields) if m not in seen]
        return None, problems
    return contract, []


Parse = Callable[[Path], tuple[Contract | None, list[ContractProblem]]]  # one file: its contract or problems


def contract_files(directory: Path) -> list[Path]:
    """The contract files of a folder (`*.yaml`, `*.yml`), sorted by name."""
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


def check_contracts(
    directory: Path, parse: Parse = parse_contract
) -> tuple[dict[str, Contract], list[ContractProblem]]:
    """Load every `*.yaml`/`*.yml` contract in a folder with `parse`; collect all problems, including clashes
    between files."""
    contracts: dict[str, Contract] = {}
    problems: list[ContractProblem] = []
    if not directory.is_dir():
        return {}, [ContractProblem(str(directory), "", "contracts folder not found")]
    dirs: dict[str, str] = {}
    for file in contract_files(directory):
        contract, found = parse(file)
        problems.extend(found)
        if contract is None:
            continue
        if contract.id in contracts:
            problems.append(ContractProblem(file.name, "id", f"client id {contract.id!r} is used by another file"))
            continue
        if contract.directory in dirs:
            problems.append(
                ContractProblem(
                    file.name, "sftp_dir", f"folder {contract.directory!r} is used by {dirs[contract.directory]}"
                )
            )
            continue
        contracts[contract.id] = contract
        dirs[contract.directory] = file.name
    return contracts, problems


def load_contracts(directory: Path, parse: Parse = parse_contract) -> dict[str, Contract]:
    """All contracts of a folder by client id; raises ContractError listing every problem."""
    contracts, problems = check_contracts(directory, parse)
    if problems:
        raise ContractError(problems)
    return contracts


# --- the contracts cache -------------------------------------------------------------------------
# Parsing and validating 1,000 contracts costs ~0.25 s; `status` reads them on every call and a
# worker on every flow run. Each file's contract is kept with the file's mtime, size and the digest
# of its bytes, in the process and in a pickle in a folder the caller names (the platform's home,
# which holds the store: trusted like it). A file whose mtime or size changed is read again (so is
# one modified less than a second before it was read), and parsed again only when its bytes did: an
# edit costs one parse, a `touch` or a checkout none. A cache file that cannot be read is ignored
# and rewritten.

CACHE_FILE = "contracts.pickle"
# the code that parses: a change to it parses every file again
CODE = tuple(Path(__file__).with_name(name) for name in ("contract.py", "contract_yaml.py", "field_types.py"))
SETTLED_NS = 10**9  # a file's mtime is trusted once it is this old


class Parsed(NamedTuple):
    """One contract file as last parsed: its mtime (-1: too new to trust) and size, its bytes' digest, and
    its contract (None while it is still pickled in the cache file)."""

    mtime_ns: int
    size: int
    digest: bytes
    contract: Contract | None


# what the cached files are valid for: the folder and the (mtime, size) of the code that parsed them
CacheKey = tuple[str, tuple[tuple[int, int], ...]]


class Cache:
    """The cached files of a folder, by name. Read from the cache file, their contracts stay pickled until
    one is asked for: when every file changed (a deploy), none is unpickled (40 ms for 1,000)."""

    def __init__(self, key: CacheKey, files: dict[str, Parsed], pickled: bytes = b"") -> None:
        self.key, self.files = key, files
        self._pickled = pickled
        self._unpickled: dict[str, Contract] | None = None if pickled else {}
        self.damaged = False  # its contracts could not be read: write it again

    def contract(self, name: str) -> Contract | None:
        """The contract of a cached file; None when the cache file's contracts cannot be read (parse it)."""
        found = self.files[name].contract
        if found is None:
            if self._unpickled is None:
                try:
                    self._unpickled = pickle.loads(self._pickled)
                except Exception:  # truncated, corrupt or from other code: the files are parsed again
                    self._unpickled = {}
            found = self._unpickled.get(name) if isinstance(self._unpickled, dict) else None
            self.damaged = self.damaged or found is None
        return found

    def stats(self) -> dict[str, tuple[int, int, bytes]]:
        """What the cache knows of each file: its mtime, size and digest (they decide its contract)."""
        return {name: (f.mtime_ns, f.size, f.digest) for name, f in self.files.items()}


_in_process: dict[Path, Cache] = {}  # by cache file


def _cache_key(directory: Path) -> CacheKey:
    code = tuple((stat.st_mtime_ns, stat.st_size) for stat in (path.stat() for path in CODE))
    return str(directory.resolve()), code


def _read_cache(cache: Path) -> Cache | None:
    """The cache this process holds, else the one pickled in `cache` (None: missing or not readable at all)."""
    if cache in _in_process:
        return _in_process[cache]
    try:
        key, stats, pickled = pickle.loads(cache.read_bytes())
        files = {name: Parsed(mtime, size, digest, None) for name, (mtime, size, digest) in stats.items()}
    except Exception:  # missing, truncated, corrupt or from other code: rebuilt by the caller
        return None
    return Cache(key, files, pickled) if isinstance(pickled, bytes) else None


def _write_cache(cache: Path, content: Cache) -> None:
    """Pickle the cache (the files' stats, and their contracts pickled apart): to a new temporary name,
    then renamed over the cache file (atomic).

    Best effort: a cache folder that does not exist (yet) or cannot be written only costs speed."""
    temporary = cache.with_name(f".{cache.name}.{os.urandom(8).hex()}")
    try:
        contracts = {name: content.contract(name) for name in content.files}
        stored = (content.key, content.stats(), pickle.dumps(contracts, protocol=pickle.HIGHEST_PROTOCOL))
        with temporary.open("xb") as out:
            pickle.dump(stored, out, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(temporary, cache)
    except OSError:
        temporary.unlink(missing_ok=True)


def _parse_unless_known(
    known: Cache, parsed: dict[str, Parsed], file: Path
) -> tuple[Contract | None, list[ContractProblem]]:
    """`parse_contract`, skipped while the file is as `known` holds it; a valid file is added to `parsed`."""
    try:
        stat = file.stat()  # before reading: a write after it changes the mtime, seen next time
        seen, contract = known.files.get(file.name), None
        if seen is not None and (seen.mtime_ns, seen.size) == (stat.st_mtime_ns, stat.st_size):
            contract = known.contract(file.name)
            if contract is not None:
                parsed[file.name] = seen._replace(contract=contract)
                return contract, []
        data = file.read_bytes()
        digest = hashlib.sha256(data).digest()
        # a second write within the same clock tick would keep the mtime: so new a file is compared again
        mtime = stat.st_mtime_ns if time_ns() - stat.st_mtime_ns >= SETTLED_NS else -1
        if seen is not None and seen.digest == digest:
            contract = known.contract(file.name)
        if contract is None:  # new bytes, or the cache file's contracts could not be read
            contract, problems = parse_contract(file, data)
            if contract is None:
                return None, problems  # problems are never cached
    except OSError:
        return parse_contract(file)  # gone or unreadable: its problem, in its words
    parsed[file.name] = Parsed(mtime, stat.st_size, digest, contract)
    return contract, []


def cached_contracts(directory: Path, cache_dir: Path) -> dict[str, Contract]:
    """`load_contracts`, parsing only the files whose bytes changed since the last call.

    Kept in this process, and in `cache_dir/contracts.pickle` for the next process (written when
    `cache_dir` exists). The contracts are shared: treat them as read-only. Raises ContractError
    like `load_contracts`."""
    if not directory.is_dir():
        return load_contracts(directory)  # raises: the folder is missing
    cache, key = cache_dir / CACHE_FILE, _cache_key(directory)
    stored = _read_cache(cache)
    known = stored if stored is not None and stored.key == key else Cache(key, {})
    parsed: dict[str, Parsed] = {}
    try:
        return load_contracts(directory, partial(_parse_unless_known, known, parsed))
    finally:  # the valid files, even when another one has problems
        _in_process[cache] = Cache(key, parsed)
        if known.damaged or known.stats() != _in_process[cache].stats():
            _write_cache(cache, _in_process[cache])
