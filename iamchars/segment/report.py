"""`iamchars evaluate-segmentation` at the file level: a manifest and true boxes (or a self-check on the
scans) in, a report folder out (summary.json, per_character.csv, worst_cases.png) and the lines the command
prints. The measures themselves are `segment.evaluate`'s pure functions."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from iamchars.config import PipelineConfig
from iamchars.errors import UserError
from iamchars.fileio import read_table, write_json, write_png, write_table
from iamchars.iam.corpus import IAMCorpus, load_corpus
from iamchars.segment.evaluate import KEY, evaluate, per_character, self_check_report
from iamchars.segment.runner import check_boxes_table, load_line_images
from iamchars.viz.segeval import worst_cases_picture


@dataclass
class SegmentationInputs:
    estimated: pd.DataFrame
    truth: pd.DataFrame | None
    corpus: IAMCorpus | None
    """The IAM root's corpus, for the worst-cases picture and the self-check."""


def read_inputs(manifest: Path, gt: Path | None, iam_root: Path | None, cfg: PipelineConfig) -> SegmentationInputs:
    """Every input read and checked before anything is written: the manifest, the true boxes (which must
    describe the same corpus) and the IAM root."""
    est = read_table(manifest, [*KEY, "x", "y", "w", "h"], "--manifest")
    truth = read_table(gt, [*KEY, "char", "x", "y", "w", "h"], "--gt") if gt is not None else None
    if truth is not None and not set(truth["word_id"]) & set(est["word_id"]):
        raise UserError(
            f"--gt {gt} and --manifest {manifest} share no word id: they describe different corpora (build the "
            "dataset from the corpus whose chars_gt.csv you pass)"
        )
    corpus = None
    if iam_root is not None:
        corpus = load_corpus(iam_root, dataclasses.replace(cfg.parse, check_images=False), cfg.split)
    return SegmentationInputs(est, truth, corpus)


def write_report(
    inputs: SegmentationInputs, report: Path, self_check: bool, worst: int, cfg: PipelineConfig
) -> dict[str, Any]:
    """IoU against the truth (per character in per_character.csv), the self-check on separable words, the
    `worst` words drawn; the summary (also summary.json) by scope."""
    est, truth, corpus = inputs.estimated, inputs.truth, inputs.corpus
    result: dict[str, Any] = {}
    matched = None
    if truth is not None:
        result, matched = evaluate(truth, est)
        write_table(per_character(matched), report / "per_character.csv")
    if self_check and corpus is not None:
        words = corpus.words[corpus.words["word_id"].isin(set(est["word_id"]))]
        lines = corpus.lines[corpus.lines["line_id"].isin(set(words["line_id"]))]
        result["self_check"] = self_check_report(check_boxes_table(corpus.root, lines, words, cfg.segment), est, truth)
    write_json(report / "summary.json", result)
    if corpus is not None and matched is not None:
        worst_rows = matched[matched["found"]].sort_values(["iou", "word_id", "char_index"])
        worst_rows = worst_rows.drop_duplicates("word_id").head(worst)  # one panel per word
        lines = corpus.lines[corpus.lines["line_id"].isin(set(worst_rows["word_id"].str.rsplit("-", n=1).str[0]))]
        images = load_line_images(
            corpus.root, lines, corpus.words[corpus.words["line_id"].isin(set(lines["line_id"]))]
        ).images
        word_chars = matched[matched["word_id"].isin(set(worst_rows["word_id"]))]
        write_png(
            report / "worst_cases.png",
            worst_cases_picture(worst_rows, word_chars, corpus.words, images, corpus.lines),
        )
    return result


def report_lines(result: dict[str, Any]) -> list[str]:
    """The summary as the command prints it: one block per scope (all, by character class, self-check)."""
    out: list[str] = []
    for scope, summary in result.items():
        if scope == "self_check":
            out.append(
                f"self-check: {summary['words_checked']:,} of {summary['words_total']:,} words separable "
                f"({summary['characters_checked']:,} characters): mean IoU {summary['mean_iou']:.3f}   "
                f"IoU>=0.5 {100 * summary['share_iou_ge_0.5']:.1f}%"
            )
            if "true_mean_iou_same_characters" in summary:
                out.append(
                    f"  against the truth: true mean IoU {summary['true_mean_iou_same_characters']:.3f} on the same "
                    f"characters, {summary['true_mean_iou_all_characters']:.3f} on all; the self-check boxes' own "
                    f"IoU with the truth {summary['check_boxes_iou_with_truth']:.3f}"
                )
            continue
        out.append(f"{scope}: {summary['characters']:,} characters ({summary['missing']:,} missing = IoU 0)")
        out.append(
            f"  mean IoU {summary['mean_iou']:.3f}   IoU>=0.5 {100 * summary['share_iou_ge_0.5']:.1f}%   "
            f"IoU>=0.7 {100 * summary['share_iou_ge_0.7']:.1f}%   horizontal IoU {summary['mean_iou_x']:.3f}"
        )
        if "mean_iou_by_score_quintile" in summary:
            q = ", ".join(f"{v:.2f}" for v in summary["mean_iou_by_score_quintile"])
            out.append(f"  score vs IoU: Spearman {summary['score_iou_spearman']:.2f}; mean IoU by score quintile: {q}")
    return out
