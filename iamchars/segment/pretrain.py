"""The aligner's starting point: a `SegmentNet` trained on a synthetic corpus whose true character boxes give
exact cuts, shipped as `segment/align/weights.pt` (0.6 MB, `segment.align.WEIGHTS`) and re-made by
`make aligner-weights`.

Self-training then adapts it to the target corpus: the fonts teach what letters look like, the corpus's own
words teach its writers' widths. Pretraining sees the fonts unstretched (docs/experiments/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from iamchars.config import AlignConfig, SegmentConfig, SplitConfig, SynthConfig
from iamchars.fonts import load_font
from iamchars.iam.corpus import load_corpus
from iamchars.segment.align.alignment import ALPHABET, AlignmentWord, strip_image
from iamchars.segment.align.selftrain import fit_segment_net
from iamchars.segment.pipeline import line_char_width, prepare_line
from iamchars.segment.refine import WordStrip
from iamchars.segment.runner import load_line_images, readable_lines, words_by_line

CORPUS = SynthConfig(forms=240, lines_per_form=8, seed=11)
"""The pretraining corpus: tuning fonts only (the synth default), so the held-out fonts stay unseen
(docs/experiments/2026-11-26-larger-pretraining-corpus.md)."""
STEPS = 6000


def cuts_from_boxes(strip: WordStrip, boxes: np.ndarray) -> np.ndarray | None:
    """True cuts (deslanted ink columns) from each character's true box (line coordinates): half-way between
    the 90th percentile column of one character's pixels and the 10th of the next's. None when a character
    owns no ink or two cuts come closer than a column."""
    n = len(boxes)
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    xs, ys = strip.xs[:, None], strip.ys[:, None]
    inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    owner = np.where(inside.any(axis=1), inside.argmax(axis=1), -1)
    cuts = np.empty(n + 1)
    cuts[0], cuts[n] = 0.0, float(strip.length)
    for i in range(1, n):
        left, right = strip.cols[owner == i - 1], strip.cols[owner == i]
        if len(left) == 0 or len(right) == 0:
            return None
        cuts[i] = (np.percentile(left, 90) + np.percentile(right, 10)) / 2 + 0.5
    return cuts if np.all(np.diff(cuts) >= 1) else None


def words_with_true_cuts(root: Path, cfg: SegmentConfig) -> list[AlignmentWord]:
    """Every word of a synthetic corpus (with `chars_gt.csv`) as a strip with its true cuts."""
    font = load_font(cfg.font, cfg.font_size)
    corpus = load_corpus(root)
    words = corpus.words[corpus.words["valid"]]
    gt = pd.read_csv(root / "chars_gt.csv", keep_default_na=False, dtype={"char": str})
    truth = {
        k: g.sort_values("char_index")[["x", "y", "w", "h"]].to_numpy(np.float64) for k, g in gt.groupby("word_id")
    }
    out: list[AlignmentWord] = []
    for form_id, form_words in words.groupby("form_id"):
        lines = corpus.lines[corpus.lines["form_id"] == form_id]
        images = load_line_images(root, lines, form_words).images
        for line in readable_lines(lines, images, words_by_line(form_words)):
            geo, _, prepared = prepare_line(line, cfg, font)
            char_width = line_char_width(prepared)
            for p in prepared:
                if p.strip is None or p.word.word_id not in truth:
                    continue
                boxes = truth[p.word.word_id] - [*line.origin, 0, 0]
                cuts = cuts_from_boxes(p.strip, boxes)
                if cuts is not None:
                    strip, scale = strip_image(p.strip, geo.mean, geo.std, char_width)
                    out.append(AlignmentWord(p.word.word_id, "", p.word.text, strip, scale, cuts, p.strip.length))
    return out


def pretrain(words: list[AlignmentWord], steps: int, device: torch.device, seed: int = 0) -> dict[str, torch.Tensor]:
    index = {ch: i for i, ch in enumerate(ALPHABET)}
    learn = [i for i, w in enumerate(words) if all(ch in index for ch in w.text)]
    # unstretched fonts, no neighbour strokes (docs/experiments/2026-11-22-learned-aligner.md)
    plan = AlignConfig(steps=steps, stretch=0.0, stretch_word=0.0, neighbours=0.0)
    net = fit_segment_net(words, [w.cuts for w in words], learn, index, plan, seed, device, init=None)
    return {k: v.cpu() for k, v in net.state_dict().items()}


def shipped_weights(work: Path, progress: bool = True) -> dict[str, torch.Tensor]:
    """The shipped starting weights, re-made: `CORPUS` synthesised under `work`, `STEPS` steps on the CPU
    (same bytes on any machine)."""
    from iamchars.synth.corpus import write_corpus

    root = work / "iam"
    write_corpus(root, CORPUS, SplitConfig(), progress=progress)
    # all of each word's ink, as when the shipped weights were fitted (stray ink and full stops left out came
    # later and were measured with these weights)
    words = words_with_true_cuts(root, SegmentConfig(stray_gap=0.0, stop_share=0.0))
    if progress:
        print(f"{len(words):,} words with true cuts; fitting {STEPS} steps", flush=True)
    return pretrain(words, STEPS, torch.device("cpu"))
