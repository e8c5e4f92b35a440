"""Dataset commands: `build-dataset` (segment a corpus and export its characters) and
`evaluate-segmentation` (how well the boxes fit: against true boxes, or a self-check on real scans)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from iamchars.cli.common import ConfigOpt, SetOpt, cfg_option, command, fail, load_cfg, output_dir
from iamchars.config import ExportConfig, SegmentConfig
from iamchars.fileio import folder_lock
from iamchars.layout.formats import FORMATS
from iamchars.segment.methods import METHODS

IMPORT_FOLDER = ".import"
"""Where a PAGE/ALTO corpus is made into an IAM root, inside the dataset folder, until the dataset is built."""


@command("build-dataset")
def build_dataset_cmd(
    iam_root: Annotated[
        Path | None, typer.Option(help="IAM root (real or synthetic)", show_default="data/raw/iam")
    ] = None,
    corpus: Annotated[
        Path | None,
        typer.Option(help="instead of --iam-root: a folder of page images with PAGE XML or ALTO files"),
    ] = None,
    layout_format: Annotated[
        str | None,
        typer.Option(
            "--format",
            help=f"with --corpus: read only files of this format ({', '.join(FORMATS)})",
            show_default="all",
        ),
    ] = None,
    write: Annotated[
        str | None,
        cfg_option(
            ExportConfig,
            "layout",
            "with --corpus: write its files of this format back with a Glyph per character",
            choices=("none", *FORMATS),
        ),
    ] = None,
    ignore_word_boxes: Annotated[
        bool | None,
        typer.Option(
            "--ignore-word-boxes/--use-word-boxes",
            help="find every line's words in its ink, even where the input boxes them",
            show_default="use",
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="dataset folder")] = Path("data/processed/iam"),
    method: Annotated[str | None, cfg_option(SegmentConfig, "method", "segmentation method", choices=METHODS)] = None,
    classes: Annotated[str | None, cfg_option(ExportConfig, "classes", "class set")] = None,
    punctuation: Annotated[
        bool | None,
        typer.Option("--punctuation/--no-punctuation", help="add 16 punctuation classes", show_default="no"),
    ] = None,
    size: Annotated[int | None, cfg_option(ExportConfig, "size", "image side S in pixels (28: EMNIST-like)")] = None,
    crop: Annotated[
        str | None, cfg_option(ExportConfig, "crop", "framing: the box fills the tile, or the line's scale")
    ] = None,
    include_err: Annotated[
        bool | None,
        typer.Option(
            "--include-err/--exclude-err", help="also export words of lines IAM flags 'err'", show_default="exclude"
        ),
    ] = None,
    min_confidence: Annotated[
        float | None,
        cfg_option(ExportConfig, "min_confidence", "drop characters less likely than this to be boxed right (0..1)"),
    ] = None,
    min_score: Annotated[
        float | None, typer.Option("--min-score", hidden=True, help="renamed --min-confidence")
    ] = None,
    max_reject_share: Annotated[
        float | None,
        cfg_option(ExportConfig, "max_reject_share", "fail when more than this share of the word rows is rejected"),
    ] = None,
    boxes: Annotated[
        str | None, typer.Option(help="estimated, or gt:PATH/chars_gt.csv", show_default="estimated")
    ] = None,
    workers: Annotated[
        int | None, cfg_option(ExportConfig, "workers", "processes (0: one per CPU this process may use)")
    ] = None,
    font: Annotated[
        str | None, typer.Option(help="alignment font: fontpkg name or TTF path", show_default="dancing-script")
    ] = None,
    k_std: Annotated[
        float | None, cfg_option(SegmentConfig, "k_std", "vertical band half-height in line-ink stds")
    ] = None,
    strict: Annotated[
        bool | None, typer.Option("--strict/--lenient", help="fail on malformed rows", show_default="lenient")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Parse, segment and export a character dataset (manifest, PNGs, packed arrays, QA pictures, card)."""
    from iamchars.dataset.export import build_dataset, summary_line

    if min_score is not None:
        raise fail("--min-score is now --min-confidence (the calibrated probability that a box is right, 0..1)", 2)
    cfg = load_cfg(
        config,
        set_,
        {
            "segment.method": method,
            "export.classes": classes,
            "export.punctuation": punctuation,
            "export.size": size,
            "export.crop": crop,
            "export.include_err": include_err,
            "export.min_confidence": min_confidence,
            "export.max_reject_share": max_reject_share,
            "export.boxes": boxes,
            "export.workers": workers,
            "segment.font": font,
            "segment.k_std": k_std,
            "parse.strict": strict,
            "parse.ignore_word_boxes": ignore_word_boxes,
            "export.layout": write,
        },
    )
    if corpus is not None and iam_root is not None:
        raise fail("give --iam-root or --corpus, not both", 2)
    if corpus is None and layout_format is not None:
        raise fail("--format goes with --corpus (a folder of layout files: page images with PAGE XML or ALTO)", 2)
    if layout_format not in (None, *FORMATS):
        raise fail(f"--format must be one of {', '.join(FORMATS)}, got {layout_format!r}", 2)
    source = corpus if corpus is not None else iam_root or Path("data/raw/iam")
    gt_file = Path(cfg.export.boxes[3:]) if cfg.export.boxes.startswith("gt:") else None
    flag = "--corpus" if corpus is not None else "--iam-root"
    output_dir(out, inputs={flag: source, "--config": config, "--boxes": gt_file}, replaced=True)
    with folder_lock(out, "build-dataset"):
        if corpus is not None:
            from iamchars.layout.convert import import_corpus, remove_import

            layout = import_corpus(corpus, out / IMPORT_FOLDER, layout_format, cfg.export.workers, progress)
            summary = build_dataset(layout.root, out, cfg, progress=progress, layout=layout)
            remove_import(out / IMPORT_FOLDER)  # published: the import is in the dataset now
        else:
            summary = build_dataset(source, out, cfg, progress=progress)
    for warning in summary["warnings"]:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    typer.echo(summary_line(summary, out))
    typer.echo(f"card: {out / 'card.md'}   QA pictures: {out / 'qa'}")


