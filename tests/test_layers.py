"""The package's floors: every import (lazy ones inside functions included) runs down, never up, so that
segment/ never reaches dataset/ or train/ and the CLI stays the only top (docs/ARCHITECTURE.md, "Layers");
inside segment/, from the pure primitives up to the corpus-wide stage."""

from __future__ import annotations

import ast
from pathlib import Path

import iamchars

FLOORS = {
    "__init__": 0,
    "errors": 0,
    "fileio": 1,
    "fonts": 1,
    "parallel": 1,
    "progress": 1,
    "viz": 1,
    "nn": 2,
    "config": 2,
    "iam": 3,
    "synth": 4,
    "layout": 4,
    "segment": 5,
    "dataset": 6,
    "train": 7,
    "data": 7,
    "cli": 8,
}
PACKAGE = Path(iamchars.__file__).parent


def floor_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_between_floors() -> set[tuple[str, str, str]]:
    """(importing file, its floor, the imported floor) for every iamchars import that crosses floors."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        here = floor_of(".".join(rel.parts))
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("iamchars") and floor_of(name) != here:
                    found.add((str(rel), here, floor_of(name)))
    return found


def test_every_module_has_a_floor_and_imports_only_run_down() -> None:
    edges = imports_between_floors()
    assert edges, "the scan found no import at all"
    unknown = {floor for _, a, b in edges for floor in (a, b)} - set(FLOORS)
    assert not unknown, f"modules without a floor: {unknown}"
    upward = sorted((f, a, b) for f, a, b in edges if FLOORS[a] <= FLOORS[b])
    assert not upward, f"imports running up or sideways: {upward}"
    assert not {b for _, a, b in edges if a == "segment"} & {"dataset", "train", "cli"}


SEGMENT_FLOORS = {
    **dict.fromkeys(
        ["slant", "vertical", "horizontal", "paths", "evaluate", "refine", "words", "selfcheck", "confidence"], 1
    ),
    **dict.fromkeys(["align", "align.alignment", "align.network", "align.selftrain"], 1),
    "pipeline": 2,
    "runner": 3,
    "aligned": 4,
    "methods": 5,
    **dict.fromkeys(["stage", "report", "pretrain"], 6),
}
"""Floors inside segment/: primitives (pure arrays, the aligner's network and self-training among them), a
line, a form (reads its images), the corpus pass, the methods' registry, the stages. Primitives may use each
other; every other import runs strictly down."""


def test_segment_floors_run_from_primitives_to_the_stage() -> None:
    folder = PACKAGE / "segment"
    modules = {
        ".".join(p.relative_to(folder).with_suffix("").parts).removesuffix(".__init__"): p
        for p in folder.rglob("*.py")
        if p.name != "__init__.py" or p.parent != folder
    }
    assert set(modules) == set(SEGMENT_FLOORS), "every module of segment/ has a floor in SEGMENT_FLOORS"
    wrong = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("iamchars.segment."):
                target = node.module.removeprefix("iamchars.segment.")
                here, there = SEGMENT_FLOORS[name], SEGMENT_FLOORS[target]
                if there > here or (there == here and here > 1):
                    wrong.append(f"{name} (floor {here}) imports {target} (floor {there})")
    assert not wrong, wrong
