"""The rejects report: every skipped row or sample is listed with its file, line and reason."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from iamchars.errors import UserError

REJECT_COLUMNS = ["stage", "file", "line", "item_id", "reason"]


class IAMFormatError(UserError, ValueError):
    """A malformed IAM row met in strict mode; the message names the file and line."""


@dataclass
class Rejects:
    """Collects what was skipped; in strict mode the first entry is raised instead."""

    strict: bool = False
    rows: list[dict[str, object]] = field(default_factory=list)

    def add(self, stage: str, file: str, line: int | None, item_id: str, reason: str) -> None:
        if self.strict:
            where = f"{file}:{line}" if line is not None else file
            raise IAMFormatError(f"{where}: {reason}" + (f" ({item_id})" if item_id else ""))
        self.rows.append({"stage": stage, "file": file, "line": line, "item_id": item_id, "reason": reason})

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=REJECT_COLUMNS)
        return df.astype({"line": "Int64"})
