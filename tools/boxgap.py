"""What do estimated boxes cost the recogniser? `make box-gap CORPUS=DIR` (python -m tools.boxgap DIR).

The corpus (one with true boxes: `chars_gt.csv`, e.g. ../shared/pen-dev or a synthetic one) is exported twice
with the same writers in the same splits: from its true boxes and from the segmentation. The same CNN is
trained on each training split, and both are tested on the *true-box* crops of the test writers, so the
difference is what segmentation costs, nothing else. Prints a table; tests never run it (it trains twice).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from iamchars.config import load_config
from iamchars.dataset.export import build_dataset
from iamchars.train.engine import train as train_model
from iamchars.train.evaluation import evaluate_split
from iamchars.train.tensors import Dataset, load_dataset


def confident(data: Dataset, manifest: pd.DataFrame, min_confidence: float | None, keep: float | None) -> Dataset:
    """The dataset with only the characters whose confidence is at least `min_confidence`, or the `keep` share
    of the whole dataset's most confident characters (ties in manifest order), in its training and validation
    splits."""
    confidence = manifest["confidence"].to_numpy(np.float64)
    if keep is not None:
        order = np.argsort(-confidence, kind="stable")[: round(keep * len(confidence))]
        wanted = set(manifest["char_id"].to_numpy()[order].tolist())
    else:
        wanted = set(manifest.loc[confidence >= (min_confidence or 0.0), "char_id"].tolist())
    return replace(
        data,
        train=data.train.subset(np.isin(data.train.char_ids, list(wanted))),
        val=data.val.subset(np.isin(data.val.char_ids, list(wanted))),
    )


def box_gap(
    corpus: Path,
    work: Path,
    overrides: list[str],
    epochs: int,
    seeds: int,
    align_seeds: int = 1,
    min_confidence: float | None = None,
    keep: float | None = None,
) -> list[dict[str, float]]:
    """Test top-1 on true-box crops of the test writers, for models trained on true and on estimated boxes,
    and (with `min_confidence` or `keep`) on the confident estimated boxes alone (`confident`).

    Self-training amplifies tiny numeric differences (another machine, another aligner seed) into boxes that
    cost the recogniser a point more or less, which training seeds do not average: with `align_seeds` K > 1
    the estimated boxes are built K times (aligner seeds base .. base + K - 1) and training seed s learns
    from build s mod K."""
    base = ["export.include_err=false", "export.write_png=false", "export.qa_lines=0", "export.min_confidence=0.0"]
    truth_cfg = load_config(None, [*base, *overrides, f"export.boxes='gt:{corpus / 'chars_gt.csv'}'"])
    build_dataset(corpus, work / "true", truth_cfg, progress=False)
    first_align_seed = load_config(None, [*base, *overrides]).segment.align.seed
    estimated = []
    for k in range(align_seeds):
        name = "estimated" if k == 0 else f"estimated-{k}"
        cfg = load_config(None, [*base, *overrides, f"segment.align.seed={first_align_seed + k}"])
        build_dataset(corpus, work / name, cfg, progress=False)
        estimated.append(name)
    device = torch.device("cpu")
    test = load_dataset(work / "true", device)
    rows = []
    for seed in range(seeds):
        row: dict[str, float] = {"seed": seed, "align_seed": first_align_seed + seed % align_seeds}
        cfg_train = load_config(None, [*overrides, f"train.epochs={epochs}", f"train.seed={seed}"]).train
        runs = [("true", "true"), ("estimated", estimated[seed % align_seeds])]
        filtered = min_confidence is not None or keep is not None
        runs += [("confident", estimated[seed % align_seeds])] if filtered else []
        for name, folder in runs:
            data = load_dataset(work / folder, device)
            if name == "confident":
                everything = len(data.train)
                data = confident(data, pd.read_parquet(work / folder / "manifest.parquet"), min_confidence, keep)
                row["confident_share"] = len(data.train) / max(everything, 1)
            run = f"run-{folder}-{seed}" if name != "confident" else f"run-{folder}-confident-{seed}"
            result = train_model(data, work / run, cfg_train, progress=False, log=lambda _m: None)
            metrics, _ = evaluate_split(result["model"], test.test, test.class_chars)
            row[name] = metrics["top1"]
            row[f"{name}_case"] = metrics["case_pair_errors"] / max(metrics["samples"], 1)
        rows.append(row)
    return rows


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.boxgap", description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path, help="an IAM root with chars_gt.csv")
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seeds", type=int, default=10, help="one seed alone moves by up to 5 points")
    parser.add_argument(
        "--align-seeds", type=int, default=1, help="build the estimated boxes with this many aligner seeds"
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--min-confidence", type=float, help="also train on the characters this confident only")
    only.add_argument("--keep", type=float, help="also train on this share of the most confident characters")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="section.key=value")
    args = parser.parse_args(argv)
    if min(args.seeds, args.epochs, args.align_seeds) < 1:
        print(
            f"error: --seeds, --epochs and --align-seeds must be at least 1 (got {args.seeds}, {args.epochs} and "
            f"{args.align_seeds})",
            file=sys.stderr,
        )
        return 2
    if not (args.corpus / "chars_gt.csv").is_file():
        print(f"error: {args.corpus / 'chars_gt.csv'}: not found; the corpus needs true boxes", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="iamchars-boxgap-") as tmp:
        rows = box_gap(
            args.corpus,
            Path(tmp),
            args.overrides,
            args.epochs,
            args.seeds,
            args.align_seeds,
            args.min_confidence,
            args.keep,
        )
    print(f"corpus {args.corpus}: test top-1 on true-box crops of the test writers ({args.epochs} epochs)")
    print("(case: share of the test images read as the other case of their own letter)")
    filtered = "confident" in rows[0]
    head = "| seed | aligner seed | trained on true boxes (case) | trained on estimated boxes (case) | cost |"
    head += " confident only: share of train, top-1 (case) | cost |" if filtered else ""
    print(head + "\n| ---: | ---: | ---: | ---: | ---: |" + (" ---: | ---: |" if filtered else ""))
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in rows[0]}
    for r in [*rows, mean]:
        seed, aligner = ("mean", "") if r is mean else (int(r["seed"]), int(r["align_seed"]))
        line = (
            f"| {seed} | {aligner} | {r['true']:.3f} ({r['true_case']:.3f}) | {r['estimated']:.3f} "
            f"({r['estimated_case']:.3f}) | {r['true'] - r['estimated']:+.3f} |"
        )
        if filtered:
            line += (
                f" {r['confident_share']:.0%}, {r['confident']:.3f} ({r['confident_case']:.3f}) | "
                f"{r['true'] - r['confident']:+.3f} |"
            )
        print(line)
    for name in ("estimated", "confident") if filtered else ("estimated",):
        costs = [r["true"] - r[name] for r in rows]
        if len(costs) > 1:
            spread = statistics.stdev(costs) / math.sqrt(len(costs))
            print(
                f"cost of {name} boxes {statistics.mean(costs):+.3f} +- {spread:.3f} (standard error of the mean over "
                f"{len(costs)} seeds)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
