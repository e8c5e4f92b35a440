"""The `iamchars` command line: each command parses its options, calls a stage runner, reports.

Every command fails the same way: one line on stderr naming the file or option and the fix, and a non-zero
exit (1 for a failed run, 2 for a bad option); Ctrl-C exits 130 and leaves what is finished for a resume."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from iamchars import __version__
from iamchars.config import (
    DEVICE_HELP,
    DEVICE_PATTERN,
    ExportConfig,
    PipelineConfig,
    SegmentConfig,
    SynthConfig,
    TrainConfig,
    default_of,
    field_limits,
    load_config,
)
from iamchars.errors import UserError
from iamchars.fileio import refuse_overlap

if TYPE_CHECKING:
    import numpy as np

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn the IAM Handwriting Database into a character dataset and train a recogniser on it.",
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="pipelines/*.toml file")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a config value: section.key=value (TOML syntax), repeatable"),
]
F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


RERUN = "run the same command again to go on from what was finished"


def command(name: str | None = None, resume_hint: str = RERUN) -> Callable[[F], F]:
    """`app.command`, with every user-fixable error (and any OS error: a full disk, a read-only folder)
    turned into one line and a non-zero exit instead of a traceback. SIGTERM is handled like Ctrl-C (exit 143
    instead of 130): one line saying how to go on (`resume_hint`)."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            from iamchars.parallel import Terminated, raise_on_sigterm

            try:
                with raise_on_sigterm():
                    return fn(*args, **kwargs)
            except UserError as exc:
                raise _fail(str(exc), exc.exit_code) from None
            except OSError as exc:
                where = f"{exc.filename}: " if exc.filename else ""
                raise _fail(f"{where}{exc.strerror or exc}") from None
            except KeyboardInterrupt as exc:
                code = 143 if isinstance(exc, Terminated) else 130
                raise _fail(f"interrupted; {resume_hint}", code) from None

        app.command(name)(run)
        return fn

    return register


def cfg_option(section: type, key: str, help: str, *flags: str) -> Any:
    """A typer option for a config field: its range or choices (checked before any work) and its default
    from the dataclass, both shown in --help. Its CLI default is None so the config file keeps priority."""
    limits = field_limits(section, key)
    default = default_of(section, key)
    if "choices" in limits:
        help = f"{help} ({', '.join(limits['choices'])})"
    shown = str(default).lower() if isinstance(default, bool) else str(default)
    return typer.Option(*flags, help=help, min=limits.get("min"), max=limits.get("max"), show_default=shown)


EpochsOpt = Annotated[int | None, cfg_option(TrainConfig, "epochs", "passes over the training set")]
BatchOpt = Annotated[int | None, cfg_option(TrainConfig, "batch_size", "images per step")]


def _device(value: str | None) -> str | None:
    """A device name checked at the door (exit 2), as the config checks its own."""
    if value is not None and not re.fullmatch(DEVICE_PATTERN, value):
        raise typer.BadParameter(f"{value!r}: must be {DEVICE_HELP}")
    return value


DeviceOpt = Annotated[str | None, typer.Option(help=DEVICE_HELP, show_default="auto", callback=_device)]
ThreadsOpt = Annotated[
    int | None,
    cfg_option(
        TrainConfig,
        "threads",
        "CPU threads (0: OMP_NUM_THREADS when set, else the usable CPUs that other work leaves free)",
    ),
]


def _config(path: Path | None, overrides: list[str] | None, extra: dict[str, object]) -> PipelineConfig:
    """Config file, then --set, then the explicit flags of a command (which win, as typed values)."""
    try:
        return load_config(path, overrides or [], extra)
    except UserError as exc:
        raise _fail(str(exc), 2) from None


Inputs = dict[str, "Path | None"]


def _refuse_overlap(outputs: dict[str, Path], inputs: Inputs | None, replaced: bool) -> None:
    given = {flag: p for flag, p in (inputs or {}).items() if p is not None}
    refuse_overlap(outputs, given, list(outputs) if replaced else [])


