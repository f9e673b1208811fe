"""Exceptions raised by the library; only the CLI turns them into messages and exit codes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from features.errors import FeatureError
from models.errors import ModelError

if TYPE_CHECKING:  # numpy and Arrow load when a problem is recorded, not when the CLI starts
    import numpy as np
    import pyarrow as pa


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


MAX_ROWS_KEPT = 20
"""Rows a problem keeps to show (it counts all)."""


class ProblemCollector:
    """Accumulates problems by reason, keeping the first rows and counting all."""

    def __init__(self) -> None:
        self._problems: dict[str, Problem] = {}

    def add(self, reason: str, rows: np.ndarray | list[int], offset: int = 0, *, count: int | None = None) -> None:
        """Record ``rows`` (kept up to a limit) under ``reason``; ``count`` overrides how many rows it adds."""
        import numpy as np

        rows = np.asarray(rows, dtype=np.int64)
        if rows.size == 0:
            return
        p = self._problems.setdefault(reason, Problem(reason, [], 0))
        p.rows = list(p.rows) + [int(r) + offset for r in rows[: max(0, MAX_ROWS_KEPT - len(p.rows))]]
        p.count = (p.count or 0) + (int(rows.size) if count is None else count)

    def add_mask(self, reason: str, mask: pa.Array | np.ndarray, offset: int) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if isinstance(mask, pa.Array | pa.ChunkedArray):
            if not pc.any(mask).as_py():  # the usual case, without turning Arrow's bits into numpy bytes
                return
            mask = mask.to_numpy(zero_copy_only=False)
        arr = np.asarray(mask)
        if arr.dtype == object:
            arr = arr.astype(bool)
        if arr.any():
            self.add(reason, np.flatnonzero(arr), offset)

    @property
    def problems(self) -> list[Problem]:
        return list(self._problems.values())

    def __bool__(self) -> bool:
        return bool(self._problems)


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
