"""The worst segmentation cases: each word with its true boxes (green) and estimated boxes (red)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from iamchars.viz.overlay import caption, stack_rows


def worst_cases_picture(
    worst: pd.DataFrame,
    word_chars: pd.DataFrame,
    words: pd.DataFrame,
    images: dict[str, np.ndarray],
    lines: pd.DataFrame,
    zoom: float = 1.5,
) -> np.ndarray:
    """`worst`: rows of the worst characters; `word_chars`: all matched characters of their words."""
    origins = lines.set_index("line_id")[["x", "y"]]
    word_box = words.set_index("word_id")[["x", "y", "w", "h", "line_id", "text"]]
    panels = []
    for row in worst.itertuples(index=False):
        wb = word_box.loc[row.word_id]
        gray = images.get(str(wb["line_id"]))
        if gray is None:
            continue
        ox, oy = origins.loc[wb["line_id"]]
        pad = 10
        x0, y0 = max(0, int(wb["x"] - ox) - pad), max(0, int(wb["y"] - oy) - pad)
        x1, y1 = (
            min(gray.shape[1], int(wb["x"] - ox + wb["w"]) + pad),
            min(gray.shape[0], int(wb["y"] - oy + wb["h"]) + pad),
        )
        crop = cv2.cvtColor(gray[y0:y1, x0:x1], cv2.COLOR_GRAY2BGR)
        chars = word_chars[word_chars["word_id"] == row.word_id]
        for c in chars.itertuples(index=False):
            bad = c.char_index == row.char_index
            for (bx, by, bw, bh), color in (
                ((c.x, c.y, c.w, c.h), (0, 170, 0)),
                ((c.x_est, c.y_est, c.w_est, c.h_est), (0, 0, 230)),
            ):
                if np.isnan(bx):
                    continue
                p0 = (int(bx - ox) - x0, int(by - oy) - y0)
                p1 = (int(bx + bw - ox) - x0 - 1, int(by + bh - oy) - y0 - 1)
                cv2.rectangle(crop, p0, p1, color, 2 if bad else 1)
        crop = cv2.resize(crop, None, fx=zoom, fy=zoom, interpolation=cv2.INTER_LINEAR)
        panels.append(
            caption(crop, f"{row.word_id} '{wb['text']}' char {row.char_index} '{row.char}': IoU {row.iou:.2f}")
        )
    return stack_rows([_legend(), *panels])


def _legend() -> np.ndarray:
    """Which colour is which, drawn in those colours."""
    image = np.full((26, 520, 3), 255, np.uint8)
    for x, color, text in ((4, (0, 170, 0), "green: true box"), (160, (0, 0, 230), "red: estimated box")):
        cv2.rectangle(image, (x, 6), (x + 14, 20), color, 2)
        cv2.putText(image, text, (x + 20, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    cv2.putText(image, "(thick: the worst)", (345, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return image
