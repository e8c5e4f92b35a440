"""`iamchars build-dataset`: parse, segment, crop and export, form by form in parallel processes.

Each finished form leaves a shard under `OUT/.work/forms/`; a killed run resumes with the forms that have
none, as long as the inputs (transcriptions and images) and parameters are those the shards were made from.
Shards are merged in form order, so the manifest does not depend on scheduling. The dataset is staged in
`OUT/.work/stage/` and swapped in whole (`dataset.format.publish`): a run that fails (a full disk, a bad
input) leaves the previous dataset as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from iamchars import __version__
from iamchars.config import PipelineConfig
from iamchars.dataset import qa as qa_pictures
from iamchars.dataset.card import render_card
from iamchars.dataset.classes import ClassSet, class_set
from iamchars.dataset.crops import box_geometry, crop_box, line_window, normalize_crop, paper_and_ink_levels
from iamchars.dataset.format import (
    FAILED_REJECTS,
    MANIFEST_COLUMNS,
    PIECES,
    SPLITS,
    ManifestRow,
    SplitArrays,
    make_record,
    manifest_table,
    publish,
    write_classes,
    write_manifest,
    write_split,
)
from iamchars.dataset.reliability import boxes_right, reliability, threshold_rows
from iamchars.errors import UserError
from iamchars.fileio import (
    atomic_path,
    inside,
    is_regular_file,
    read_bytes,
    read_table,
    write_json,
    write_png,
    write_table,
    write_text,
)
from iamchars.iam.corpus import NARROW_BOX, IAMCorpus, image_path, load_corpus
from iamchars.iam.rejects import Reject, reject_frame, reject_row
from iamchars.layout.convert import LayoutCorpus
from iamchars.layout.formats import write_glyphs
from iamchars.layout.write import glyphs_by_line
from iamchars.parallel import ordered_map, resolve_workers
from iamchars.progress import progress_bar
from iamchars.segment.methods import CorpusCuts
from iamchars.segment.runner import load_line_images
from iamchars.segment.selfcheck import summarize_check
from iamchars.segment.stage import corpus_cuts, given_form, segment_form, unboxed_lines, with_found_words


class DatasetError(UserError, ValueError):
    pass


@dataclass(frozen=True)
class FormJob:
    form_id: str
    root: Path
    out: Path
    lines: pd.DataFrame
    words: pd.DataFrame
    gt: pd.DataFrame | None
    cfg: PipelineConfig
    classes: ClassSet
    source: str
    cuts: CorpusCuts | None = None
    """The method's corpus-pass cuts of this form's words, where the method has a corpus pass."""


def process_form(job: FormJob) -> dict[str, Any]:
    """Segment (or take true boxes), crop, write the PNGs and the form's shard; returns its counts."""
    exp = job.cfg.export
    if job.gt is None:
        seg = segment_form(job.root, job.lines, job.words, job.cfg.segment, job.cuts)
    else:
        seg = given_form(job.root, job.lines, job.words, job.gt, job.cfg.segment)
    boxes, loaded = seg.boxes, seg.lines
    images, rejects = loaded.images, list(loaded.rejects)
    word_info = {
        wid: (lid, split, writer, text, flag, found, (x, y, w, h))
        for wid, lid, split, writer, text, flag, found, x, y, w, h in zip(
            *(
                job.words[c].tolist()
                for c in ("word_id", "line_id", "split", "writer_id", "text", "flag", "word_box", "x", "y", "w", "h")
            ),
            strict=True,
        )
    }
    origins = dict(
        zip(
            job.lines["line_id"].tolist(),
            zip(job.lines["x"].tolist(), job.lines["y"].tolist(), strict=True),
            strict=True,
        )
    )
    mapping = job.classes.mapping
    excluded: Counter[str] = Counter()
    below = 0
    rows: list[ManifestRow] = []
    crops: list[np.ndarray] = []
    levels = {lid: paper_and_ink_levels(img) for lid, img in images.items()}
    stats = seg.geometry  # the line's ink mean row and std: its scale, for line crops and each box's geometry
    for b in boxes.itertuples(index=False):
        line_id, split, writer, text, flag, word_box, (wx, wy, ww, wh) = word_info[b.word_id]
        label = mapping.get(b.char)
        if label is None:
            excluded[b.char] += 1
            continue
        if b.confidence < exp.min_confidence:
            below += 1
            continue
        gray = images.get(line_id)
        if gray is None:
            continue  # the line image itself was rejected
        lx, ly = origins[line_id]
        char_id = f"{b.word_id}-{b.char_index:02d}"
        box = (b.x - lx, b.y - ly, b.w, b.h)
        paper, ink = levels[line_id]
        mean, std = stats[line_id].mean, stats[line_id].std
        if exp.crop == "line":
            crop = line_window(gray, box, mean, std, exp.line_window_stds, paper)
        else:
            crop = crop_box(gray, box) if b.w > 0 and b.h > 0 else None
        if crop is None:
            rejects.append(reject_row("crop", line_id, None, char_id, "box outside its line image or empty"))
            continue
        tile = normalize_crop(crop, paper, ink, exp.size)
        if tile.max() == 0:
            rejects.append(reject_row("crop", line_id, None, char_id, "crop holds no ink"))
            continue
        rel = f"images/{split}/{job.classes.folder(label)}/{char_id}.png" if exp.write_png else ""
        rows.append(
            ManifestRow(
                char_id=char_id,
                word_id=b.word_id,
                line_id=line_id,
                form_id=job.form_id,
                writer_id=writer,
                split=split,
                char=b.char,
                char_index=int(b.char_index),
                label=label,
                x=int(b.x),
                y=int(b.y),
                w=int(b.w),
                h=int(b.h),
                confidence=float(b.confidence),
                check_iou=float(b.check_iou),
                bounds_from="word images" if line_id in loaded.composed else "line image",
                line_mean_y=round(mean + ly, 3),
                line_std=round(std, 3),
                word_text=text,
                word_flag=flag,
                word_box=word_box,
                word_x=int(wx),
                word_y=int(wy),
                word_w=int(ww),
                word_h=int(wh),
                source=PIECES if b.from_pieces else job.source,
                image=rel,
            )
        )
        crops.append(tile)
    meta = {
        "rows": rows,
        "rejects": rejects,
        "excluded": dict(excluded),
        "below_min_confidence": below,
        "characters_seen": len(boxes),
    }
    shard = _shard_path(job.out, job.form_id)
    stack = np.stack(crops) if crops else np.zeros((0, exp.size, exp.size), np.uint8)
    with atomic_path(shard) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, crops=stack, meta=np.array(json.dumps(meta)))
    return {"form_id": job.form_id, "chars": len(rows)}


