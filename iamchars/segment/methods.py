"""The segmentation methods, one registry: each name maps to its per-line function and, where it has one, its
corpus pass (work over the whole corpus that the per-line function then needs, given to it as cuts by word
id). `segment.method` in the config, the CLI's `--method`, `tools/bench.py` and the segmentation stage all read
`METHODS`; a new method is a function and an entry here."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from iamchars.config import ConfigError, SegmentConfig
from iamchars.fonts import FontMetrics
from iamchars.segment.pipeline import Cuts, LineBoxes, LineInput, cut_line, seed_line
from iamchars.segment.runner import LineMethod


@dataclass(frozen=True)
class CorpusCuts:
    """What a corpus pass found: every word's cuts, what it knows of each character (`alignment.EVIDENCE`,
    for its confidence), and what finding them took (the card reports it)."""

    cuts: dict[str, np.ndarray]
    evidence: dict[str, np.ndarray]
    stats: dict[str, Any]

    def of_words(self, word_ids: Iterable[str]) -> CorpusCuts:
        """The cuts and evidence of these words only (what one form's worker needs)."""
        kept = [w for w in word_ids if w in self.cuts]
        return CorpusCuts({w: self.cuts[w] for w in kept}, {w: self.evidence[w] for w in kept}, self.stats)


CorpusPass = Callable[
    [Path, Mapping[str, pd.DataFrame], Mapping[str, pd.DataFrame], SegmentConfig, int, Path | None, bool],
    CorpusCuts,
]
"""(IAM root, lines by form, words by form, config, worker processes, cache file for a killed run, progress)
-> the cuts of every word with ink."""


@dataclass(frozen=True)
class Method:
    name: str
    line: LineMethod
    """Character boxes of one line's words (`pipeline.LineBoxes`), given the corpus pass's cuts if any."""
    corpus_pass: CorpusPass | None = None
    """Run once over the whole corpus before any line is segmented; None for a method that needs none."""
    pieces: bool = True
    """A word whose letters are written apart takes its pieces of ink as its boxes (`runner.segment_form`)."""


class MissingCutsError(ValueError):
    """A method with a corpus pass asked to segment a line without that pass's cuts (a bug, not bad input)."""


def _refined_line(line: LineInput, cfg: SegmentConfig, font: FontMetrics, cuts: Cuts | None = None) -> LineBoxes:
    """Cuts snapped to each word's own ink from the font's (`refine`); no corpus pass."""
    return cut_line(line, cfg, font, None)


def _aligned_line(line: LineInput, cfg: SegmentConfig, font: FontMetrics, cuts: Cuts | None = None) -> LineBoxes:
    """The learned aligner's cuts (a word it did not align, having no ink in its strip, gets refined cuts)."""
    if cuts is None:
        raise MissingCutsError("the aligned method segments a line only with its corpus pass's cuts")
    return cut_line(line, cfg, font, cuts)


def _aligned_pass(
    root: Path,
    lines_by_form: Mapping[str, pd.DataFrame],
    words_by_form: Mapping[str, pd.DataFrame],
    cfg: SegmentConfig,
    workers: int,
    cache: Path | None,
    progress: bool,
) -> CorpusCuts:
    """Self-training of the aligner on the corpus's own words, then every word re-aligned (`aligned`)."""
    from iamchars.segment.aligned import align_corpus  # torch: only the learned method loads it

    found = align_corpus(root, lines_by_form, words_by_form, cfg, workers, cache, progress)
    return CorpusCuts(found.cuts, found.evidence, asdict(found.stats))


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("aligned", _aligned_line, _aligned_pass),
        Method("refined", _refined_line),
        Method("seed", seed_line, pieces=False),  # the reference: font cells only
    )
}


def method_of(name: str) -> Method:
    """The registered method of that name; a ConfigError naming the choices otherwise."""
    if name not in METHODS:
        raise ConfigError(f"segment.method = {name!r}: must be one of {', '.join(METHODS)}")
    return METHODS[name]
