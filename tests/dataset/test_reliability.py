"""dataset/reliability.py: how well confidence predicts which boxes are right."""

from __future__ import annotations

import numpy as np
import pandas as pd

from iamchars.dataset.reliability import (
    auroc,
    boxes_right,
    calibration_bins,
    expected_calibration_error,
    reliability,
    share_right_of_most_confident,
    threshold_rows,
)


def test_auroc_counts_the_pairs_ranked_right_and_ties_half() -> None:
    right = np.array([True, True, False, False])
    assert auroc(np.array([0.9, 0.8, 0.2, 0.1]), right) == 1.0
    assert auroc(np.array([0.1, 0.2, 0.8, 0.9]), right) == 0.0
    assert auroc(np.array([0.9, 0.1, 0.5, 0.05]), right) == 0.75
    assert auroc(np.full(4, 0.5), right) == 0.5
    assert np.isnan(auroc(np.array([0.3, 0.4]), np.array([True, True])))


def test_calibration_error_is_zero_when_each_bin_is_as_right_as_it_says() -> None:
    confidence = np.array([0.95] * 20 + [0.55] * 20)
    right = np.array([True] * 19 + [False] + [True] * 11 + [False] * 9)
    bins = calibration_bins(confidence, right)
    assert bins["bin"].tolist() == [5, 9] and bins["characters"].tolist() == [20, 20]
    assert np.isclose(expected_calibration_error(confidence, right), 0.0)
    always = np.ones(40, bool)
    assert np.isclose(expected_calibration_error(confidence, always), (0.05 * 20 + 0.45 * 20) / 40)
    assert share_right_of_most_confident(confidence, right, keep=0.5) == 0.95


def test_thresholds_give_the_share_kept_and_the_expected_and_observed_share_right() -> None:
    confidence = np.array([0.2, 0.6, 0.75, 0.92, 0.96])
    rows = threshold_rows(confidence, np.array([False, True, False, True, True]))
    at = {r["threshold"]: r for r in rows}
    assert at[0.0]["kept"] == 1.0 and np.isclose(at[0.0]["expected_right"], confidence.mean())
    assert at[0.7]["kept"] == 0.6 and np.isclose(at[0.7]["observed_right"], 2 / 3)
    assert at[0.95]["kept"] == 0.2 and at[0.95]["observed_right"] == 1.0
    assert "observed_right" not in threshold_rows(confidence, None)[0]
    report = reliability(confidence, confidence > 0.5, "true boxes")
    assert (
        report["characters"] == 5 and report["auroc"] == 1.0 and len(report["bins"]) == 4
    )  # 0.92 and 0.96 share a bin


def test_a_box_is_right_when_it_overlaps_its_true_box_by_half() -> None:
    truth = pd.DataFrame({"word_id": ["w", "w"], "char_index": [0, 1], "x": [0, 10], "y": 0, "w": 10, "h": 10})
    est = pd.DataFrame({"word_id": ["w", "w", "v"], "char_index": [0, 1, 0], "x": [1, 16, 0], "y": 0, "w": 10, "h": 10})
    assert boxes_right(est, truth).tolist() == [True, False, False]  # IoU 0.82, 0.25, no truth
