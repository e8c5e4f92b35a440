"""Shared fixtures: a tiny hand-made IAM tree, and (session-scoped) one small synthetic corpus."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

REAL_SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "iam-real-sample"
PEN_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "pen-dev"
UNIPEN_DEV = Path(__file__).resolve().parents[1].parent / "shared" / "unipen-dev"

FORMS = """# forms.txt (tiny)
x01-000 100 1 all 2 2 5 5
x01-001 101 1 prt 1 0 2 0
x02-000 100 1 all 1 1 1 1
"""
# line x01-000-00 at (100, 200), 300 x 60; words inside it.
LINES = """# lines.txt (tiny)
x01-000-00 ok 170 5 100 200 300 60 Mr.|Foo|M Ps
x01-000-01 ok 170 3 100 300 200 50 ,|bar
x01-001-00 err 170 2 100 200 250 55 baz|qux
x02-000-00 ok 170 1 120 210 100 40 one
"""
WORDS = """# words.txt (tiny)
x01-000-00-00 ok 170 100 205 80 50 NPT Mr.
x01-000-00-01 ok 170 200 210 60 40 NP Foo
x01-000-00-02 ok 170 280 200 130 60 NPS M Ps
x01-000-01-00 ok 170 100 310 20 30 , ,
x01-000-01-01 ok 170 150 300 150 50 NN bar
x01-001-00-00 err 170 100 205 90 45 NN baz
x01-001-00-01 err 170 200 200 140 55 NN qux
x02-000-00-00 ok 170 120 210 100 40 CD one
"""


def write_tiny_iam(root: Path) -> Path:
    """A small IAM-format tree with images sized exactly as their boxes (one word box deliberately
    sticks out of its line: x01-000-00-02 ends at x=410 > 100+300)."""
    (root / "ascii").mkdir(parents=True)
    (root / "ascii" / "forms.txt").write_text(FORMS)
    (root / "ascii" / "lines.txt").write_text(LINES)
    (root / "ascii" / "words.txt").write_text(WORDS)
    rng = np.random.default_rng(0)
    for kind, text in (("lines", LINES), ("words", WORDS)):
        for row in text.splitlines()[1:]:
            f = row.split(" ")
            item = f[0]
            w, h = (int(f[6]), int(f[7])) if kind == "lines" else (int(f[5]), int(f[6]))
            parts = item.split("-")
            path = root / kind / parts[0] / f"{parts[0]}-{parts[1]}" / f"{item}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(path), rng.integers(200, 256, size=(h, w), dtype=np.uint8))
    return root


@pytest.fixture()
def tiny_iam(tmp_path: Path) -> Path:
    return write_tiny_iam(tmp_path / "iam")


@pytest.fixture()
def real_sample() -> Path:
    if not (REAL_SAMPLE / "ascii" / "lines.txt").is_file():
        pytest.skip("../shared/iam-real-sample is not present in this checkout")
    return REAL_SAMPLE


@pytest.fixture()
def pen_dev() -> Path:
    if not (PEN_DEV / "ascii" / "lines.txt").is_file():
        pytest.skip("../shared/pen-dev is not present in this checkout")
    return PEN_DEV


@pytest.fixture()
def unipen_dev() -> Path:
    if not (UNIPEN_DEV / "ascii" / "lines.txt").is_file():
        pytest.skip("../shared/unipen-dev is not present in this checkout")
    return UNIPEN_DEV


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One small synthetic corpus shared by the tests that only read it."""
    from iamchars.config import SplitConfig, SynthConfig
    from iamchars.synth.corpus import write_corpus

    root = tmp_path_factory.mktemp("synth") / "iam"
    cfg = SynthConfig(forms=8, lines_per_form=4, seed=7, workers=2, err_rate=0.15)
    write_corpus(root, cfg, SplitConfig(ratios=[0.5, 0.25, 0.25]), progress=False)
    return root


@pytest.fixture(scope="session")
def built_dataset(synth_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The dataset `build-dataset --method refined` makes of `synth_corpus`, for the tests that only read it."""
    from typer.testing import CliRunner

    from iamchars.cli import app

    out = tmp_path_factory.mktemp("ds") / "dataset"
    args = ["build-dataset", "--method", "refined", "--iam-root", str(synth_corpus), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--no-progress", "--workers", "2"])
    assert result.exit_code == 0, result.output
    return out
