"""The `iamchars` command line: each command parses its options, calls a stage runner, reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from iamchars import __version__
from iamchars.config import ConfigError, PipelineConfig, load_config

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Turn the IAM Handwriting Database into a character dataset and train a recogniser on it.",
)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", "-c", help="pipelines/*.toml file")]  # noqa: UP045
SetOpt = Annotated[
    Optional[list[str]],  # noqa: UP045
    typer.Option("--set", help="override a config value: section.key=value (TOML syntax), repeatable"),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _config(path: Path | None, overrides: list[str] | None, extra: dict[str, object]) -> PipelineConfig:
    """Config file, then --set, then the explicit flags of a command (which win)."""
    flags = [f"{k}={json.dumps(v)}" for k, v in extra.items() if v is not None]
    try:
        return load_config(path, [*(overrides or []), *flags])
    except ConfigError as exc:
        raise _fail(str(exc), 2) from None


def _version(value: bool) -> None:
    if value:
        typer.echo(f"iamchars {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True)] = False,
) -> None:
    """iamchars: IAM words -> character boxes -> character dataset -> CNN."""


@app.command()
def download(
    out: Annotated[Path, typer.Option(help="target folder")] = Path("data/raw/iam"),
    base_url: Annotated[Optional[str], typer.Option(help="IAM site or a mirror")] = None,  # noqa: UP045
    from_path: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--from", help="import archives or an extracted tree you already have"),
    ] = None,
    netrc_file: Annotated[Path | None, typer.Option("--netrc", help="netrc file (default ~/.netrc)")] = None,
    retries: Annotated[int, typer.Option(help="reconnects per file after a dropped connection")] = 5,
    timeout: Annotated[float, typer.Option(help="socket timeout in seconds")] = 60.0,
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
) -> None:
    """Fetch IAM's ascii, lines, words, xml and split archives (resumable, verified, safely extracted)."""
    from iamchars.iam.archives import CorruptArchiveError, UnsafeArchiveError
    from iamchars.iam.download import (
        DEFAULT_BASE_URL,
        DownloadError,
        IAMClient,
        import_local,
        resolve_credentials,
    )
    from iamchars.iam.download import (
        download as run_download,
    )

    try:
        if from_path is not None:
            report = import_local(from_path, out)
        else:
            url = base_url or DEFAULT_BASE_URL
            creds = resolve_credentials(os.environ, url, netrc_file)
            client = IAMClient(url, timeout=timeout, retries=retries)
            report = run_download(out, client, creds, progress=progress)
    except (DownloadError, UnsafeArchiveError, CorruptArchiveError, OSError) as exc:
        raise _fail(str(exc)) from None
    for name in report.downloaded:
        typer.echo(f"downloaded  {name}")
    for name in report.extracted:
        typer.echo(f"extracted   {name}")
    for name in report.skipped:
        typer.echo(f"complete    {name} (skipped)")
    typer.echo(f"{report.bytes_transferred:,} bytes transferred; IAM root: {out}")


