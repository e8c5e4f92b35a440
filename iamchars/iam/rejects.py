"""The rejects report: every skipped row or sample is listed with its file, line and reason."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from iamchars.errors import UserError

REJECT_COLUMNS = ["stage", "file", "line", "item_id", "reason"]
Reject = dict[str, object]
"""One row of the rejects report, keyed by REJECT_COLUMNS."""


def reject_row(stage: str, file: str, line: int | None, item_id: str, reason: str) -> Reject:
    """A rejects-report row: the stage that skipped it, the file and line it came from, its id and why. Every
    stage builds its rows here, so the report has one shape."""
    return {"stage": stage, "file": file, "line": line, "item_id": item_id, "reason": reason}


def reject_frame(rows: list[Reject]) -> pd.DataFrame:
    """Rows as the rejects table (the line an integer where known)."""
    return pd.DataFrame(rows, columns=REJECT_COLUMNS).astype({"line": "Int64"})


class IAMFormatError(UserError, ValueError):
    """A malformed IAM row met in strict mode; the message names the file and line."""


@dataclass
class Rejects:
    """Collects what was skipped; in strict mode the first entry is raised instead."""

    strict: bool = False
    rows: list[Reject] = field(default_factory=list)

    def add(self, stage: str, file: str, line: int | None, item_id: str, reason: str) -> None:
        if self.strict:
            where = f"{file}:{line}" if line is not None else file
            raise IAMFormatError(f"{where}: {reason}" + (f" ({item_id})" if item_id else ""))
        self.rows.append(reject_row(stage, file, line, item_id, reason))

    def frame(self) -> pd.DataFrame:
        return reject_frame(self.rows)
