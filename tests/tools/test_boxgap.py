"""`make box-gap` (tools/boxgap.py): true and estimated boxes exported alike, the CNN trained on each."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # dataset builds and trainings


def test_box_gap_trains_on_true_and_estimated_boxes_and_tests_on_true(synth_corpus: Path, tmp_path: Path) -> None:
    from tools.boxgap import box_gap

    overrides = ["train.model='lenet5'", "train.batch_size=64", "train.channels_last=false"]
    overrides += [
        "segment.align.steps=10",
        "segment.align.rounds=1",
        "segment.align.runs=1",
    ]  # the default method, quickly
    rows = box_gap(synth_corpus, tmp_path, overrides, epochs=1, seeds=2, align_seeds=2)
    assert [(r["seed"], r["align_seed"]) for r in rows] == [(0, 0), (1, 1)]
    assert all(0.0 < r["estimated"] <= 1.0 and 0.0 < r["true"] <= 1.0 for r in rows)
    true = pd.read_parquet(tmp_path / "true" / "manifest.parquet")
    for k, folder in enumerate(("estimated", "estimated-1")):
        estimated = pd.read_parquet(tmp_path / folder / "manifest.parquet")
        assert (true["source"] == "gt").all() and (estimated["source"] != "gt").all()
        # the same writers in the same splits
        assert true.groupby("writer_id")["split"].first().equals(estimated.groupby("writer_id")["split"].first())
        assert re.search(rf'"align": {{[^}}]*"seed": {k},', (tmp_path / folder / "card.md").read_text())
        assert (tmp_path / f"run-{folder}-{k}" / "metrics.json").is_file()  # seed k learnt from aligner seed k


def test_box_gap_refuses_zero_seeds_before_any_work(synth_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tools.boxgap import main

    assert main([str(synth_corpus), "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seeds, --epochs and --align-seeds must be at least 1" in err