@dataclass(frozen=True)
class TileJob:
    shard: Path
    stage: Path


def write_tiles(job: TileJob) -> int:
    """Write one form's character PNGs (ImageFolder layout) into the staged dataset, from its shard; each
    path is checked to stay inside the stage. Returns the number written."""
    meta, crops = _load_shard(job.shard)
    made: set[str] = set()
    for row, tile in zip(meta["rows"], crops, strict=True):
        path = inside(job.stage, ManifestRow(*row).image)
        if path.parent.as_posix() not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(path.parent.as_posix())
        ok, buf = cv2.imencode(".png", tile, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        if not ok:
            raise OSError(f"{path}: PNG encoding failed")
        with open(path, "wb") as handle:  # the stage is published whole or not at all
            handle.write(buf.tobytes())
    return len(meta["rows"])


def _shard_path(out: Path, form_id: str) -> Path:
    return inside(out, ".work", "forms", f"{form_id}.npz")


def _load_shard(path: Path) -> tuple[dict[str, Any], np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return json.loads(str(data["meta"])), data["crops"]


def _read_gt(spec: str) -> tuple[pd.DataFrame | None, str]:
    if spec == "estimated":
        return None, "estimated"
    if not spec.startswith("gt:"):
        raise DatasetError(f"export.boxes must be 'estimated' or 'gt:PATH/chars_gt.csv', got {spec!r}")
    gt = read_table(Path(spec[3:]), ["word_id", "char_index", "char", "x", "y", "w", "h"], "true-box file")
    return gt, "gt"


def _inputs_digest(root: Path, boxes: str, lines: pd.DataFrame, words: pd.DataFrame) -> str:
    """A hash of the transcription files (and true boxes) and of the identity (size, modification time) of
    every line and word image used, so that re-made or edited inputs never reuse old shards."""
    digest = hashlib.sha256()
    paths = [root / "ascii" / n for n in ("forms.txt", "lines.txt", "words.txt")]
    paths += [root / "xml" / f"{f}.xml" for f in sorted(set(words["form_id"]))] if (root / "xml").is_dir() else []
    paths += [Path(boxes[3:])] if boxes.startswith("gt:") else []
    for path in paths:
        if is_regular_file(path):
            digest.update(read_bytes(path))
    images = [image_path(root, "lines", i) for i in lines["line_id"]]
    images += [image_path(root, "words", i) for i in words["word_id"]]
    for path in images:
        try:
            info = os.stat(path)
            digest.update(f"{path.name} {info.st_size} {info.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path.name} -\n".encode())
    return digest.hexdigest()[:16]


def _prepare_work(out: Path, digest: str) -> None:
    """Keep finished shards only if they were made with the same inputs and parameters."""
    state_path = out / ".work" / "state.json"
    try:
        state = json.loads(read_bytes(state_path))
    except (FileNotFoundError, ValueError, OSError):
        state = {}
    if state.get("digest") != digest:
        shutil.rmtree(out / ".work", ignore_errors=True)
        write_json(state_path, {"digest": digest, "version": __version__})


def usable_words(corpus: IAMCorpus, include_err: bool) -> pd.DataFrame:
    words = corpus.words[corpus.words["valid"] & corpus.words["split"].isin(SPLITS)]
    return words if include_err else words[words["flag"] == "ok"]


def _top_reasons(rejects: pd.DataFrame) -> str:
    return "; ".join(f"{n:,} x {why}" for why, n in rejects["reason"].value_counts().head(2).items())


def _check_reject_share(
    where: Path, rejected: int, total: int, what: str, rejects: pd.DataFrame, out: Path, cfg: PipelineConfig
) -> None:
    """The one limit on what the input loses: word rows, checked before the work (rows) and after it (line
    images too), and an imported folder's XML files. Over it, the rejects report goes to failed-rejects.csv
    and the run fails naming `what` was lost."""
    if rejected > cfg.export.max_reject_share * total:
        write_table(rejects, out / FAILED_REJECTS)
        raise DatasetError(
            f"{where}: {rejected:,} of {total:,} {what}, more than --max-reject-share "
            f"{cfg.export.max_reject_share} ({_top_reasons(rejects)}); see {out / FAILED_REJECTS}, fix the input "
            "or raise the limit"
        )


def _check_input(corpus: IAMCorpus, words: pd.DataFrame, out: Path, cfg: PipelineConfig) -> None:
    """Fail before any work when nothing can be exported, or when too much of the input was rejected."""
    rows = corpus.input_word_rows
    rejected = rows - int(corpus.words["valid"].sum())
    if len(words):
        _check_reject_share(corpus.root, rejected, rows, "word rows rejected", corpus.rejects, out, cfg)
        return
    write_table(corpus.rejects, out / FAILED_REJECTS)
    reasons = _top_reasons(corpus.rejects)
    see = f"see {out / FAILED_REJECTS}"
    if corpus.warnings:
        why = "; ".join(corpus.warnings)
    elif rejected:
        why = f"{rejected:,} of {rows:,} word rows rejected ({reasons}), the rest unusable; {see}"
    elif not rows:
        why = "the words file holds no word row"
    elif not cfg.export.include_err:
        why = "no word flagged 'ok' in the train/val/test splits (--include-err also takes IAM's 'err' lines)"
    else:
        why = "no word in the train/val/test splits (see split.unlisted)"
    raise DatasetError(f"{corpus.root}: nothing to export: {why}")


def build_dataset(
    root: Path, out: Path, cfg: PipelineConfig, progress: bool = True, layout: LayoutCorpus | None = None
) -> dict[str, Any]:
    """The whole stage; returns the summary that the card and the CLI report.

    A run that would export nothing, or that rejects more than `export.max_reject_share` of its word rows,
    raises DatasetError (after writing its rejects report to `failed-rejects.csv`) instead of succeeding with
    an empty or thin dataset; any failure leaves the dataset already in `out` as it was."""
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    classes = class_set(cfg.export.classes, cfg.export.punctuation)
    gt, source_kind = _read_gt(cfg.export.boxes)
    _check_layout_output(cfg, layout)
    corpus = load_corpus(root, cfg.parse, cfg.split)
    timings["parse_s"] = time.perf_counter() - t0
    corpus = with_found_words(corpus, unboxed_lines(corpus, cfg), cfg, progress)
    timings["find_words_s"] = time.perf_counter() - t0 - timings["parse_s"]
    locate = layout.locate if layout is not None else _as_is
    if layout is not None:  # what the import could not read counts against the same limits
        corpus = replace(
            corpus,
            rejects=pd.concat([layout.rejects, locate(corpus.rejects)], ignore_index=True),
            input_word_rows=corpus.input_word_rows + layout.counts["words_lost"],
            warnings=list(layout.warnings),  # the import's own IAM files are no concern of the user's
        )
        lost, files = layout.counts["pages_lost"], layout.counts["xml_files"]
        unread = "XML files could not be read as pages"
        _check_reject_share(layout.source, lost, files, unread, corpus.rejects, out, cfg)
    words = usable_words(corpus, cfg.export.include_err)
    _check_input(corpus, words, out, cfg)
    lines = corpus.lines[corpus.lines["line_id"].isin(set(words["line_id"]))]
    source = "gt" if source_kind == "gt" else f"estimated:{cfg.segment.method}"
    config_digest = cfg.digest("parse", "split", "segment", "export")
    inputs_digest = _inputs_digest(Path(root), cfg.export.boxes, lines, words)
    digest = "|".join(
        [
            config_digest,
            str(Path(root).resolve()),
            source,
            inputs_digest,
            ",".join(MANIFEST_COLUMNS),  # a shard from a version whose rows differ is never reused
        ]
    )
    _prepare_work(out, digest)
    form_ids = sorted(set(words["form_id"]))
    todo = [f for f in form_ids if not _shard_path(out, f).is_file()]
    lines_by_form = dict(tuple(lines.groupby("form_id")))
    words_by_form = dict(tuple(words.groupby("form_id")))
    gt_by_form = (
        dict(tuple(gt.assign(form_id=gt["word_id"].str.rsplit("-", n=2).str[0]).groupby("form_id")))
        if gt is not None
        else {}
    )
    t1 = time.perf_counter()
    found = None
    if gt is None and todo:
        cache = out / ".work" / "corpus_cuts.npz"
        found = corpus_cuts(Path(root), lines_by_form, words_by_form, cfg.segment, cfg.export.workers, cache, progress)
    timings["align_s"] = time.perf_counter() - t1
    jobs = [
        FormJob(
            f,
            Path(root),
            out,
            lines_by_form[f],
            words_by_form[f],
            gt_by_form.get(f, gt.iloc[:0]) if gt is not None else None,
            cfg,
            classes,
            source,
            found.of_words(words_by_form[f]["word_id"]) if found is not None else None,
        )
        for f in todo
    ]
    t1 = time.perf_counter()
    expected = int(words[words["form_id"].isin(set(todo))]["text"].str.len().sum())
    bar = progress_bar(total=expected, unit="char", desc="build-dataset", disable=not progress, smoothing=0.1)
    chars_per_form = words.assign(n=words["text"].str.len()).groupby("form_id")["n"].sum()
    with bar:
        for result in ordered_map(process_form, jobs, resolve_workers(cfg.export.workers, len(jobs))):
            bar.update(int(chars_per_form[result["form_id"]]))
    timings["segment_crop_s"] = time.perf_counter() - t1
    stage = out / ".work" / "stage"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        t2 = time.perf_counter()
        manifest, crops, summary = _merge(stage, out, form_ids, classes, corpus, words, cfg, locate)
        if cfg.export.write_png:
            tile_jobs = [TileJob(_shard_path(out, f), stage) for f in form_ids]
            workers = resolve_workers(cfg.export.workers, len(tile_jobs))
            for _ in ordered_map(write_tiles, tile_jobs, workers):
                pass
            for split in SPLITS:  # every class's folder in every split: folder order is label order everywhere
                for label in range(len(classes.classes)):
                    inside(stage, "images", split, classes.folder(label)).mkdir(parents=True, exist_ok=True)
        timings["merge_s"] = time.perf_counter() - t2
        t3 = time.perf_counter()
        summary["reliability"] = _reliability(stage, Path(root), manifest, source, corpus.warnings)
        _write_qa(stage, Path(root), lines, words, manifest, crops, classes, cfg)
        if layout is not None and cfg.export.layout != "none":
            corpus.warnings.extend(_write_layout(stage, layout, manifest, cfg.export.layout))
        timings["qa_s"] = time.perf_counter() - t3
        timings["forms_resumed"] = float(len(form_ids) - len(todo))
        timings["total_s"] = time.perf_counter() - t0
        summary.update(
            word_boxes={kind: int((words["word_box"] == kind).sum()) for kind in ("given", "found")},
            timings=timings,
            alignment=found.stats if found is not None else None,
            source=source,
            config=cfg.to_dict(),
            root=str(layout.source if layout is not None else root),
            input=layout.describe() if layout is not None else {"format": "iam"},
            warnings=corpus.warnings,
        )
        write_text(stage / "card.md", render_card(summary, classes))
        images = {s: int((manifest["split"] == s).sum()) if cfg.export.write_png else 0 for s in SPLITS}
        record = make_record(stage, config_digest, inputs_digest, images)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # a full disk gets its space back; the shards stay for a rerun
        raise
    publish(stage, out, record)
    shutil.rmtree(out / ".work", ignore_errors=True)  # finished: the shards are in the manifest and arrays now
    return summary


TRUTH_FILE = "chars_gt.csv"
"""A corpus's true boxes, where it has them (synthetic corpora, pen-dev): the card measures the confidence on
them."""


def _reliability(
    stage: Path, root: Path, manifest: pd.DataFrame, source: str, warnings: list[str]
) -> dict[str, Any] | None:
    """How well the confidence predicts which boxes are right, against the corpus's true boxes where it has
    them (`chars_gt.csv` in its root), else against the self-check's exact boxes of separable words; drawn as
    qa/reliability.png. None for a dataset of true boxes."""
    if source == "gt":
        return None
    confidence = manifest["confidence"].to_numpy(np.float64)
    truth_file = root / TRUTH_FILE
    right: np.ndarray | None = None
    if is_regular_file(truth_file):
        try:
            truth = read_table(truth_file, ["word_id", "char_index", "x", "y", "w", "h"], "true-box file")
            right = boxes_right(manifest, truth)
        except (UserError, ValueError) as exc:
            warnings.append(f"{truth_file}: not used to measure the confidence ({exc})")
    if right is not None:
        known, against = np.ones(len(manifest), bool), "true boxes"
    else:
        check = manifest["check_iou"].to_numpy(np.float64)
        known, against = np.isfinite(check), "the self-check's boxes of separable words"
        right = check >= 0.5
    report = {
        **reliability(confidence[known], right[known], against),
        "thresholds": threshold_rows(confidence, right if known.all() else None),
    }
    if known.any():
        subtitle = f"{int(known.sum()):,} characters against {against}"
        write_png(
            stage / "qa" / "reliability.png", qa_pictures.reliability_picture(pd.DataFrame(report["bins"]), subtitle)
        )
    return report


def _check_layout_output(cfg: PipelineConfig, layout: LayoutCorpus | None) -> None:
    """`export.layout` writes PAGE or ALTO files back: only files of that format read from `--corpus`."""
    fmt = cfg.export.layout
    if fmt == "none":
        return
    if layout is None:
        raise DatasetError(f"--write {fmt}: glyphs are written back into the files read with --corpus, not an IAM root")
    if fmt not in set(layout.pages["format"]):
        raise DatasetError(f"--write {fmt}: the corpus {layout.source} holds no {fmt} file to write back")


def _write_layout(stage: Path, layout: LayoutCorpus, manifest: pd.DataFrame, fmt: str) -> list[str]:
    """Each `fmt` file of the corpus, as it was plus a Glyph per exported character, into stage/fmt/ under
    the file's own path; returns warnings on what was left as the user had it."""
    by_form = dict(tuple(layout.lines.groupby("form_id")))
    chars = dict(tuple(manifest.groupby("form_id")))
    own_glyphs, unmatched = 0, []
    for form_id, xml, kind in zip(layout.pages["form_id"], layout.pages["xml"], layout.pages["format"], strict=True):
        if kind != fmt:
            continue
        lines = by_form.get(form_id)
        order = dict(zip(lines["line_id"], lines["order"].astype(int), strict=True)) if lines is not None else {}
        found = glyphs_by_line(chars.get(form_id, manifest.iloc[:0]), order)
        data, report = write_glyphs(read_bytes(inside(layout.source, xml)), xml, found)
        own_glyphs += report.words_with_own_glyphs
        unmatched += [f"{xml}:{n}" for n in report.lines_not_matched]
        target = inside(stage, fmt, xml)
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    warnings = []
    if own_glyphs:
        warnings.append(f"--write {fmt}: {own_glyphs:,} words already held Glyphs; they were kept, and got none added")
    if unmatched:
        warnings.append(
            f"--write {fmt}: {len(unmatched):,} text lines were written back without glyphs: their word elements "
            f"do not spell their transcription (first: {unmatched[0]})"
        )
    return warnings


def _as_is(rejects: pd.DataFrame) -> pd.DataFrame:
    return rejects


def summary_line(summary: dict[str, Any], out: Path) -> str:
    """The line `build-dataset` closes with: characters per split, time and rate, alignment's share, rejects."""
    t = summary["timings"]
    rate = summary["characters"] / max(t["total_s"], 1e-9)
    splits = summary["splits"]
    return (
        f"{summary['characters']:,} characters exported to {out} "
        f"(train {splits['train']:,} / val {splits['val']:,} / test {splits['test']:,}) in {t['total_s']:,.1f} s, "
        f"{rate:,.0f} chars/s all stages included (alignment {t['align_s']:,.1f} s); rejects: {summary['rejects']:,}"
    )


def _write_qa(
    stage: Path,
    root: Path,
    lines: pd.DataFrame,
    words: pd.DataFrame,
    manifest: pd.DataFrame,
    crops: np.ndarray,
    classes: ClassSet,
    cfg: PipelineConfig,
) -> None:
    qa = stage / "qa"
    forms = sorted(set(manifest["form_id"]))
    picked_forms = (
        [forms[i] for i in np.linspace(0, len(forms) - 1, min(cfg.export.qa_lines, len(forms))).round().astype(int)]
        if forms
        else []
    )
    picked = lines[lines["form_id"].isin(picked_forms)].groupby("form_id", sort=True).head(1)
    images = load_line_images(root, picked, words[words["line_id"].isin(set(picked["line_id"]))]).images
    write_png(qa / "overlays.png", qa_pictures.overlays(images, picked, manifest))
    write_png(qa / "overview.png", qa_pictures.overview(manifest, crops, classes))
    write_png(qa / "lowest_confidence.png", qa_pictures.lowest_confidence(manifest, crops))
    for folder, sheet in qa_pictures.class_sheets(manifest, crops, classes, cfg.export.qa_per_class).items():
        write_png(inside(qa, "classes", f"{folder}.png"), sheet)


def _merge(
    stage: Path,
    out: Path,
    form_ids: list[str],
    classes: ClassSet,
    corpus: IAMCorpus,
    words: pd.DataFrame,
    cfg: PipelineConfig,
    locate: Callable[[pd.DataFrame], pd.DataFrame],
) -> tuple[pd.DataFrame, np.ndarray, dict[str, Any]]:
    """Join the form shards of `out` into the manifest, arrays, classes.json and rejects.csv in `stage`; a
    run that exported no character, or lost too many words to unreadable images, raises DatasetError (its
    rejects report in `out/failed-rejects.csv`)."""
    rows: list[list[Any]] = []  # ManifestRow values, as the shards hold them
    crops: list[np.ndarray] = []
    rejects: list[Reject] = []
    excluded: Counter[str] = Counter()
    below = seen = 0
    for form in form_ids:
        meta, stack = _load_shard(_shard_path(out, form))
        rows.extend(meta["rows"])
        crops.append(stack)
        rejects.extend(meta["rejects"])
        excluded.update(meta["excluded"])
        below += meta["below_min_confidence"]
        seen += meta["characters_seen"]
    manifest = manifest_table(rows)
    geometry = box_geometry(manifest)
    images = np.concatenate(crops) if crops else np.zeros((0, cfg.export.size, cfg.export.size), np.uint8)
    all_rejects = pd.concat([corpus.rejects, locate(reject_frame(rejects))], ignore_index=True)
    bad_lines = {r["item_id"] for r in rejects if r["stage"] == "images"}  # not those composed from word images
    lost = int(corpus.input_word_rows - corpus.words["valid"].sum() + words["line_id"].isin(bad_lines).sum())
    _check_reject_share(corpus.root, lost, corpus.input_word_rows, "word rows rejected", all_rejects, out, cfg)
    if manifest.empty:
        write_table(all_rejects, out / FAILED_REJECTS)
        why = [f"{sum(excluded.values()):,} outside the class set {classes.name}"] if excluded else []
        why += [f"{below:,} below --min-confidence {cfg.export.min_confidence}"] if below else []
        why += [f"{len(rejects):,} rejected"] if rejects else []
        raise DatasetError(
            f"{corpus.root}: 0 characters exported of {seen:,} ({', '.join(why) or 'no word held a character'}); "
            f"nothing written but {out / FAILED_REJECTS}"
        )
    write_table(all_rejects, stage / "rejects.csv")
    write_manifest(stage, manifest)
    labels = manifest["label"].to_numpy(np.int64)
    char_ids = manifest["char_id"].to_numpy(str)
    for split in SPLITS:
        mask = (manifest["split"] == split).to_numpy()
        write_split(stage, split, SplitArrays(images[mask], labels[mask], char_ids[mask], geometry[mask]))
    write_classes(
        stage,
        {
            **classes.to_json(),
            "image_size": cfg.export.size,
            "crop": cfg.export.crop,
            "polarity": "white ink (255) on black background (0)",
        },
    )
    segmented = (manifest["source"] != PIECES).to_numpy()
    counts = (
        manifest.groupby(["label", "split"]).size().unstack(fill_value=0).reindex(columns=list(SPLITS), fill_value=0)
    )
    return (
        manifest,
        images,
        {
            "characters": len(manifest),
            "characters_seen": seen,
            "excluded_by_class_set": dict(sorted(excluded.items(), key=lambda kv: -kv[1])),
            "below_min_confidence": below,
            "words_from_pieces": int(manifest.loc[manifest["source"] == PIECES, "word_id"].nunique()),
            "rejects": len(all_rejects),
            "rejects_by_reason": {str(k): int(v) for k, v in all_rejects["reason"].value_counts().items()},
            "narrow_word_boxes": int((all_rejects["reason"] == NARROW_BOX).sum()),
            "splits": {s: int((manifest["split"] == s).sum()) for s in SPLITS},
            "writers": {s: int(manifest.loc[manifest["split"] == s, "writer_id"].nunique()) for s in SPLITS},
            "per_class": {int(label): {s: int(v) for s, v in row.items()} for label, row in counts.iterrows()},
            "mean_confidence": float(manifest["confidence"].mean()) if len(manifest) else 0.0,
            "self_check": summarize_check(  # the words boxed by their pieces would only check themselves
                manifest.loc[segmented, "check_iou"].to_numpy(np.float64),
                manifest.loc[segmented, "word_id"].to_numpy(str),
                int(manifest.loc[segmented, "word_id"].nunique()),
            ),
        },
    )
