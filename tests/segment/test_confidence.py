"""segment/confidence.py: each box's features and its calibrated confidence."""

from __future__ import annotations

import numpy as np
import pandas as pd

from iamchars.segment.confidence import (
    CALIBRATORS,
    FEATURES,
    HIGHEST,
    SPREAD_FLOOR,
    Calibrator,
    character_confidence,
    confidence_features,
)


def boxes(rows: list[tuple[str, int, int, float, float]]) -> pd.DataFrame:
    """(word_id, char_index, width, score, check_iou) rows as the runner's box table."""
    table = pd.DataFrame(rows, columns=["word_id", "char_index", "w", "score", "check_iou"])
    return table.assign(char="a", x=0, y=0, h=10)


def test_features_join_each_character_to_its_words_evidence() -> None:
    table = boxes([("w1", 0, 10, 0.8, np.nan), ("w1", 1, 30, 0.6, np.nan), ("w2", 0, 20, 0.9, 0.75)])
    evidence = {"w1": np.array([[0.1, -0.5], [0.3, -2.5]])}
    features = confidence_features(table, evidence)
    np.testing.assert_allclose(features["log_spread"][:2], np.log([0.1 + SPREAD_FLOOR, 0.3 + SPREAD_FLOOR]))
    np.testing.assert_allclose(features["log_word_spread"][:2], np.log(0.3 + SPREAD_FLOOR))  # the word's largest
    np.testing.assert_allclose(features["word_fit"][:2], -1.5)  # the word's mean fit
    np.testing.assert_allclose(features["log_width"][:2], np.log([0.5, 1.5]))  # against the word's mean width
    np.testing.assert_allclose(features["narrow"][:2], [np.log(0.5), 0.0])
    assert features["check_iou"].tolist() == [-1.0, -1.0, 0.75] and features["has_check"].tolist() == [0, 0, 1]
    assert features["aligned"].tolist() == [True, True, False]  # no posterior for w2
    assert set(FEATURES) <= set(features.columns)
    assert not confidence_features(table, None)["aligned"].any()


def test_confidence_is_a_probability_that_falls_with_a_bad_fit_and_a_wide_spread() -> None:
    rows = [(f"w{k}", i, 20, 0.5, np.nan) for k in range(4) for i in range(3)]
    evidence = {
        "w0": np.array([[0.05, -0.1]] * 3),  # sure of its cuts, the letters look like their ink
        "w1": np.array([[0.05, -6.0]] * 3),  # a transcription that is not what the ink says
        "w2": np.array([[0.8, -0.1]] * 3),  # unsure where its cuts go
    }
    confidence = character_confidence(confidence_features(boxes(rows), evidence))
    by_word = confidence.reshape(4, 3)[:, 0]
    assert ((confidence > 0) & (confidence <= HIGHEST)).all()
    logit = np.log(by_word / (1 - by_word))
    assert logit[0] > logit[1] + 1.5 and logit[0] > logit[2] + 1.0
    assert np.isclose(
        by_word[3], CALIBRATORS["boxes"].probability(confidence_features(boxes(rows[-3:]), None))[0], atol=1e-4
    )


def test_calibrators_may_be_given_and_the_highest_confidence_is_never_one() -> None:
    features = confidence_features(boxes([("w", 0, 10, 1.0, 1.0)]), {"w": np.array([[0.0, 0.0]])})
    sure = {name: Calibrator(c.features, (0.0,) * len(c.features), 50.0) for name, c in CALIBRATORS.items()}
    assert character_confidence(features, sure).tolist() == [HIGHEST]
    even = {name: Calibrator(c.features, (0.0,) * len(c.features), 0.0) for name, c in CALIBRATORS.items()}
    assert character_confidence(features, even).tolist() == [0.5]