@app.command()
def info(
    iam_root: Annotated[Path, typer.Option(help="IAM root (ascii/, lines/, words/ ...)")] = Path("data/raw/iam"),
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
    strict: Annotated[bool, typer.Option(help="fail on the first malformed row")] = False,
    check_images: Annotated[bool, typer.Option(help="check every image exists and matches its box")] = True,
    rejects: Annotated[Optional[Path], typer.Option(help="write the rejects report (CSV) here")] = None,  # noqa: UP045
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Summarise an IAM root: forms, writers, lines, words, ok/err, characters, splits, rejects."""
    from iamchars.fileio import write_table
    from iamchars.iam.corpus import IAMLayoutError, load_corpus
    from iamchars.iam.info import format_summary, summarize
    from iamchars.iam.rejects import IAMFormatError

    cfg = _config(config, set_, {"parse.strict": strict, "parse.check_images": check_images})
    try:
        corpus = load_corpus(iam_root, cfg.parse, cfg.split)
    except (IAMLayoutError, IAMFormatError) as exc:
        raise _fail(str(exc)) from None
    if rejects is not None:
        write_table(corpus.rejects, rejects)
    summary = summarize(corpus)
    if as_json:
        json.dump(summary, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
    else:
        typer.echo(format_summary(summary))


@app.command()
def synth(
    out: Annotated[Path, typer.Option(help="target folder (IAM layout)")] = Path("data/synth/iam"),
    forms: Annotated[Optional[int], typer.Option(help="number of forms")] = None,  # noqa: UP045
    lines_per_form: Annotated[Optional[int], typer.Option(help="lines per form")] = None,  # noqa: UP045
    seed: Annotated[Optional[int], typer.Option(help="random seed")] = None,  # noqa: UP045
    fonts: Annotated[Optional[str], typer.Option(help="comma-separated writer fonts (fontpkg names)")] = None,  # noqa: UP045
    workers: Annotated[Optional[int], typer.Option(help="processes (0: one per core)")] = None,  # noqa: UP045
    preview: Annotated[bool, typer.Option(help="save preview.png with true boxes over a few lines")] = False,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Write a synthetic handwriting corpus in IAM's format, with the true box of every character."""
    from iamchars.fileio import write_png
    from iamchars.fonts import FontNotFoundError
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
    try:
        counts = write_corpus(out, cfg.synth, cfg.split, progress=progress)
    except (ValueError, FontNotFoundError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(", ".join(f"{v:,} {k}" for k, v in counts.items()) + f" written to {out}")
    if preview:
        import pandas as pd

        corpus = load_corpus(out, cfg.parse, cfg.split)
        picture = draw_preview(out, pd.read_csv(out / "chars_gt.csv", keep_default_na=False), corpus.lines)
        write_png(out / "preview.png", picture)
        typer.echo(f"preview: {out / 'preview.png'}")


@app.command("build-dataset")
def build_dataset_cmd(
    iam_root: Annotated[Path, typer.Option(help="IAM root (real or synthetic)")] = Path("data/raw/iam"),
    out: Annotated[Path, typer.Option(help="dataset folder")] = Path("data/processed/iam"),
    method: Annotated[Optional[str], typer.Option(help="segmentation: refined (default) or seed")] = None,  # noqa: UP045
    classes: Annotated[Optional[str], typer.Option(help="byclass, bymerge, letters or digits")] = None,  # noqa: UP045
    punctuation: Annotated[Optional[bool], typer.Option("--punctuation/--no-punctuation")] = None,  # noqa: UP045
    size: Annotated[Optional[int], typer.Option(help="image side S (28 for EMNIST-like)")] = None,  # noqa: UP045
    include_err: Annotated[Optional[bool], typer.Option("--include-err/--exclude-err")] = None,  # noqa: UP045
    min_score: Annotated[Optional[float], typer.Option(help="drop characters below this confidence")] = None,  # noqa: UP045
    boxes: Annotated[Optional[str], typer.Option(help="estimated, or gt:PATH/chars_gt.csv")] = None,  # noqa: UP045
    workers: Annotated[Optional[int], typer.Option(help="processes (0: one per core)")] = None,  # noqa: UP045
    font: Annotated[Optional[str], typer.Option(help="alignment font: fontpkg name or TTF path")] = None,  # noqa: UP045
    k_std: Annotated[Optional[float], typer.Option(help="vertical band half-height in line-ink stds")] = None,  # noqa: UP045
    strict: Annotated[bool | None, typer.Option("--strict/--lenient", help="fail on malformed rows")] = None,
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Parse, segment and export a character dataset (manifest, PNGs, packed arrays, QA pictures, card)."""
    from iamchars.dataset.export import DatasetError, build_dataset
    from iamchars.fonts import FontNotFoundError
    from iamchars.iam.corpus import IAMLayoutError
    from iamchars.iam.rejects import IAMFormatError

    cfg = _config(
        config,
        set_,
        {
            "segment.method": method,
            "export.classes": classes,
            "export.punctuation": punctuation,
            "export.size": size,
            "export.include_err": include_err,
            "export.min_score": min_score,
            "export.boxes": boxes,
            "export.workers": workers,
            "segment.font": font,
            "segment.k_std": k_std,
            "parse.strict": strict,
        },
    )
    try:
        summary = build_dataset(iam_root, out, cfg, progress=progress)
    except (DatasetError, IAMLayoutError, IAMFormatError, FontNotFoundError, ValueError) as exc:
        raise _fail(str(exc)) from None
    t = summary["timings"]
    rate = summary["characters"] / max(t["segment_crop_s"], 1e-9)
    typer.echo(
        f"{summary['characters']:,} characters exported to {out} "
        f"(train {summary['splits']['train']:,} / val {summary['splits']['val']:,} / "
        f"test {summary['splits']['test']:,}); {rate:,.0f} chars/s; rejects: {summary['rejects']:,}"
    )
    typer.echo(f"card: {out / 'card.md'}   QA pictures: {out / 'qa'}")


@app.command("evaluate-segmentation")
def evaluate_segmentation(
    gt: Annotated[Path, typer.Option(help="chars_gt.csv of a synthetic corpus")],
    manifest: Annotated[Path, typer.Option(help="manifest.parquet (or .csv) of a built dataset")],
    iam_root: Annotated[Optional[Path], typer.Option(help="IAM root, for the worst-cases picture")] = None,  # noqa: UP045
    out: Annotated[Optional[Path], typer.Option(help="report folder (default: beside the manifest)")] = None,  # noqa: UP045
    worst: Annotated[int, typer.Option(help="worst cases to draw")] = 16,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """IoU of estimated character boxes against true boxes, per character, with a worst-cases picture."""
    import pandas as pd

    from iamchars.fileio import write_json, write_png, write_table
    from iamchars.segment.evaluate import evaluate, match, per_character

    try:
        truth = pd.read_csv(gt, keep_default_na=False, dtype={"char": str, "word_id": str})
        est = (
            pd.read_parquet(manifest)
            if manifest.suffix == ".parquet"
            else pd.read_csv(manifest, keep_default_na=False, dtype={"char": str, "word_id": str})
        )
    except (OSError, ValueError) as exc:
        raise _fail(f"cannot read input: {exc}") from None
    report = out or manifest.parent / "segeval"
    result = evaluate(truth, est)
    matched = match(truth, est)
    write_json(report / "summary.json", result)
    write_table(per_character(matched), report / "per_character.csv")
    if iam_root is not None:
        from iamchars.config import ParseConfig
        from iamchars.iam.corpus import load_corpus
        from iamchars.segment.runner import load_line_images
        from iamchars.viz.segeval import worst_cases_picture

        corpus = load_corpus(iam_root, ParseConfig(check_images=False))
        worst_rows = matched[matched["found"]].sort_values(["iou", "word_id", "char_index"])
        worst_rows = worst_rows.drop_duplicates("word_id").head(worst)  # one panel per word
        lines = corpus.lines[corpus.lines["line_id"].isin(set(worst_rows["word_id"].str.rsplit("-", n=1).str[0]))]
        images, _ = load_line_images(iam_root, lines, set(lines["line_id"]))
        word_chars = matched[matched["word_id"].isin(set(worst_rows["word_id"]))]
        write_png(
            report / "worst_cases.png",
            worst_cases_picture(worst_rows, word_chars, corpus.words, images, corpus.lines),
        )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for scope, s in result.items():
        typer.echo(f"{scope}: {s['characters']:,} characters ({s['missing']:,} missing = IoU 0)")
        typer.echo(
            f"  mean IoU {s['mean_iou']:.3f}   IoU>=0.5 {100 * s['share_iou_ge_0.5']:.1f}%   "
            f"IoU>=0.7 {100 * s['share_iou_ge_0.7']:.1f}%   horizontal IoU {s['mean_iou_x']:.3f}"
        )
        if "mean_iou_by_score_quintile" in s:
            q = ", ".join(f"{v:.2f}" for v in s["mean_iou_by_score_quintile"])
            typer.echo(f"  score vs IoU: Spearman {s['score_iou_spearman']:.2f}; mean IoU by score quintile: {q}")
    typer.echo(f"report: {report}")
