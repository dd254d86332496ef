"""What `make bench` reports: lines of ours against a reference, paired run by run, printed and saved as JSON.

The machines are noisy, so a line is never one absolute time: each run measures ours and its
reference back to back (interleaved), and the ratio is taken pair by pair; a line shows medians
with min–max. A reference is a peer (the DuckDB floor, dlt, `sftp -b`) or, where there is none,
the issue's target (a fixed figure, shown as such)."""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def runs(default: int) -> int:
    """How many runs a line takes: BENCH_RUNS when set, else `default`."""
    return int(os.environ.get("BENCH_RUNS", default))


def spread(values: list[float]) -> str:
    """`median (min–max)` of seconds or ratios, three significant figures."""
    if not values:
        return "-"
    return f"{statistics.median(values):.3g} ({min(values):.3g}–{max(values):.3g})"


@dataclass
class Line:
    """One line of the table: ours and the reference (seconds, one pair per run), and parts of ours.

    `target` is the largest ratio (ours / reference) the issue allows, `target_note` says it in words;
    `parts` are named parts of ours per run (read, write, peak MB...); `bound`, for a target not met,
    what bounds ours, in the run's own figures."""

    section: str
    name: str
    reference: str
    ours: list[float] = field(default_factory=list)
    theirs: list[float] = field(default_factory=list)
    parts: dict[str, list[float]] = field(default_factory=dict)
    target: float | None = None
    target_note: str = ""
    unit: str = "s"
    bound: str = ""

    def add(self, ours: float, theirs: float, **parts: float) -> None:
        """One run's pair (and ours' parts)."""
        self.ours.append(ours)
        self.theirs.append(theirs)
        for key, value in parts.items():
            self.parts.setdefault(key, []).append(value)

    @property
    def ratios(self) -> list[float]:
        """ours / reference of each run's pair."""
        return [a / b for a, b in zip(self.ours, self.theirs, strict=True) if b > 0]

    @property
    def verdict(self) -> str:
        """met / NOT met against the target, on the median ratio ('' without a target)."""
        if self.target is None or not self.ratios:
            return ""
        return "met" if self.median("ratio") <= self.target else "NOT met"

    def row(self) -> str:
        """The line as a Markdown table row (the README takes the table as printed)."""
        parts = ", ".join(f"{key} {self.median(key):.3g}" for key in self.parts)
        target = f"{self.target_note}: {self.verdict}" if self.target_note else ""
        if self.bound:
            target += f" ({self.bound})"
        theirs = spread(self.theirs) if any(self.theirs) else "-"
        cells = [self.section, self.name, self.unit, spread(self.ours), self.reference, theirs]
        return "| " + " | ".join([*cells, spread(self.ratios), parts, target]) + " |"

    def values(self, of: str = "ours") -> list[float]:
        """Run by run: ours, the reference's ("reference"), the ratios ("ratio") or one of ours' parts."""
        match of:
            case "ours":
                return self.ours
            case "reference":
                return self.theirs
            case "ratio":
                return self.ratios
        return self.parts.get(of, [])

    def median(self, of: str = "ours") -> float:
        """The median of `values(of)` (after at least one run)."""
        return statistics.median(self.values(of))

    def as_dict(self) -> dict[str, Any]:
        """JSON-native: the runs, and the medians and ratios as printed."""
        data = asdict(self)
        data["median"] = {of: self.median(of) if self.values(of) else None for of in ("ours", "reference", "ratio")}
        data["ratios"], data["verdict"] = self.ratios, self.verdict
        return data


HEADER = (
    "| section | line | unit | ours | reference | reference's | ours / reference | parts of ours (medians) | target |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def save(lines: list[Line], path: Path = RESULTS) -> Path:
    """Write the lines (with the date and machine) as JSON; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()}-core {platform.machine()}",
        "runs": runs(5),
        "lines": [line.as_dict() for line in lines],
    }
    path.write_text(json.dumps(document, indent=1) + "\n")
    return path
