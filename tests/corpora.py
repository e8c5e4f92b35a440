"""Corpora for tests made from the shared development data."""

from __future__ import annotations

import shutil
from pathlib import Path


def subset(root: Path, out: Path, forms: list[str]) -> Path:
    """An IAM root holding only the given forms of `root` (text files filtered, line images copied)."""
    for name in ("forms.txt", "lines.txt", "words.txt"):
        rows = (root / "ascii" / name).read_text().splitlines(keepends=True)
        kept = [r for r in rows if r.startswith("#") or any(r.startswith(f) for f in forms)]
        (out / "ascii").mkdir(parents=True, exist_ok=True)
        (out / "ascii" / name).write_text("".join(kept))
    for form in forms:
        shutil.copytree(root / "lines" / form[:3] / form, out / "lines" / form[:3] / form)
    return out
