"""A folder of page images with PAGE XML or ALTO files, made into an IAM root that the rest of iamchars reads:
the file-reading edge of `iamchars.layout`.

Each XML file is a form (`pg-<its path's letters and digits>`), each text line with a transcription a line
(`<form>-NN`, in document order) whose image is the page cropped to the line polygon's bounding box, with
everything outside the line's polygon and its region's polygon painted paper. Words the file boxes become
rows of words.txt; lines whose words it does not box are left to `build-dataset`, which finds them in the
ink. Writers come from `writers.csv` in the folder (`page,writer`: an XML path relative to the folder, a
writer id of letters and digits); without it every page is its own writer, so the splits are by page.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from iamchars.errors import UserError
from iamchars.fileio import (
    FileError,
    UnsafePathError,
    atomic_open,
    inside,
    is_regular_file,
    read_bytes,
    read_gray,
    read_table,
    write_json,
    write_png,
    write_table,
)
from iamchars.iam.corpus import image_path
from iamchars.iam.parse import ID_PART
from iamchars.iam.rejects import REJECT_COLUMNS, Reject, reject_frame, reject_row
from iamchars.layout.formats import FORMATS, read_layout
from iamchars.layout.read import LayoutError, LayoutPage, bounding_box
from iamchars.parallel import ordered_map, resolve_workers
from iamchars.progress import progress_bar

WRITERS_FILE = "writers.csv"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
"""Suffixes tried for a page image the XML file does not name (one with the XML file's stem)."""
PAGE_COLUMNS = ["form_id", "xml", "format", "image", "writer_id"]
LINE_COLUMNS = ["line_id", "form_id", "order", "words_given", "xml", "xml_line"]
MAX_STEM = 40
"""Longest form-id stem kept whole; a longer one is cut and given a hash, so every made path stays short."""
ONE_WRITER_PER_PAGE = f"one writer per page (no {WRITERS_FILE} in the corpus folder), so the splits are by page"
HEADER = "#--- {name} (made by iamchars from {fmt} files) ---#\n"


class LayoutCorpusError(UserError, ValueError):
    pass


@dataclass
class LayoutCorpus:
    """An imported folder: the IAM root made of it and the way back to its files."""

    source: Path
    root: Path
    pages: pd.DataFrame
    """PAGE_COLUMNS: each form's XML file (relative to `source`), its format and image, its writer."""
    lines: pd.DataFrame
    """LINE_COLUMNS: each line's text-line position in its file, and whether the file boxed its words."""
    rejects: pd.DataFrame = field(default_factory=lambda: reject_frame([]))
    writers_from: str = ONE_WRITER_PER_PAGE
    counts: dict[str, int] = field(default_factory=dict)
    """xml_files (found), pages_lost (not read at all), words_lost (words of text lines not imported)."""
    warnings: list[str] = field(default_factory=list)

    def locate(self, rejects: pd.DataFrame) -> pd.DataFrame:
        """Rejects of imported lines, words or characters pointed at their XML file and text line, instead of
        the import's own files (which are deleted once the dataset is published)."""
        if rejects.empty:
            return rejects
        where = self.lines.set_index("line_id")[["xml", "xml_line"]]
        line_ids = rejects["item_id"].astype(str).str.split("-").str[:3].str.join("-")
        found = line_ids.isin(where.index).to_numpy()
        out = rejects.copy()
        out["line"] = out["line"].astype("Int64")
        out.loc[found, "file"] = where.loc[line_ids[found], "xml"].to_numpy()
        out.loc[found, "line"] = where.loc[line_ids[found], "xml_line"].astype("Int64").to_numpy()
        return out

    def describe(self) -> dict[str, object]:
        """What the card says of the input."""
        formats = sorted(set(self.pages["format"]))
        return {
            "format": "/".join(formats),
            "folder": str(self.source),
            "pages": len(self.pages),
            "lines": len(self.lines),
            "lines_with_word_boxes": int(self.lines["words_given"].sum()),
            "writers": self.writers_from,
            "pages_not_read": self.counts.get("pages_lost", 0),
        }


@dataclass(frozen=True)
class PageJob:
    source: Path
    xml: str
    form_id: str
    stage: Path


@dataclass
class PageResult:
    line_rows: list[str] = field(default_factory=list)
    word_rows: list[str] = field(default_factory=list)
    lines: list[tuple[str, str, int, bool, str, int]] = field(default_factory=list)
    image: str = ""
    format: str = ""
    rejects: list[Reject] = field(default_factory=list)
    words_lost: int = 0
    """Words of the file's text lines that were not imported (the line or the whole page was left out)."""
    read: bool = True
    """False when the file could not be read as a page at all."""


def form_ids(xml_files: list[str]) -> dict[str, str]:
    """XML path (relative) -> form id `pg-<the path's letters and digits>` (a long one cut to MAX_STEM with
    a hash of the path), made unique by a counter."""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for rel in xml_files:
        stem = re.sub(r"[^A-Za-z0-9]", "", str(Path(rel).with_suffix(""))) or "page"
        if len(stem) > MAX_STEM:
            stem = stem[: MAX_STEM - 8] + hashlib.sha256(rel.encode()).hexdigest()[:8]
        name, k = stem, 1
        while name.lower() in taken:
            k += 1
            name = f"{stem}n{k}"
        taken.add(name.lower())
        out[rel] = f"pg-{name}"
    return out


def find_image(source: Path, xml_rel: str, named: str) -> Path | None:
    """The page image: the name the file gives, beside the XML file or at the folder's top, else an image
    with the XML file's stem beside it. Only a regular file inside the folder is ever returned."""
    folder = Path(xml_rel).parent
    candidates = []
    if named and "://" not in named:
        candidates += [folder / named, Path(named), folder / Path(named).name]
    candidates += [Path(xml_rel).with_suffix(s) for s in IMAGE_SUFFIXES]
    for rel in candidates:
        if rel.is_absolute():
            continue
        try:
            path = inside(source, rel)
        except UnsafePathError:
            continue
        if is_regular_file(path):
            return path
    return None


def crop_line(page: np.ndarray, polygon: np.ndarray, region: np.ndarray | None) -> tuple[np.ndarray, tuple[int, int]]:
    """The line's image: the page cut to the polygon's bounding box (clipped to the page), every pixel
    outside the line polygon (and outside its region's polygon) painted the paper's grey (the median inside
    the polygon). Returns the image and its top-left corner on the page."""
    height, width = page.shape
    x, y, w, h = bounding_box(polygon)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((0, 0), np.uint8), (x0, y0)
    crop = page[y0:y1, x0:x1]
    mask = np.zeros(crop.shape, np.uint8)
    cv2.fillPoly(mask, [(polygon - [x0, y0]).astype(np.int32)], 1)
    if region is not None:
        within = np.zeros(crop.shape, np.uint8)
        cv2.fillPoly(within, [(region - [x0, y0]).astype(np.int32)], 1)
        mask &= within
    if not mask.any():
        return np.zeros((0, 0), np.uint8), (x0, y0)
    paper = int(np.median(crop[mask > 0]))
    return np.where(mask > 0, crop, paper).astype(np.uint8), (x0, y0)


def _reject(xml: str, line: int | None, item: str, reason: str) -> Reject:
    return reject_row("layout", xml, line, item, reason)


def convert_page(job: PageJob) -> PageResult:
    """One XML file's lines written as line images into the stage, with their lines.txt and words.txt rows."""
    out = PageResult()
    try:
        page = read_layout(read_bytes(inside(job.source, job.xml)), job.xml)
    except (LayoutError, OSError) as exc:
        line = _line_of(str(exc))
        out.rejects.append(_reject(job.xml, line, job.form_id, str(exc).split(": ", 1)[-1]))
        out.read = False
        return out
    out.format = page.format
    out.rejects += [_reject(job.xml, n, job.form_id, why) for n, why, _ in page.problems]
    out.words_lost = sum(n for _, _, n in page.problems)
    page_words = sum(len(line.words) for line in page.lines)
    image = find_image(job.source, job.xml, page.image)
    if image is None:
        out.rejects.append(_reject(job.xml, None, job.form_id, f"page image {page.image!r} not found in the folder"))
        out.words_lost += page_words
        return out
    out.image = image.relative_to(job.source).as_posix()
    try:
        gray = read_gray(image)
    except ValueError as exc:
        out.rejects.append(_reject(out.image, None, job.form_id, str(exc).split(": ", 1)[-1]))
        out.words_lost += page_words
        return out
    if page.size is not None and page.size != (gray.shape[1], gray.shape[0]) and min(page.size) > 0:
        out.rejects.append(
            _reject(
                job.xml,
                None,
                job.form_id,
                f"the file says the page is {page.size[0]}x{page.size[1]}, "
                f"its image is {gray.shape[1]}x{gray.shape[0]}",
            )
        )
        out.words_lost += page_words
        return out
    _lines_of(page, gray, job, out)
    return out


def _lines_of(page: LayoutPage, gray: np.ndarray, job: PageJob, out: PageResult) -> None:
    k = 0
    for line in page.lines:
        crop, (x0, y0) = crop_line(gray, line.polygon, line.region)
        if crop.size == 0:
            out.rejects.append(_reject(job.xml, line.xml_line, job.form_id, "text line outside its page image"))
            out.words_lost += len(line.words)
            continue
        line_id = f"{job.form_id}-{k:02d}"
        k += 1
        write_png(image_path(job.stage, "lines", line_id), crop)
        h, w = crop.shape
        out.line_rows.append(f"{line_id} ok 0 {len(line.words)} {x0} {y0} {w} {h} {'|'.join(line.words)}")
        given = line.word_boxes is not None
        out.lines.append((line_id, job.form_id, line.order, given, job.xml, line.xml_line))
        for j, (text, box) in enumerate(zip(line.words, line.word_boxes or [], strict=False)):
            bx, by, bw, bh = _clip(box, (x0, y0, w, h))
            out.word_rows.append(f"{line_id}-{j:02d} ok 0 {bx} {by} {bw} {bh} X {text}")


def _clip(box: tuple[int, int, int, int], within: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """A word box clipped to its line's box (the file's word outline may reach past its line's)."""
    x, y, w, h = box
    lx, ly, lw, lh = within
    x0, y0 = max(x, lx), max(y, ly)
    x1, y1 = min(x + w, lx + lw), min(y + h, ly + lh)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def _line_of(message: str) -> int | None:
    found = re.match(r"[^:]*:(\d+):", message)
    return int(found.group(1)) if found else None


def read_writers(source: Path, xml_files: list[str]) -> tuple[dict[str, str], str]:
    """Writer id per XML file from `writers.csv`, and how the writers were known (for the card)."""
    path = source / WRITERS_FILE
    if not is_regular_file(path):
        return {}, ONE_WRITER_PER_PAGE
    try:
        table = pd.read_csv(io.BytesIO(read_bytes(path)), dtype=str, keep_default_na=False)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LayoutCorpusError(f"{path}: cannot be read as a table ({str(exc).splitlines()[0][:120]})") from None
    if not {"page", "writer"} <= set(table.columns):
        raise LayoutCorpusError(f"{path}: needs the columns page,writer")
    writers: dict[str, str] = {}
    for number, (page, writer) in enumerate(zip(table["page"], table["writer"], strict=True), start=2):
        if not ID_PART.fullmatch(writer):
            raise LayoutCorpusError(f"{path}:{number}: writer {writer[:40]!r} is not letters and digits")
        writers[Path(page).as_posix()] = writer
    missing = [x for x in xml_files if x not in writers]
    how = f"{WRITERS_FILE}" + (f" ({len(missing):,} pages not in it are each their own writer)" if missing else "")
    return writers, how


def _walk(source: Path) -> Iterator[str]:
    """Every entry of the folder that is not a folder (files, links, FIFOs), relative and sorted; links to
    folders are not followed, and a dangling or looping link is listed like any other entry."""
    for folder, dirs, files in os.walk(source, followlinks=False):
        dirs.sort()
        base = Path(folder).relative_to(source)
        yield from ((base / name).as_posix() for name in sorted(files))
        yield from ((base / name).as_posix() for name in dirs if os.path.islink(Path(folder) / name))


def list_xml(source: Path, entries: list[str]) -> tuple[list[str], list[Reject]]:
    """The PAGE/ALTO candidates among the folder's `entries` (`*.xml` in any case, METS.xml aside) that can be
    read: regular files, or links to one inside the folder. Every other `*.xml` entry is a reject saying why."""
    found: list[str] = []
    rejects: list[Reject] = []
    for rel in entries:
        if not rel.lower().endswith(".xml") or Path(rel).name.lower() == "mets.xml":
            continue
        if not is_regular_file(source / rel):
            rejects.append(
                _reject(rel, None, "", "not a regular file (a folder, a FIFO, or a dangling or looping link)")
            )
            continue
        try:
            inside(source, rel)
        except UnsafePathError:
            rejects.append(_reject(rel, None, "", "a link to a file outside the folder; only files inside it are read"))
            continue
        found.append(rel)
    return found, rejects


def _source_digest(source: Path, xml_files: list[str], entries: list[str]) -> str:
    """The identity of every input (the XML and writers.csv bytes; every other entry's size and time, whatever
    its suffix): a changed input makes a new import."""
    digest = hashlib.sha256()
    for rel in [*xml_files, WRITERS_FILE]:
        path = source / rel
        if is_regular_file(path):
            digest.update(rel.encode() + b"\0" + read_bytes(path))
    for rel in entries:
        try:
            info = os.stat(source / rel)
            digest.update(f"{rel} {info.st_size} {info.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{rel} -\n".encode())
    return digest.hexdigest()[:16]


def import_corpus(
    source: Path, dest: Path, fmt: str | None = None, workers: int = 0, progress: bool = True
) -> LayoutCorpus:
    """Make (or reuse, when its inputs are unchanged) the IAM root of a PAGE/ALTO folder in `dest`. `fmt`
    keeps only files of that format ("page" or "alto"); None takes both."""
    source = Path(source)
    if not source.is_dir():
        raise LayoutCorpusError(f"--corpus {source}: no such folder")
    if fmt is not None and fmt not in FORMATS:
        raise LayoutCorpusError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    entries = list(_walk(source))
    xml_files, skipped = list_xml(source, entries)
    if not xml_files:
        first = f" ({skipped[0]['file']}: {skipped[0]['reason']})" if skipped else ""
        raise LayoutCorpusError(f"--corpus {source}: no readable *.xml file in the folder or below it{first}")
    writers, writers_from = read_writers(source, xml_files)
    digest = _source_digest(source, xml_files, entries) + (fmt or "")
    reused = _reuse(source, dest, digest, writers_from)
    if reused is not None:
        return reused
    stage = dest.parent / f"{dest.name}.stage"
    shutil.rmtree(stage, ignore_errors=True)
    ids = form_ids(xml_files)
    jobs = [PageJob(source, x, ids[x], stage) for x in xml_files]
    results: list[PageResult] = []
    with progress_bar(
        total=len(jobs), unit="page", desc=f"reading {fmt or 'PAGE/ALTO'} pages", disable=not progress
    ) as bar:
        for result in ordered_map(convert_page, jobs, resolve_workers(workers, len(jobs))):
            results.append(result)
            bar.update()
    pages, lines, line_rows, word_rows, form_rows = [], [], [], [], []
    rejects: list[Reject] = list(skipped)
    counts = {"xml_files": len(xml_files) + len(skipped), "pages_lost": len(skipped), "words_lost": 0}
    warnings: list[str] = []
    images: dict[str, str] = {}  # each page image (its real path) -> the XML file it was read for
    for job, result in zip(jobs, results, strict=True):
        if fmt is not None and result.format and result.format != fmt:
            continue  # a file of the other format: not asked for, and not a reject
        rejects += result.rejects
        counts["words_lost"] += result.words_lost
        if not result.read or (result.words_lost and not result.line_rows):
            counts["pages_lost"] += 1
        if not result.line_rows:
            continue
        image = os.path.realpath(source / result.image)
        if image in images:
            why = f"page image {result.image} is also the image of {images[image]}: read once, for that file"
            rejects.append(_reject(job.xml, None, job.form_id, why))
            warnings.append(f"{job.xml}: {why}")
            continue
        images[image] = job.xml
        writer = writers.get(job.xml, job.form_id.split("-", 1)[1])
        n_words = sum(int(r.split()[3]) for r in result.line_rows)
        form_rows.append(
            f"{job.form_id} {writer} 0 prnt {len(result.line_rows)} {len(result.line_rows)} {n_words} {n_words}"
        )
        pages.append((job.form_id, job.xml, result.format, result.image, writer))
        lines += result.lines
        line_rows += result.line_rows
        word_rows += result.word_rows
    if not pages:
        first = f"; first: {rejects[0]['file']}: {rejects[0]['reason']}" if rejects else ""
        raise LayoutCorpusError(f"--corpus {source}: no page with a readable text line{first}")
    name = fmt or "PAGE/ALTO"
    for file, rows in (("forms.txt", form_rows), ("lines.txt", line_rows), ("words.txt", word_rows)):
        if rows or file != "words.txt":
            with atomic_open(stage / "ascii" / file) as handle:
                handle.write(HEADER.format(name=file, fmt=name) + "\n".join(rows) + "\n")
    write_table(pd.DataFrame(pages, columns=PAGE_COLUMNS), stage / "layout_pages.csv")
    write_table(pd.DataFrame(lines, columns=LINE_COLUMNS), stage / "layout_lines.csv")
    write_table(reject_frame(rejects), stage / "layout_rejects.csv")
    write_json(stage / "import.json", {"digest": digest, "source": str(source), "counts": counts, "warnings": warnings})
    remove_import(dest)
    os.replace(stage, dest)
    return _load(source, dest, writers_from)


def remove_import(dest: Path) -> None:
    """Delete an import folder: renamed away first, so that a stop during the deletion never leaves a
    half-deleted import that looks finished."""
    trash = dest.parent / f"{dest.name}.removed"
    shutil.rmtree(trash, ignore_errors=True)
    if dest.exists():
        os.replace(dest, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _reuse(source: Path, dest: Path, digest: str, writers_from: str) -> LayoutCorpus | None:
    """The import already in `dest` when it was made from these very inputs and is whole; else None."""
    try:
        if json.loads(read_bytes(dest / "import.json")).get("digest") == digest:
            return _load(source, dest, writers_from)
    except (FileNotFoundError, FileError, UserError, ValueError, KeyError, TypeError):
        pass
    return None


def _load(source: Path, dest: Path, writers_from: str) -> LayoutCorpus:
    record = json.loads(read_bytes(dest / "import.json"))
    pages = read_table(dest / "layout_pages.csv", PAGE_COLUMNS, "import table").astype(str)
    lines = read_table(dest / "layout_lines.csv", LINE_COLUMNS, "import table")
    rejects = read_table(dest / "layout_rejects.csv", REJECT_COLUMNS, "import table")
    rejects["line"] = pd.to_numeric(rejects["line"], errors="coerce").astype("Int64")  # "" where a file has none
    lines = lines.astype({"order": int, "words_given": bool, "xml": str, "xml_line": int})
    counts = {str(k): int(v) for k, v in dict(record["counts"]).items()}
    return LayoutCorpus(source, dest, pages, lines, rejects, writers_from, counts, list(record["warnings"]))
