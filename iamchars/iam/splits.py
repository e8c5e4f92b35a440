"""Writer-disjoint splits: IAM's Large Writer Independent task files when present, else a writer hash.

The task files list line ids; they are mapped line -> form -> writer, and a writer's split is decided once,
so no writer can sit in two splits even where the lists disagree (test beats val beats train).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import pandas as pd

from iamchars.iam.parse import parent_id

SPLITS = ("train", "val", "test")
TASK_FILES = {
    "trainset.txt": "train",
    "validationset1.txt": "val",
    "validationset2.txt": "val",
    "testset.txt": "test",
}
_PRECEDENCE = {"test": 3, "val": 2, "train": 1}


def hash_split(writer_ids: Sequence[str], ratios: Sequence[float], seed: int) -> dict[str, str]:
    """A deterministic split of writers: writers are ordered by the sha256 of (seed, writer id) and cut by
    the ratios, with at least one writer in every split that asks for a share (when there are enough
    writers), so a small corpus never ends up with an empty validation or test split."""
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ValueError(f"split ratios must be three non-negative shares, got {list(ratios)}")
    order = sorted(writer_ids, key=lambda w: hashlib.sha256(f"{seed}:{w}".encode()).digest())
    n = len(order)
    total = float(sum(ratios))
    counts = [round(n * r / total) for r in ratios]
    for i in (1, 2):
        if ratios[i] > 0 and counts[i] == 0 and n >= 3:
            counts[i] = 1
    counts[1] = min(counts[1], n)
    counts[2] = min(counts[2], n - counts[1])
    counts[0] = n - counts[1] - counts[2]
    labels = ["train"] * counts[0] + ["val"] * counts[1] + ["test"] * counts[2]
    return dict(zip(order, labels, strict=True))


def writer_splits_from_task(
    task_lines: Mapping[str, Sequence[str]], form_writer: Mapping[str, str]
) -> tuple[dict[str, str], int]:
    """Task-file line ids -> {writer: split}; returns the number of writers listed in more than one split."""
    seen: dict[str, set[str]] = {}
    for split, line_ids in task_lines.items():
        for line_id in line_ids:
            writer = form_writer.get(parent_id(line_id))
            if writer is not None:
                seen.setdefault(writer, set()).add(split)
    conflicts = sum(len(s) > 1 for s in seen.values())
    return {w: max(s, key=_PRECEDENCE.__getitem__) for w, s in seen.items()}, conflicts


def assign_form_splits(
    forms: pd.DataFrame,
    task_lines: Mapping[str, Sequence[str]] | None,
    ratios: Sequence[float],
    seed: int,
    unlisted: str = "hash",
) -> tuple[pd.Series, dict[str, int]]:
    """Split per form (indexed by form_id) and a few counts for the report.

    Writers the task files do not list are split by hash ("hash") or marked "excluded" ("exclude")."""
    if unlisted not in ("hash", "exclude"):
        raise ValueError(f"split.unlisted must be 'hash' or 'exclude', got {unlisted!r}")
    form_writer = dict(zip(forms["form_id"], forms["writer_id"], strict=True))
    writers = sorted(set(form_writer.values()))
    listed: dict[str, str] = {}
    conflicts = 0
    if task_lines:
        listed, conflicts = writer_splits_from_task(task_lines, form_writer)
    rest = [w for w in writers if w not in listed]
    fallback = hash_split(rest, ratios, seed) if unlisted == "hash" else dict.fromkeys(rest, "excluded")
    by_writer = {**fallback, **listed}
    split = pd.Series({f: by_writer[w] for f, w in form_writer.items()}, dtype="string", name="split")
    split.index.name = "form_id"
    stats = {
        "writers_from_task_files": len(listed),
        "writers_unlisted": len(rest),
        "writer_conflicts": conflicts,
    }
    return split, stats
