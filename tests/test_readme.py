"""Every Python snippet of the README runs as typed, on a dataset at the path it names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_readme_has_python_snippets() -> None:
    assert len(python_blocks(README.read_text())) >= 1


@pytest.mark.parametrize("index", range(len(python_blocks(README.read_text()))))
def test_readme_snippet_runs_as_typed(
    index: int, built_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data" / "processed").mkdir(parents=True)
    (tmp_path / "data" / "processed" / "iam").symlink_to(built_dataset, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    code = python_blocks(README.read_text())[index]
    exec(compile(code, f"README.md python block {index + 1}", "exec"), {"__name__": "readme"})
