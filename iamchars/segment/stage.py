"""The segmentation stage over a whole corpus: the words of unboxed lines found in their ink, the method's
corpus pass, then every form's character boxes with its lines' geometry, for export to crop and write.

build-dataset runs it in three calls, so that forms can be segmented in worker processes and resumed one by
one: `with_found_words` (tables in, tables out), `corpus_cuts` (the method's corpus pass, if it has one), and
`segment_form` or `given_form` per form (boxes, line images and geometry out)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from iamchars.config import PipelineConfig, SegmentConfig
from iamchars.iam.corpus import IAMCorpus, word_problems
from iamchars.iam.rejects import reject_frame, reject_row
from iamchars.iam.splits import SPLITS
from iamchars.parallel import ordered_map, resolve_workers
from iamchars.progress import progress_bar
from iamchars.segment.confidence import character_confidence, confidence_features
from iamchars.segment.methods import CorpusCuts, method_of
from iamchars.segment.runner import (
    BOX_COLUMNS,
    FormSegmentation,
    FoundWords,
    boxes_table,
    find_form_words,
    form_geometry,
    load_line_images,
)
from iamchars.segment.runner import segment_form as segment_form_with


def unboxed_lines(corpus: IAMCorpus, cfg: PipelineConfig) -> pd.DataFrame:
    """The usable lines that have a transcription but no word row in the input (not even a rejected one):
    their words are found in their ink. A words file that is there but holds no row at all is a broken
    input, not a statement that the lines are unboxed: nothing is found then."""
    lines = corpus.lines
    words_file = corpus.root / "ascii" / "words.txt"
    if words_file.is_file() and corpus.input_word_rows == 0 and not cfg.parse.ignore_word_boxes:
        return lines.iloc[:0]
    rejected = corpus.rejects.loc[corpus.rejects["file"] == "ascii/words.txt", "item_id"].astype(str)
    boxed = set(corpus.words["line_id"]) | set(rejected.str.rsplit("-", n=1).str[0])
    usable = (
        lines["valid"]
        & lines["split"].isin(SPLITS)
        & ~lines["line_id"].isin(boxed)
        & (lines["transcription"].str.strip("|").str.len() > 0)
    )
    lines = lines[usable]
    return lines if cfg.export.include_err else lines[lines["flag"] == "ok"]


@dataclass(frozen=True)
class FindJob:
    root: Path
    lines: pd.DataFrame
    cfg: SegmentConfig


def _find_words(job: FindJob) -> FoundWords:
    return find_form_words(job.root, job.lines, job.cfg)


def with_found_words(corpus: IAMCorpus, lines: pd.DataFrame, cfg: PipelineConfig, progress: bool) -> IAMCorpus:
    """The corpus with the words of `lines` found in their ink (form by form, in worker processes): word rows
    like the given ones, marked `word_box` "found" and held to the same checks (`iam.corpus.word_problems`),
    and every token of a line whose words could not be found counted as a rejected word row."""
    if lines.empty:
        return corpus
    jobs = [FindJob(corpus.root, group, cfg.segment) for _, group in lines.groupby("form_id", sort=True)]
    found: list[pd.DataFrame] = []
    rejects: list[dict[str, object]] = []
    bar = progress_bar(total=len(lines), unit="line", desc="finding words", disable=not progress)
    with bar:
        for job, result in zip(
            jobs, ordered_map(_find_words, jobs, resolve_workers(cfg.export.workers, len(jobs))), strict=True
        ):
            found.append(result.words)
            rejects += result.rejects
            bar.update(len(job.lines))
    info = lines.set_index("line_id")[["form_id", "flag", "graylevel", "writer_id", "split"]]
    words = pd.concat(found, ignore_index=True).join(info, on="line_id")
    problems = word_problems(words)
    rejects += [
        reject_row("validate", "ascii/lines.txt", None, item, why)
        for item, why in zip(words.loc[problems != "", "word_id"], problems[problems != ""], strict=True)
    ]
    words = words.assign(tag="", valid=problems == "", line_image_ok=True, image_ok=False, word_box="found")
    words = words[list(corpus.words.columns)].astype(corpus.words.dtypes.to_dict())
    tokens = int(lines["transcription"].str.split("|").map(lambda t: sum(bool(x) for x in t)).sum())
    return replace(
        corpus,
        words=pd.concat([corpus.words, words], ignore_index=True),
        rejects=pd.concat([corpus.rejects, reject_frame(rejects)], ignore_index=True),
        input_word_rows=corpus.input_word_rows + tokens,
    )


def corpus_cuts(
    root: Path,
    lines_by_form: Mapping[str, pd.DataFrame],
    words_by_form: Mapping[str, pd.DataFrame],
    cfg: SegmentConfig,
    workers: int,
    cache: Path | None,
    progress: bool,
) -> CorpusCuts | None:
    """The configured method's corpus pass over these forms (None for a method that has none)."""
    run = method_of(cfg.method).corpus_pass
    return run(root, lines_by_form, words_by_form, cfg, workers, cache, progress) if run is not None else None


def segment_form(
    root: Path, lines: pd.DataFrame, words: pd.DataFrame, cfg: SegmentConfig, found: CorpusCuts | None
) -> FormSegmentation:
    """One form's character boxes by the configured method (`found`: its corpus pass's cuts, where it has
    one), each with its confidence (`confidence`)."""
    method = method_of(cfg.method)
    seg = segment_form_with(root, lines, words, cfg, method.line, found.cuts if found else None, method.pieces)
    features = confidence_features(seg.boxes, found.evidence if found else None)
    return replace(seg, boxes=seg.boxes.assign(confidence=character_confidence(features)))


def given_form(
    root: Path, lines: pd.DataFrame, words: pd.DataFrame, truth: pd.DataFrame, cfg: SegmentConfig
) -> FormSegmentation:
    """One form's character boxes taken from a true-box table (word_id, char_index, char, x, y, w, h), with
    its line images and their geometry, as `segment_form` gives them."""
    loaded = load_line_images(root, lines, words)
    rows = truth[truth["word_id"].isin(set(words["word_id"]))].assign(score=1.0, check_iou=np.nan, from_pieces=False)
    boxes = boxes_table(list(rows[BOX_COLUMNS].itertuples(index=False, name=None))).assign(confidence=1.0)
    return FormSegmentation(boxes, loaded, form_geometry(loaded.images, lines, cfg))