@command("evaluate-segmentation")
def evaluate_segmentation(
    manifest: Annotated[Path, typer.Option(help="manifest.parquet (or .csv) of a built dataset")],
    gt: Annotated[Path | None, typer.Option(help="chars_gt.csv of a synthetic corpus (true boxes)")] = None,
    iam_root: Annotated[
        Path | None, typer.Option(help="IAM root: for the worst-cases picture and the self-check")
    ] = None,
    self_check: Annotated[
        bool,
        typer.Option(
            "--self-check", help="compare with the exact boxes of words whose letters are one piece of ink each"
        ),
    ] = False,
    out: Annotated[Path | None, typer.Option(help="report folder (default: beside the manifest)")] = None,
    worst: Annotated[int, typer.Option(help="worst cases to draw", min=0, max=1000)] = 16,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """IoU of estimated character boxes against true boxes (--gt) or, on real scans without them, against
    the exact boxes of separable words (--self-check); per character, with a worst-cases picture."""
    from iamchars.segment.report import read_inputs, report_lines, write_report

    if gt is None and not self_check:
        raise fail("give --gt (true boxes of a synthetic corpus) or --self-check (with --iam-root)", 2)
    if self_check and iam_root is None:
        raise fail("--self-check needs --iam-root: the exact boxes come from the images", 2)
    cfg = load_cfg(config, set_, {})
    inputs = read_inputs(manifest, gt, iam_root, cfg)  # checked before anything is written
    report = output_dir(
        out or manifest.parent / "segeval",
        inputs={"--manifest": manifest, "--gt": gt, "--iam-root": iam_root, "--config": config},
    )
    result = write_report(inputs, report, self_check, worst, cfg)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for line in report_lines(result):
        typer.echo(line)
    typer.echo(f"report: {report}")
