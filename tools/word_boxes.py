"""How well `build-dataset` finds word boxes on lines that have none: the words of every line of an IAM root
found in its ink, as they would be with `--ignore-word-boxes`, scored against the root's own words.txt boxes.

    python -m tools.word_boxes --iam-root ../shared/pen-dev
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from iamchars.config import load_config
from iamchars.iam.corpus import load_corpus
from iamchars.segment.evaluate import box_iou
from iamchars.segment.runner import find_form_words


def found_word_iou(root: Path, overrides: list[str]) -> tuple[np.ndarray, int, float]:
    """IoU of each found word box with the true one (lines whose token count matches their word rows), the
    number of lines scored, and the seconds taken."""
    cfg = load_config(None, overrides)
    corpus = load_corpus(root, cfg.parse, cfg.split)
    words = corpus.words[corpus.words["valid"]].set_index("word_id")
    tokens = corpus.lines["transcription"].str.split("|").str.len()
    counts = corpus.words.groupby("line_id").size()
    lines = corpus.lines[corpus.lines["valid"] & (tokens == corpus.lines["line_id"].map(counts))]
    start = time.perf_counter()
    found = find_form_words(root, lines, cfg.segment).words.set_index("word_id")
    seconds = time.perf_counter() - start
    shared = found.index.intersection(words.index)
    columns = ["x", "y", "w", "h"]
    iou = box_iou(found.loc[shared, columns].to_numpy(float), words.loc[shared, columns].to_numpy(float))
    return iou, len(lines), seconds


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iam-root", type=Path, required=True)
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value")
    args = parser.parse_args(argv)
    iou, lines, seconds = found_word_iou(args.iam_root, args.overrides)
    print(
        f"{args.iam_root}: {len(iou):,} words of {lines:,} lines; found vs true word box IoU mean {iou.mean():.3f}, "
        f">= 0.5 {100 * (iou >= 0.5).mean():.1f}%, >= 0.8 {100 * (iou >= 0.8).mean():.1f}%; "
        f"{1000 * seconds / max(lines, 1):.1f} ms per line"
    )


if __name__ == "__main__":
    main()
