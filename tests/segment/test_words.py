"""Word boxes found in a line's ink (`segment.words`), on tiny drawn lines."""

from __future__ import annotations

import numpy as np

from iamchars.fonts import load_font
from iamchars.segment.words import find_word_boxes

FONT = load_font("dancing-script", 64)


def line_of(spans: list[tuple[int, int]], width: int = 400, height: int = 40) -> np.ndarray:
    """White paper with an upright block of ink over each (x0, x1) column span, rows 12..28."""
    gray = np.full((height, width), 255, np.uint8)
    for x0, x1 in spans:
        gray[12:28, x0:x1] = 0
    return gray


def test_words_part_at_the_widest_blanks() -> None:
    # "ab" drawn as two letters with a narrow blank, then a wide blank, then "cd"
    gray = line_of([(20, 40), (44, 64), (110, 130), (134, 154)])
    boxes = find_word_boxes(gray, 128, ["ab", "cd"], FONT, 0.0, 1)
    assert boxes is not None
    assert boxes.tolist() == [[20, 12, 44, 16], [110, 12, 44, 16]]


def test_word_widths_follow_the_font_when_blanks_are_alike() -> None:
    # four letters at equal spacing: "a" then "bcd" is the split the font's widths ask for
    gray = line_of([(20, 40), (50, 70), (80, 100), (110, 130)])
    boxes = find_word_boxes(gray, 128, ["a", "bcd"], FONT, 0.0, 1)
    assert boxes is not None
    assert boxes[:, 0].tolist() == [20, 50]
    assert (boxes[0, 0] + boxes[0, 2], boxes[1, 0] + boxes[1, 2]) == (40, 130)


def test_a_word_touching_the_next_is_cut_in_its_ink() -> None:
    gray = line_of([(20, 140)])  # one unbroken stroke holding two words
    boxes = find_word_boxes(gray, 128, ["abc", "def"], FONT, 0.0, 1)
    assert boxes is not None
    assert boxes[0, 0] == 20 and boxes[1, 0] + boxes[1, 2] == 140
    cut = boxes[1, 0]
    assert abs(cut - 80) < 20  # near the middle: both words have three letters
    assert boxes[0, 0] + boxes[0, 2] <= cut + 2  # the shear of a slant under a degree may overlap by a pixel


def test_a_blank_line_has_no_words() -> None:
    assert find_word_boxes(np.full((40, 200), 255, np.uint8), 128, ["a"], FONT, 0.0, 1) is None