def output_dir(path: Path, flag: str = "--out", inputs: Inputs | None = None, replaced: bool = False) -> Path:
    """Check at the door, before any work, that an output folder can be made and written, and that it is
    none of the command's `inputs` (flag -> path) nor lies inside one (nor, when the command `replaced` what
    it holds, holds one); nothing is left behind by the check (a folder that does not exist is not made)."""
    _refuse_overlap({flag: path}, inputs, replaced)
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: is a file, not a folder; give a folder path")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {path}: {existing} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=existing, prefix=".iamchars-probe-").cleanup()
    except OSError as exc:
        raise UserError(
            f"{flag} {path}: cannot write in {existing} ({exc.strerror or exc}); choose a folder you can write to"
        ) from None
    return path


def output_file(path: Path, flag: str = "--out", inputs: Inputs | None = None) -> Path:
    """`output_dir`'s checks for an output file: not a folder, not an input, in a folder that can be written."""
    _refuse_overlap({flag: path}, inputs, False)
    if path.is_dir():
        raise UserError(f"{flag} {path}: is a folder; give a file name")
    output_dir(path.parent if str(path.parent) else Path("."), f"{flag} {path}: its folder")
    return path


def _version(value: bool) -> None:
    if value:
        typer.echo(f"iamchars {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """iamchars: IAM words -> character boxes -> character dataset -> CNN."""


@command()
def download(
    out: Annotated[Path, typer.Option(help="target folder")] = Path("data/raw/iam"),
    base_url: Annotated[str | None, typer.Option(help="IAM site or a mirror")] = None,
    from_path: Annotated[
        Path | None,
        typer.Option("--from", help="import archives or an extracted tree you already have"),
    ] = None,
    netrc_file: Annotated[Path | None, typer.Option("--netrc", help="netrc file (default ~/.netrc)")] = None,
    retries: Annotated[int, typer.Option(help="reconnects per file after a dropped connection", min=0, max=100)] = 5,
    timeout: Annotated[float, typer.Option(help="socket timeout in seconds", min=1.0, max=3600.0)] = 60.0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Fetch IAM's ascii, lines, words, xml and split archives (resumable, verified, safely extracted)."""
    from iamchars.iam.download import DEFAULT_BASE_URL, IAMClient, import_local, resolve_credentials
    from iamchars.iam.download import download as run_download

    output_dir(out, inputs={"--from": from_path, "--netrc": netrc_file})
    if from_path is not None:
        report = import_local(from_path, out)
    else:
        url = base_url or DEFAULT_BASE_URL
        creds = resolve_credentials(os.environ, url, netrc_file)
        client = IAMClient(url, timeout=timeout, retries=retries)
        report = run_download(out, client, creds, progress=progress)
    for name in report.downloaded:
        typer.echo(f"downloaded  {name}")
    for name in report.extracted:
        typer.echo(f"extracted   {name}")
    for name in report.skipped:
        typer.echo(f"complete    {name} (skipped)")
    typer.echo(f"{report.bytes_transferred:,} bytes transferred; IAM root: {out}")


@command()
def info(
    iam_root: Annotated[Path, typer.Option(help="IAM root (ascii/, lines/, words/ ...)")] = Path("data/raw/iam"),
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    strict: Annotated[bool, typer.Option(help="fail on the first malformed row")] = False,
    check_images: Annotated[
        bool, typer.Option(help="check every image: present, a complete PNG, sized as its box")
    ] = True,
    rejects: Annotated[Path | None, typer.Option(help="write the rejects report (CSV) here")] = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Summarise an IAM root: forms, writers, lines, words, ok/err, characters, splits, rejects, warnings."""
    from iamchars.fileio import write_table
    from iamchars.iam.corpus import load_corpus
    from iamchars.iam.info import format_summary, summarize

    cfg = _config(config, set_, {"parse.strict": strict, "parse.check_images": check_images})
    if rejects is not None:
        output_file(rejects, "--rejects", inputs={"--iam-root": iam_root, "--config": config})
    corpus = load_corpus(iam_root, cfg.parse, cfg.split)
    if rejects is not None:
        write_table(corpus.rejects, rejects)
    summary = summarize(corpus)
    if as_json:
        json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        typer.echo(format_summary(summary))
    for warning in corpus.warnings:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)


CORPUS_FILES = ("ascii", "lines", "words", "xml", "split", "task", "chars_gt.csv", "preview.png")
"""What an IAM-layout corpus holds; `synth --force` removes these, so no file of the old corpus stays."""


@command()
def synth(
    out: Annotated[Path, typer.Option(help="target folder (IAM layout)")] = Path("data/synth/iam"),
    forms: Annotated[int | None, cfg_option(SynthConfig, "forms", "number of forms")] = None,
    lines_per_form: Annotated[int | None, cfg_option(SynthConfig, "lines_per_form", "lines per form")] = None,
    seed: Annotated[int | None, cfg_option(SynthConfig, "seed", "random seed (same seed, same bytes)")] = None,
    fonts: Annotated[
        str | None, typer.Option(help="comma-separated writer fonts (fontpkg names)", show_default="all 12")
    ] = None,
    workers: Annotated[
        int | None, cfg_option(SynthConfig, "workers", "processes (0: one per CPU this process may use)")
    ] = None,
    preview: Annotated[bool, typer.Option(help="save preview.png with true boxes over a few lines")] = False,
    force: Annotated[bool, typer.Option(help="replace a corpus already in OUT (its files are removed first)")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a synthetic handwriting corpus in IAM's format, with the true box of every character."""
    from iamchars.fileio import write_png
    from iamchars.iam.corpus import load_corpus
    from iamchars.synth.corpus import preview as draw_preview
    from iamchars.synth.corpus import write_corpus

    font_list = [f.strip() for f in fonts.split(",") if f.strip()] if fonts else None
    cfg = _config(
        config,
        set_,
        {
            "synth.forms": forms,
            "synth.lines_per_form": lines_per_form,
            "synth.seed": seed,
            "synth.fonts": font_list,
            "synth.workers": workers,
        },
    )
    output_dir(out, inputs={"--config": config}, replaced=True)
    held = [name for name in CORPUS_FILES if (out / name).exists()]
    if held and not force:
        raise UserError(
            f"--out {out}: already holds a corpus ({', '.join(held)}); --force replaces it, or choose another --out"
        )
    for name in held:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink()
    try:
        counts = write_corpus(out, cfg.synth, cfg.split, progress=progress)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    typer.echo(", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" written to {out}")
    if preview:
        import pandas as pd

        corpus = load_corpus(out, cfg.parse, cfg.split)
        picture = draw_preview(out, pd.read_csv(out / "chars_gt.csv", keep_default_na=False), corpus.lines)
        write_png(out / "preview.png", picture)
        typer.echo(f"preview: {out / 'preview.png'}")


@command("build-dataset")
def build_dataset_cmd(
    iam_root: Annotated[Path, typer.Option(help="IAM root (real or synthetic)")] = Path("data/raw/iam"),
    out: Annotated[Path, typer.Option(help="dataset folder")] = Path("data/processed/iam"),
    method: Annotated[str | None, cfg_option(SegmentConfig, "method", "segmentation method")] = None,
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
    min_score: Annotated[
        float | None, cfg_option(ExportConfig, "min_score", "drop characters below this confidence (0..1)")
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
    from iamchars.dataset.export import build_dataset

    cfg = _config(
        config,
        set_,
        {
            "segment.method": method,
            "export.classes": classes,
            "export.punctuation": punctuation,
            "export.size": size,
            "export.crop": crop,
            "export.include_err": include_err,
            "export.min_score": min_score,
            "export.max_reject_share": max_reject_share,
            "export.boxes": boxes,
            "export.workers": workers,
            "segment.font": font,
            "segment.k_std": k_std,
            "parse.strict": strict,
        },
    )
    gt_file = Path(cfg.export.boxes[3:]) if cfg.export.boxes.startswith("gt:") else None
    output_dir(out, inputs={"--iam-root": iam_root, "--config": config, "--boxes": gt_file}, replaced=True)
    summary = build_dataset(iam_root, out, cfg, progress=progress)
    for warning in summary["warnings"]:
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    t = summary["timings"]
    rate = summary["characters"] / max(t["total_s"], 1e-9)
    typer.echo(
        f"{summary['characters']:,} characters exported to {out} "
        f"(train {summary['splits']['train']:,} / val {summary['splits']['val']:,} / "
        f"test {summary['splits']['test']:,}) in {t['total_s']:,.1f} s, {rate:,.0f} chars/s all stages included "
        f"(alignment {t['align_s']:,.1f} s); rejects: {summary['rejects']:,}"
    )
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
    from iamchars.fileio import read_table, write_json, write_png, write_table
    from iamchars.segment.evaluate import KEY, evaluate, per_character, self_check_report

    if gt is None and not self_check:
        raise _fail("give --gt (true boxes of a synthetic corpus) or --self-check (with --iam-root)", 2)
    if self_check and iam_root is None:
        raise _fail("--self-check needs --iam-root: the exact boxes come from the images", 2)
    cfg = _config(config, set_, {})
    est = read_table(manifest, [*KEY, "x", "y", "w", "h"], "--manifest")
    truth = read_table(gt, [*KEY, "char", "x", "y", "w", "h"], "--gt") if gt is not None else None
    if truth is not None and not set(truth["word_id"]) & set(est["word_id"]):
        raise UserError(
            f"--gt {gt} and --manifest {manifest} share no word id: they describe different corpora (build the "
            "dataset from the corpus whose chars_gt.csv you pass)"
        )
    corpus = None
    if iam_root is not None:  # checked before anything is written
        from iamchars.iam.corpus import load_corpus

        corpus = load_corpus(iam_root, dataclasses.replace(cfg.parse, check_images=False), cfg.split)
    report = output_dir(
        out or manifest.parent / "segeval",
        inputs={"--manifest": manifest, "--gt": gt, "--iam-root": iam_root, "--config": config},
    )
    result: dict[str, Any] = {}
    matched = None
    if truth is not None:
        result, matched = evaluate(truth, est)
        write_table(per_character(matched), report / "per_character.csv")
    if self_check and corpus is not None:
        from iamchars.segment.runner import check_boxes_table

        words = corpus.words[corpus.words["word_id"].isin(set(est["word_id"]))]
        lines = corpus.lines[corpus.lines["line_id"].isin(set(words["line_id"]))]
        result["self_check"] = self_check_report(check_boxes_table(corpus.root, lines, words, cfg.segment), est, truth)
    write_json(report / "summary.json", result)
    if corpus is not None and matched is not None:
        from iamchars.segment.runner import load_line_images
        from iamchars.viz.segeval import worst_cases_picture

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
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for scope, summary in result.items():
        if scope == "self_check":
            typer.echo(
                f"self-check: {summary['words_checked']:,} of {summary['words_total']:,} words separable "
                f"({summary['characters_checked']:,} characters): mean IoU {summary['mean_iou']:.3f}   "
                f"IoU>=0.5 {100 * summary['share_iou_ge_0.5']:.1f}%"
            )
            if "true_mean_iou_same_characters" in summary:
                typer.echo(
                    f"  against the truth: true mean IoU {summary['true_mean_iou_same_characters']:.3f} on the same "
                    f"characters, {summary['true_mean_iou_all_characters']:.3f} on all; the self-check boxes' own "
                    f"IoU with the truth {summary['check_boxes_iou_with_truth']:.3f}"
                )
            continue
        typer.echo(f"{scope}: {summary['characters']:,} characters ({summary['missing']:,} missing = IoU 0)")
        typer.echo(
            f"  mean IoU {summary['mean_iou']:.3f}   IoU>=0.5 {100 * summary['share_iou_ge_0.5']:.1f}%   "
            f"IoU>=0.7 {100 * summary['share_iou_ge_0.7']:.1f}%   horizontal IoU {summary['mean_iou_x']:.3f}"
        )
        if "mean_iou_by_score_quintile" in summary:
            q = ", ".join(f"{v:.2f}" for v in summary["mean_iou_by_score_quintile"])
            typer.echo(f"  score vs IoU: Spearman {summary['score_iou_spearman']:.2f}; mean IoU by score quintile: {q}")
    typer.echo(f"report: {report}")


@command(resume_hint="resume with --resume")
def train(
    data: Annotated[Path, typer.Option(help="dataset folder from build-dataset")] = Path("data/processed/iam"),
    out: Annotated[Path, typer.Option(help="run folder (checkpoints, metrics, plots)")] = Path("data/runs/default"),
    model: Annotated[str | None, typer.Option(help="lenet5, vgg or resnet", show_default="resnet")] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    lr: Annotated[float | None, cfg_option(TrainConfig, "lr", "peak learning rate")] = None,
    optimizer: Annotated[str | None, cfg_option(TrainConfig, "optimizer", "optimiser (sgd: Nesterov)")] = None,
    schedule: Annotated[str | None, cfg_option(TrainConfig, "schedule", "learning-rate schedule")] = None,
    ema: Annotated[float | None, cfg_option(TrainConfig, "ema", "EMA decay of the weights (0: off)")] = None,
    compile_model: Annotated[
        bool | None,
        typer.Option("--compile/--no-compile", help="torch.compile the model (GPU speed)", show_default="no"),
    ] = None,
    device: DeviceOpt = None,
    seed: Annotated[int | None, cfg_option(TrainConfig, "seed", "random seed (same seed, same run on a CPU)")] = None,
    patience: Annotated[
        int | None, cfg_option(TrainConfig, "patience", "early stopping patience in epochs (0: off)")
    ] = None,
    threads: ThreadsOpt = None,
    init: Annotated[
        Path | None, typer.Option(help="start from this checkpoint's weights (fine-tuning)", show_default="none")
    ] = None,
    freeze: Annotated[int | None, cfg_option(TrainConfig, "freeze", "freeze the first N feature stages")] = None,
    balance: Annotated[
        bool | None,
        typer.Option("--balance/--no-balance", help="draw rare classes more often", show_default="no"),
    ] = None,
    geometry: Annotated[
        bool | None,
        typer.Option(
            "--geometry/--no-geometry",
            help="also feed each box's height and place on its line to the classifier",
            show_default="no",
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue from OUT/checkpoints/last.pt")] = False,
    force: Annotated[bool, typer.Option(help="replace a run already in OUT")] = False,
    plots: Annotated[bool, typer.Option(help="save the pictures under OUT/plots")] = True,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train a CNN on the packed arrays (GPU when there is one), with checkpoints, metrics and plots."""
    from iamchars.nn import pick_device
    from iamchars.train.data import load_dataset
    from iamchars.train.distributed import context, device_name
    from iamchars.train.engine import train as run_train
    from iamchars.train.models import MODELS, build_model, summary
    from iamchars.train.plots import write_all

    cfg = _config(
        config,
        set_,
        {
            "train.model": model,
            "train.epochs": epochs,
            "train.batch_size": batch_size,
            "train.lr": lr,
            "train.optimizer": optimizer,
            "train.schedule": schedule,
            "train.ema": ema,
            "train.compile": compile_model,
            "train.device": device,
            "train.seed": seed,
            "train.patience": patience,
            "train.threads": threads,
            "train.balance": balance,
            "train.geometry": geometry,
            "train.init": str(init) if init is not None else None,
            "train.freeze": freeze,
        },
    ).train
    if cfg.model not in MODELS:
        raise _fail(f"--model {cfg.model!r}: choose one of {', '.join(MODELS)}", 2)
    if resume and force:
        raise _fail("--resume and --force contradict each other: continue the run, or replace it", 2)
    output_dir(out, inputs={"--data": data, "--config": config, "--init": init}, replaced=force)
    ctx = context(cfg.device)  # under torchrun: this rank's place; rank 0 alone prints and writes
    say = typer.echo if ctx.is_main else (lambda _message: None)
    dev = pick_device(device_name(cfg.device, ctx))
    dataset = load_dataset(data, dev)
    if len(dataset.train) < cfg.batch_size or len(dataset.val) == 0:
        raise UserError(
            f"{data}: {len(dataset.train)} training / {len(dataset.val)} validation images; need at least "
            f"one batch ({cfg.batch_size}, see --batch-size) to train and some to validate"
        )
    present = int(dataset.train.labels.unique().numel())
    if present < 2 and ctx.is_main:
        typer.secho(
            f"warning: {data}: the training split holds {present} class; the model can only learn to answer it",
            fg=typer.colors.YELLOW,
            err=True,
        )
    say(
        f"device: {dev}"
        + (f" (rank {ctx.rank} of {ctx.world})" if ctx.world > 1 else "")
        + f"; train {len(dataset.train):,} / val {len(dataset.val):,} / "
        f"test {len(dataset.test):,} images of {dataset.size}x{dataset.size}, {dataset.num_classes} classes"
    )
    say(summary(build_model(cfg.model, dataset.num_classes, dataset.size, cfg.geometry), dataset.size))
    result = run_train(dataset, out, cfg, resume=resume, progress=progress and ctx.is_main, log=say, force=force)
    if not ctx.is_main:
        return
    metrics = result["metrics"]
    test = metrics["test"]
    if plots:
        import numpy as np

        write_all(
            out,
            result["model"],
            result["history"],
            dataset.test.images.cpu().numpy(),
            dataset.test.labels.cpu().numpy(),
            result["test_logits"],
            np.array(test["confusion"]),
            dataset.class_chars,
            dataset.test.geometry.cpu().numpy() if dataset.test.geometry is not None else None,
        )
    typer.echo(
        f"best epoch {metrics['best_epoch']}: val top-1 {metrics['val_top1']:.4f}; test top-1 "
        f"{test['top1']:.4f}, top-5 {test['top5']:.4f} on {test['samples']:,} images"
    )
    typer.echo(
        f"metrics: {out / 'metrics.json'}   history: {out / 'history.csv'}   "
        f"checkpoints: {out / 'checkpoints'}" + (f"   plots: {out / 'plots'}" if plots else "")
    )


@command()
def zoo(
    data: Annotated[Path, typer.Option(help="dataset folder from build-dataset")] = Path("data/processed/iam"),
    out: Annotated[Path, typer.Option(help="folder for zoo.md, zoo.png and one run per model")] = Path("data/runs/zoo"),
    models: Annotated[str | None, typer.Option(help="comma-separated models", show_default="all")] = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    device: DeviceOpt = None,
    threads: ThreadsOpt = None,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Train every model on the same data with the same budget and write the model table (zoo.md)."""
    from iamchars.fileio import write_json, write_text
    from iamchars.nn import pick_device
    from iamchars.train.data import load_dataset
    from iamchars.train.models import MODELS
    from iamchars.train.plots import save_figure
    from iamchars.train.zoo import run_zoo, zoo_curves, zoo_table

    cfg = _config(
        config,
        set_,
        {"train.epochs": epochs, "train.batch_size": batch_size, "train.device": device, "train.threads": threads},
    ).train
    chosen = [m.strip() for m in models.split(",")] if models else list(MODELS)
    unknown = [m for m in chosen if m not in MODELS]
    if unknown:
        raise _fail(f"--models: unknown {', '.join(unknown)}; choose from {', '.join(MODELS)}", 2)
    output_dir(out, inputs={"--data": data, "--config": config})
    dev = pick_device(cfg.device)
    dataset = load_dataset(data, dev)
    rows = run_zoo(dataset, out, cfg, chosen, log=typer.echo)
    table = zoo_table(rows, cfg, dataset, str(dev))
    write_text(out / "zoo.md", table)
    write_json(out / "zoo.json", [{k: v for k, v in r.items() if k != "history"} for r in rows])
    save_figure(zoo_curves(rows), out / "zoo.png")
    typer.echo(table)


def predictions_path(metrics: Path) -> Path:
    """Where `evaluate --out M.json` writes its per-image predictions: beside it, as M_predictions.csv."""
    return metrics.with_name(metrics.stem + "_predictions.csv")


@command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train (best.pt or last.pt)")],
    data: Annotated[Path, typer.Option(help="a dataset folder with the same class set")],
    split: Annotated[str, typer.Option(help="train, val or test")] = "test",
    device: DeviceOpt = None,
    out: Annotated[
        Path | None, typer.Option(help="write metrics JSON here (and per-image predictions beside it)")
    ] = None,
) -> None:
    """Top-1/top-5 and per-class precision/recall of a checkpoint on a dataset split."""
    from iamchars.fileio import write_json, write_table
    from iamchars.nn import pick_device
    from iamchars.train.data import load_dataset
    from iamchars.train.engine import evaluate_split, model_from_checkpoint

    if split not in ("train", "val", "test"):
        raise _fail(f"--split must be train, val or test, got {split!r}", 2)
    if out is not None:
        inputs: Inputs = {"--checkpoint": checkpoint, "--data": data}
        output_file(out, inputs=inputs)
        output_file(predictions_path(out), "--out (its predictions file)", inputs=inputs)
    dev = pick_device(device or "auto")
    model, ckpt = model_from_checkpoint(checkpoint, dev)
    dataset = load_dataset(data, dev)
    if dataset.class_chars != [c["char"] for c in ckpt["classes"]["classes"]]:
        raise UserError(
            f"{data}: class set {dataset.classes['class_set']} differs from the checkpoint's "
            f"{ckpt['classes']['class_set']}"
        )
    part = getattr(dataset, split)
    if len(part) == 0:
        raise UserError(f"{data}: the {split} split holds no image; evaluate another --split")
    metrics, logits = evaluate_split(model, part, dataset.class_chars)
    if out is not None:
        import pandas as pd
        import torch

        write_json(out, metrics)
        probs = torch.softmax(logits.float(), 1)
        best, pred = probs.max(1)
        chars = dataset.class_chars
        write_table(
            pd.DataFrame(
                {
                    "char_id": part.char_ids,
                    "true": [chars[int(i)] for i in part.labels.cpu()],
                    "predicted": [chars[int(i)] for i in pred.cpu()],
                    "probability": best.cpu().numpy().round(4),
                }
            ),
            predictions_path(out),
        )
    worst = sorted(((v["recall"], ch) for ch, v in metrics["per_class"].items() if v["recall"] is not None))[:8]
    typer.echo(
        f"{split}: {metrics['samples']:,} images  top-1 {metrics['top1']:.4f}  top-5 {metrics['top5']:.4f}  "
        f"macro recall {metrics['macro_recall']:.4f}  case-pair errors {metrics['case_pair_errors']:,}"
    )
    typer.echo("lowest recall: " + ", ".join(f"{ch!r} {r:.2f}" for r, ch in worst))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm")


def read_images(arguments: list[Path], size: int) -> tuple[list[Path], list[np.ndarray], list[str]]:
    """The readable images among `arguments` (files, or folders standing for every file under them named like
    an image, sorted) prepared for the network, and why each other one was skipped: one bad file or folder
    (no image in it, a FIFO, a looping link, not an image at all) never stops the rest."""
    from iamchars.fileio import read_gray
    from iamchars.train.inference import prepare_image

    paths: list[Path] = []
    bad: list[str] = []
    for path in arguments:
        if path.is_dir():  # what is named like an image but is no regular file is read, and listed below
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
            paths += found
            if not found:
                bad.append(f"{path}: folder holds no image ({', '.join(IMAGE_SUFFIXES)})")
        else:
            paths.append(path)
    good: list[Path] = []
    prepared: list[np.ndarray] = []
    for path in paths:
        try:
            prepared.append(prepare_image(read_gray(path), size))
            good.append(path)
        except ValueError as exc:
            bad.append(str(exc))
    return good, prepared, bad


@command()
def predict(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train")],
    images: Annotated[list[Path], typer.Argument(help="character images or folders of them (any size, polarity)")],
    top: Annotated[int, typer.Option("--top", "-k", help="how many classes to show", min=1, max=1000)] = 5,
    device: DeviceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """Top-k classes with probabilities for each image; unreadable images are listed, the rest predicted."""
    import numpy as np

    from iamchars.nn import pick_device
    from iamchars.train.engine import model_from_checkpoint
    from iamchars.train.inference import top_k

    model, ckpt = model_from_checkpoint(checkpoint, pick_device(device or "auto"))
    size = int(ckpt["image_size"])
    good, prepared, bad = read_images(images, size)
    results = top_k(model, np.stack(prepared), [c["char"] for c in ckpt["classes"]["classes"]], top) if good else []
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {"image": str(p), "top": [{"char": c, "p": v} for c, v in r]}
                    for p, r in zip(good, results, strict=True)
                ],
                indent=2,
            )
        )
    else:
        for path, ranked in zip(good, results, strict=True):
            typer.echo(f"{path}: " + "  ".join(f"{c!r} {v:.3f}" for c, v in ranked))
    for reason in bad:
        typer.secho(f"skipped: {reason}", fg=typer.colors.YELLOW, err=True)
    if bad:
        raise _fail(f"{len(bad)} of {len(bad) + len(good)} images could not be read (listed above)")


@command()
def explain(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train")],
    images: Annotated[list[Path], typer.Argument(help="character images or folders of them")],
    out: Annotated[Path, typer.Option(help="the picture to write (PNG)")] = Path("explain.png"),
    device: DeviceOpt = None,
) -> None:
    """Where the network looks: occlusion sensitivity and gradient saliency of its top class, per image."""
    import numpy as np

    from iamchars.nn import pick_device
    from iamchars.train.engine import model_from_checkpoint
    from iamchars.train.explain import occlusion_maps, saliency_maps
    from iamchars.train.inference import top_k
    from iamchars.train.plots import EXPLAIN_UNITS, explanations, save_figure

    output_file(out, inputs={"--checkpoint": checkpoint, **{f"IMAGE {i + 1}": p for i, p in enumerate(images)}})
    model, ckpt = model_from_checkpoint(checkpoint, pick_device(device or "auto"))
    size = int(ckpt["image_size"])
    chars = [c["char"] for c in ckpt["classes"]["classes"]]
    paths, prepared, bad = read_images(images, size)
    for reason in bad:
        typer.secho(f"skipped: {reason}", fg=typer.colors.YELLOW, err=True)
    if not paths:
        raise UserError(f"none of the {len(bad)} images could be read (listed above)")
    batch = np.stack(prepared)
    ranked = top_k(model, batch, chars, 1)
    targets = np.array([chars.index(r[0][0]) for r in ranked])
    figure = explanations(
        batch,
        [f"{p.name}\n{r[0][0]!r} {r[0][1]:.2f}" for p, r in zip(paths, ranked, strict=True)],
        {"occlusion": occlusion_maps(model, batch, targets), "saliency": saliency_maps(model, batch, targets)},
        "what the top class rests on (occlusion: red = covering it lowers its probability)",
        EXPLAIN_UNITS,
    )
    save_figure(figure, out)
    typer.echo(f"explained {len(paths)} image(s): {out}")


@command("export-model")
def export_model_cmd(
    checkpoint: Annotated[Path, typer.Option(help="a checkpoint from train")],
    out: Annotated[Path, typer.Option(help="output file (.pt2 or .onnx)")],
    fmt: Annotated[str, typer.Option("--format", help="pt2 (torch.export) or onnx")] = "pt2",
) -> None:
    """Export a trained model for deployment (input: N x 1 x S x S floats in [0, 1], white ink on black)."""
    import torch

    from iamchars.train.engine import model_from_checkpoint
    from iamchars.train.inference import export_model

    if fmt not in ("pt2", "onnx"):
        raise _fail(f"--format must be pt2 or onnx, got {fmt!r}", 2)
    output_file(out, inputs={"--checkpoint": checkpoint})
    if fmt == "onnx":
        output_file(out.with_name(out.name + ".data"), "--out (its weights file)", inputs={"--checkpoint": checkpoint})
    model, ckpt = model_from_checkpoint(checkpoint, torch.device("cpu"))
    try:
        export_model(model, int(ckpt["image_size"]), out, fmt)
    except (RuntimeError, ValueError) as exc:
        raise UserError(str(exc)) from None
    typer.echo(f"exported {fmt} model to {out}")


if __name__ == "__main__":
    app()
