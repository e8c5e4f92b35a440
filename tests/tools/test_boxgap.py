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
    rows = box_gap(synth_corpus, tmp_path, overrides, epochs=1, seeds=2, align_seeds=2, keep=0.8)
    assert [(r["seed"], r["align_seed"]) for r in rows] == [(0, 0), (1, 1)]
    assert all(0.0 < r["estimated"] <= 1.0 and 0.0 < r["true"] <= 1.0 and 0.0 < r["confident"] <= 1.0 for r in rows)
    for row, folder in zip(rows, ("estimated", "estimated-1"), strict=True):  # the best 80% of the whole dataset
        est = pd.read_parquet(tmp_path / folder / "manifest.parquet")
        best = est["confidence"].rank(ascending=False, method="first") <= round(0.8 * len(est))
        train = est["split"] == "train"
        assert row["confident_share"] == pytest.approx((best & train).sum() / train.sum())
        assert 0.5 < row["confident_share"] < 1.0
    assert (tmp_path / "run-estimated-1-confident-1" / "metrics.json").is_file()
    true = pd.read_parquet(tmp_path / "true" / "manifest.parquet")
    for k, folder in enumerate(("estimated", "estimated-1")):
        estimated = pd.read_parquet(tmp_path / folder / "manifest.parquet")
        assert (true["source"] == "gt").all() and (estimated["source"] != "gt").all()
        # the same writers in the same splits
        assert true.groupby("writer_id")["split"].first().equals(estimated.groupby("writer_id")["split"].first())
        assert re.search(rf'"align": {{[^}}]*"seed": {k},', (tmp_path / folder / "card.md").read_text())
        assert (tmp_path / f"run-{folder}-{k}" / "metrics.json").is_file()  # seed k learnt from aligner seed k


def test_confident_keeps_the_training_and_validation_characters_above_the_threshold() -> None:
    import numpy as np
    import torch

    from iamchars.train.tensors import Dataset, Split
    from tools.boxgap import confident

    def split(ids: list[str]) -> Split:
        n = len(ids)
        return Split(torch.zeros((n, 4, 4), dtype=torch.uint8), torch.arange(n), np.array(ids), torch.zeros((n, 4)))

    data = Dataset(split(["a", "b", "c", "d"]), split(["e", "f"]), split(["g"]), {"num_classes": 4}, 4)
    manifest = pd.DataFrame({"char_id": list("abcdefg"), "confidence": [0.9, 0.2, 0.6, 0.95, 0.1, 0.7, 0.0]})
    kept = confident(data, manifest, 0.5, None)
    assert kept.train.char_ids.tolist() == ["a", "c", "d"] and kept.train.labels.tolist() == [0, 2, 3]
    assert kept.val.char_ids.tolist() == ["f"] and kept.test.char_ids.tolist() == ["g"]  # the test split as it was
    assert kept.train.geometry is not None and kept.train.geometry.shape == (3, 4)
    assert confident(data, manifest, None, 3 / 7).train.char_ids.tolist() == ["a", "d"]  # the best 3 of 7 (f too)
    tied = manifest.assign(confidence=[0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1])
    assert confident(data, tied, None, 2 / 7).train.char_ids.tolist() == ["a", "b"]  # ties in manifest order


def test_box_gap_refuses_zero_seeds_before_any_work(synth_corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tools.boxgap import main

    assert main([str(synth_corpus), "--seeds", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--seeds, --epochs and --align-seeds must be at least 1" in err
