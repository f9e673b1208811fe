"""Exceptions raised by the library; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from features.errors import FeatureError
from models.errors import ModelError


class RecommenderError(ValueError):
    """Base class of the application's errors; the CLI reports them as a clean message (exit code 2)."""


@dataclass
class Problem:
    """One validation problem: what is wrong, and on which (0-based data) rows."""

    reason: str
    rows: Sequence[int] = field(default_factory=list)
    count: int | None = None

    @property
    def n(self) -> int:
        return self.count if self.count is not None else len(self.rows)

    def describe(self, max_rows: int = 5) -> str:
        rows = list(self.rows)[:max_rows]
        # Report 1-based line numbers of the file (line 1 is the header).
        where = ", ".join(str(r + 2) for r in rows)
        more = f" (+{self.n - len(rows)} more)" if self.n > len(rows) else ""
        at = f" at line(s) {where}{more}" if rows else ""
        if self.count == 0 and not rows:
            return self.reason  # about the whole file, not some of its rows
        return f"{self.reason}: {self.n} row(s){at}"


class DataValidationError(RecommenderError):
    """A file failed validation. Nothing was written."""

    def __init__(self, source: str, problems: Sequence[Problem], *, hint: str = ""):
        self.source = source
        self.problems = list(problems)
        self.hint = hint
        super().__init__(self.render())

    def render(self, max_problems: int = 10) -> str:
        total = sum(p.n for p in self.problems)
        counted = f", {total} problem row(s) in {len(self.problems)} check(s)" if total else ""
        lines = [f"{self.source}: rejected{counted}; nothing was written."]
        lines += [f"  - {p.describe()}" for p in self.problems[:max_problems]]
        if len(self.problems) > max_problems:
            lines.append(f"  ... and {len(self.problems) - max_problems} more check(s)")
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        return "\n".join(lines)


class BankConflictError(RecommenderError):
    """An ingest would overlap data already in the bank."""


class BankEmptyError(RecommenderError):
    """The data bank holds no table the operation needs."""


USER_ERRORS = (RecommenderError, FeatureError, ModelError)
"""What a user can fix, from every layer: catch these (the CLI maps them to exit 2); anything else is a bug."""
