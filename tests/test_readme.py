"""Every Python snippet of the README runs as typed, on a dataset at the path it names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # on a built dataset

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_readme_has_python_snippets() -> None:
    assert len(python_blocks(README.read_text())) >= 1


def _checks(root: Path) -> dict[str, Callable[[Any, dict[str, Any]], bool]]:
    """What each name the README's snippets define must hold, against the dataset itself."""
    manifest = pd.read_parquet(root / "manifest.parquet")
    train = manifest[manifest["split"] == "train"]
    classes = json.loads((root / "classes.json").read_text())
    size = int(classes["image_size"])
    folders = sorted(p.name for p in (root / "images" / "val").iterdir())
    return {
        "images": lambda v, ns: tuple(v.shape[1:]) == (1, size, size) and 0 <= float(v.min()) <= float(v.max()) <= 1,
        "labels": lambda v, ns: len(v) == len(ns["images"]) and set(v.tolist()) <= set(train["label"]),
        "x": lambda v, ns: v.shape == (len(train), size, size) and v.dtype == np.uint8,
        "y": lambda v, ns: np.array_equal(v, train["label"].to_numpy()),
        "g": lambda v, ns: v.shape == (len(train), 3),
        "chars": lambda v, ns: all(v[int(r.label)] == r.char for r in train.itertuples()),
        "m": lambda v, ns: len(v) == len(manifest),
        "good": lambda v, ns: len(v) == int((manifest["confidence"] > 0.9).sum()),
        "mapping": lambda v, ns: sorted(v) == folders and sorted(v.values()) == list(range(len(folders))),
    }


@pytest.mark.parametrize("index", range(len(python_blocks(README.read_text()))))
def test_readme_snippet_runs_as_typed_and_gives_what_it_says(
    index: int, built_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "processed").mkdir(parents=True)
    (tmp_path / "data" / "processed" / "iam").symlink_to(built_dataset, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    code = python_blocks(README.read_text())[index]
    namespace: dict[str, Any] = {"__name__": "readme"}
    exec(compile(code, f"README.md python block {index + 1}", "exec"), namespace)
    checks = _checks(built_dataset)
    checked = [name for name in checks if name in namespace]
    assert checked, f"README python block {index + 1} defines none of the names this test checks: add a check"
    wrong = [name for name in checked if not checks[name](namespace[name], namespace)]
    assert not wrong, f"README python block {index + 1}: {wrong} do not hold what the README says"
