"""tools/word_boxes.py: found word boxes scored against a corpus's own."""

from __future__ import annotations

from pathlib import Path


def test_word_boxes_scores_found_words_against_the_true_ones(pen_dev: Path, tmp_path: Path) -> None:
    from tests.corpora import subset
    from tools.word_boxes import found_word_iou

    iou, lines, _ = found_word_iou(subset(pen_dev, tmp_path / "iam", ["p00-000x", "p00-001x"]), [])
    assert lines > 0 and len(iou) >= lines
    assert iou.min() >= 0.0 and iou.max() <= 1.0 and iou.mean() > 0.5
