"""Fit the confidence calibrator (`iamchars.segment.confidence.CALIBRATORS`) and measure it across corpora.

    python -m tools.fit_confidence CORPUS [CORPUS ...] --fit-on NAME [--seeds 0 1 2] [--work DIR]

Each corpus (an IAM-format root with `chars_gt.csv`: a synthetic one, ../shared/pen-dev, ../shared/unipen-dev)
is segmented by the default method for each aligner seed, and every box is kept with what the aligner said of
it (`alignment.EVIDENCE`) and whether it is right (IoU >= 0.5 with its true box), cached in WORK; the
features (`confidence.FEATURES`) are computed from those on every run. The calibrators are fitted on
the corpora named by --fit-on (folder names) and measured on every corpus: AUROC, expected calibration error
(10 bins) and the share right among the 80% most confident. Prints the table and the coefficients to paste.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from iamchars.config import PipelineConfig, load_config
from iamchars.dataset.export import usable_words
from iamchars.dataset.reliability import auroc, expected_calibration_error, share_right_of_most_confident
from iamchars.iam.corpus import load_corpus
from iamchars.parallel import ordered_map, resolve_workers
from iamchars.segment.align.alignment import EVIDENCE
from iamchars.segment.confidence import (
    BOX_FEATURES,
    FEATURES,
    Calibrator,
    character_confidence,
    character_evidence,
    confidence_features,
)
from iamchars.segment.evaluate import match
from iamchars.segment.methods import CorpusCuts
from iamchars.segment.stage import corpus_cuts, segment_form

OVERRIDES = ["export.punctuation=true", "export.include_err=true"]


@dataclass(frozen=True)
class FormJob:
    root: Path
    lines: pd.DataFrame
    words: pd.DataFrame
    cfg: PipelineConfig
    found: CorpusCuts | None


def _form_boxes(job: FormJob) -> pd.DataFrame:
    boxes = segment_form(job.root, job.lines, job.words, job.cfg.segment, job.found).boxes
    evidence = character_evidence(boxes, job.found.evidence if job.found is not None else None)
    return boxes.assign(**{name: evidence[:, i] for i, name in enumerate(EVIDENCE)})


def corpus_boxes(root: Path, seed: int, method: str) -> pd.DataFrame:
    """Every box of the corpus by `method` with its evidence and `right` (IoU >= 0.5 with its true box)."""
    cfg = load_config(None, [*OVERRIDES, f"segment.align.seed={seed}", f"segment.method={method!r}"])
    corpus = load_corpus(root, cfg.parse, cfg.split)
    words = usable_words(corpus, cfg.export.include_err)
    lines = corpus.lines[corpus.lines["line_id"].isin(set(words["line_id"]))]
    lines_by_form, words_by_form = dict(tuple(lines.groupby("form_id"))), dict(tuple(words.groupby("form_id")))
    found = corpus_cuts(root, lines_by_form, words_by_form, cfg.segment, cfg.export.workers, None, True)
    jobs = [
        FormJob(root, lines_by_form[f], w, cfg, found.of_words(w["word_id"]) if found else None)
        for f, w in words_by_form.items()
    ]
    boxes = pd.concat(list(ordered_map(_form_boxes, jobs, resolve_workers(cfg.export.workers, len(jobs)))))
    matched = match(pd.read_csv(root / "chars_gt.csv", dtype={"word_id": str}), boxes)
    right = matched.set_index(["word_id", "char_index"])["iou"] >= 0.5
    keyed = boxes.set_index(["word_id", "char_index"])
    return keyed.assign(right=right.reindex(keyed.index).fillna(False).to_numpy()).reset_index()


def features_of(boxes: pd.DataFrame) -> pd.DataFrame:
    """The cached boxes' features, as build-dataset computes them, with `right`."""
    evidence = {
        word: group[list(EVIDENCE)].to_numpy(np.float64)
        for word, group in boxes.sort_values(["word_id", "char_index"]).groupby("word_id", sort=False)
    }
    return confidence_features(boxes, evidence).assign(right=boxes["right"].to_numpy(bool))


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.01, steps: int = 50) -> tuple[np.ndarray, float]:
    """Weights and bias of a logistic regression by Newton's method, features standardised for the fit."""
    mu, sd = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.column_stack([(x - mu) / sd, np.ones(len(x))])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) / len(z) + l2 * np.r_[w[:-1], 0]
        hess = (z * (p * (1 - p))[:, None]).T @ z / len(z) + l2 * np.diag(np.r_[np.ones(len(w) - 1), 0])
        w -= np.linalg.solve(hess, grad)
    weights = w[:-1] / sd
    return weights, float(w[-1] - weights @ mu)


def calibrators(aligned: pd.DataFrame, refined: pd.DataFrame) -> dict[str, Calibrator]:
    """The aligner's calibrator fitted on the aligned boxes that have a posterior; the boxes' calibrator on
    the refined method's boxes (those of the words the aligner leaves alone are refined too)."""
    out = {}
    for name, features, table in (("aligned", FEATURES, aligned[aligned["aligned"]]), ("boxes", BOX_FEATURES, refined)):
        w, b = fit_logistic(table[list(features)].to_numpy(np.float64), table["right"].to_numpy(float))
        out[name] = Calibrator(features, tuple(round(float(v), 4) for v in w), round(b, 4))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="+", type=Path)
    parser.add_argument("--fit-on", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--work", type=Path, default=Path("data/confidence"))
    args = parser.parse_args(argv)
    tables = {}
    runs = [(root, "aligned", seed) for root in args.corpora for seed in args.seeds]
    runs += [(root, "refined", 0) for root in args.corpora]  # no seed: the refined cuts are deterministic
    for root, method, seed in runs:
        cached = args.work / (
            f"{root.name}-seed{seed}.parquet" if method == "aligned" else f"{root.name}-refined.parquet"
        )
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            corpus_boxes(root, seed, method).to_parquet(cached)
        tables[(root.name, method, seed)] = features_of(pd.read_parquet(cached))

    def fit_set(method: str) -> pd.DataFrame:
        return pd.concat([t for (name, m, _), t in tables.items() if name in args.fit_on and m == method])

    fitted = calibrators(fit_set("aligned"), fit_set("refined"))
    print("| corpus | method | seed | characters | right | AUROC | ECE | right among the 80% most confident |", end="")
    print(" AUROC of score |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (name, method, seed), t in tables.items():
        p, y = character_confidence(t, fitted), t["right"].to_numpy(bool)
        s = t["score"].to_numpy(np.float64)
        print(
            f"| {name} | {method} | {seed} | {len(t):,} | {y.mean():.1%} | {auroc(p, y):.3f} | "
            f"{expected_calibration_error(p, y):.3f} | {share_right_of_most_confident(p, y):.1%} | {auroc(s, y):.3f} |"
        )
    print("\nCALIBRATORS = {")
    for name, c in fitted.items():
        names = "FEATURES" if name == "aligned" else "BOX_FEATURES"
        print(f'    "{name}": Calibrator({names}, {c.weights}, {c.bias}),')
    print("}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
