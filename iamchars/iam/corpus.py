"""Loading an IAM root (real or synthetic) into tables: the file-reading edge of `iamchars.iam`."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from iamchars.config import ParseConfig, SplitConfig
from iamchars.errors import UserError
from iamchars.fileio import UnsafePathError, png_size, read_bytes
from iamchars.iam.parse import decode_lines, drop_duplicates, id_problem, parse_forms, parse_lines, parse_words
from iamchars.iam.rejects import Rejects
from iamchars.iam.splits import TASK_FILES, assign_form_splits
from iamchars.iam.xml import parse_xml_forms

SPLIT_DIRS = ("split", "task")
MIN_PX_PER_CHAR = 2
"""A word box narrower than this many pixels per character of its transcription cannot hold it (a box cut
short, or a transcription that is not this word's): its characters would be slivers."""
NARROW_BOX = f"word box narrower than {MIN_PX_PER_CHAR} px per character of its transcription"
NARROW_LINE = f"line narrower than {MIN_PX_PER_CHAR} px per character of its transcription"


def mark_problem(text: str) -> str | None:
    """Why a transcription cannot be cut into characters one code point each: a combining mark that no
    precomposed character absorbs (the text is in NFC already); None when it can."""
    marks = sorted({c for c in text if unicodedata.combining(c)})
    if not marks:
        return None
    return f"transcription holds the combining mark U+{ord(marks[0]):04X}, which makes no character of its own"


def word_problems(words: pd.DataFrame) -> pd.Series:
    """Why each word row (given by the input or found in a line's ink: every word passes here) cannot be
    segmented, "" where it can: a box narrower than MIN_PX_PER_CHAR per character, or a combining mark."""
    texts = words["text"].astype(str)
    narrow = words["w"].to_numpy() < MIN_PX_PER_CHAR * texts.str.len().to_numpy()
    marks = texts.map(lambda t: mark_problem(t) or "")
    return pd.Series(np.where(narrow, NARROW_BOX, marks.to_numpy()), index=words.index, dtype=object)


class IAMLayoutError(UserError, FileNotFoundError):
    """The folder does not look like an IAM root."""


@dataclass
class IAMCorpus:
    root: Path
    forms: pd.DataFrame
    lines: pd.DataFrame
    words: pd.DataFrame
    rejects: pd.DataFrame
    split_stats: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What is missing from the root as a whole (a file or folder), said once instead of once per row."""
    input_word_rows: int = 0
    """Word rows in the input (parsed or rejected), the base of the rejected share."""


def image_path(root: Path, kind: str, item_id: str) -> Path:
    """IAM's image layout: `lines/a01/a01-000u/a01-000u-00.png`, `words/a01/a01-000u/a01-000u-00-00.png`.

    The parsers admit only valid ids; one that is not (a bug upstream) is refused here, never made a path."""
    problem = id_problem(item_id, "line" if kind == "lines" else "word")
    if problem:
        raise UnsafePathError(f"{kind}: {problem}; not made into a path")
    parts = item_id.split("-")
    return root / kind / parts[0] / f"{parts[0]}-{parts[1]}" / f"{item_id}.png"


def _parse_ascii(ascii_dir: Path, name: str, parser: Callable[..., pd.DataFrame], rejects: Rejects) -> pd.DataFrame:
    source = f"ascii/{name}"
    return parser(decode_lines(read_bytes(ascii_dir / name), source, rejects), source, rejects)


def find_task_files(root: Path) -> dict[str, list[str]]:
    """Line ids per split from IAM's task files, wherever the task zip left them under split/ or task/."""
    task: dict[str, list[str]] = {}
    for folder in (root / d for d in SPLIT_DIRS):
        if not folder.is_dir():
            continue
        for name, split in TASK_FILES.items():
            for path in sorted(folder.rglob(name)):
                text = read_bytes(path).decode("utf-8-sig", errors="replace").splitlines()
                ids = [ln.strip() for ln in text if ln.strip() and not ln.startswith("#")]
                task.setdefault(split, []).extend(ids)
    return task


def validate(
    root: Path, lines: pd.DataFrame, words: pd.DataFrame, rejects: Rejects, check_images: bool
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Add `valid` columns: image present and sized as its box, word box inside its line box.

    Rows are kept (so counts stay those of the files); consumers filter on `valid`."""
    lines = lines.assign(valid=(lines["w"] > 0) & (lines["h"] > 0))
    for item in lines.loc[~lines["valid"], "line_id"]:
        rejects.add("validate", "ascii/lines.txt", None, str(item), "line box has no area")
    words = words.assign(valid=(words["w"] > 0) & (words["h"] > 0) & (words["x"] >= 0) & (words["y"] >= 0))
    for item in words.loc[~words["valid"], "word_id"]:
        rejects.add("validate", "ascii/words.txt", None, str(item), "word box missing or negative")
    problems = word_problems(words).where(words["valid"], "")
    for item, why in zip(words.loc[problems != "", "word_id"], problems[problems != ""], strict=True):
        rejects.add("validate", "ascii/words.txt", None, str(item), str(why))
    words["valid"] = words["valid"] & (problems == "")
    boxes = lines.set_index("line_id")[["x", "y", "w", "h"]].add_suffix("_line")
    joined = words.join(boxes, on="line_id")
    has_line = joined["x_line"].notna()
    inside = (
        (
            (joined["x"] >= joined["x_line"])
            & (joined["y"] >= joined["y_line"])
            & (joined["x"] + joined["w"] <= joined["x_line"] + joined["w_line"])
            & (joined["y"] + joined["h"] <= joined["y_line"] + joined["h_line"])
        )
        .fillna(False)
        .astype(bool)
    )
    for item in words.loc[~has_line.to_numpy(), "word_id"]:
        rejects.add("validate", "ascii/words.txt", None, str(item), "word's line is not in lines.txt")
    bad_box = words["valid"].to_numpy() & has_line.to_numpy() & ~inside.to_numpy()
    for item in words.loc[bad_box, "word_id"]:
        rejects.add("validate", "ascii/words.txt", None, str(item), "word box outside its line box")
    words["valid"] = words["valid"].to_numpy() & has_line.to_numpy() & ~bad_box
    lines["image_ok"] = _check_images(root, "lines", lines, "line_id", rejects) if check_images else True
    lines["valid"] = lines["valid"] & lines["image_ok"]
    line_ok = lines.set_index("line_id")["valid"]
    words["line_image_ok"] = words["line_id"].map(line_ok).fillna(False).astype(bool)
    words["image_ok"] = _check_images(root, "words", words, "word_id", rejects) if check_images else True
    words["valid"] = words["valid"] & (words["line_image_ok"] | words["image_ok"])
    return lines, words


def _check_images(root: Path, kind: str, table: pd.DataFrame, key: str, rejects: Rejects) -> pd.Series:
    """Which images are complete PNGs of their box's size. A kind whose folder is absent altogether (only
    lines.tgz or only words.tgz downloaded) is all False without a reject per item: `_missing_image_folders`
    says it once."""
    if not (root / kind).is_dir():
        return pd.Series(False, index=table.index, dtype=bool)
    ok = []
    for item, w, h in zip(table[key], table["w"], table["h"], strict=True):
        path = image_path(root, kind, str(item))
        size = png_size(path)
        rel = str(path.relative_to(root))
        if isinstance(size, str):
            rejects.add("validate", rel, None, str(item), size)
            ok.append(False)
        elif size != (w, h):
            rejects.add("validate", rel, None, str(item), f"image is {size[0]}x{size[1]}, box says {w}x{h}")
            ok.append(False)
        else:
            ok.append(True)
    return pd.Series(ok, index=table.index, dtype=bool)


def load_corpus(root: Path, parse: ParseConfig | None = None, split: SplitConfig | None = None) -> IAMCorpus:
    """Parse ascii (and XML where present), validate, and add writer ids and splits to every table."""
    parse = parse or ParseConfig()
    split = split or SplitConfig()
    root = Path(root)
    rejects = Rejects(strict=parse.strict)
    ascii_dir = root / "ascii"
    xml_files = sorted((root / "xml").glob("*.xml")) if (root / "xml").is_dir() else []
    if not (ascii_dir / "lines.txt").is_file() and not xml_files:
        raise IAMLayoutError(f"{root}: not an IAM root (neither ascii/lines.txt nor xml/*.xml found)")
    xml_forms, xml_lines, xml_words = parse_xml_forms(
        [(str(p.relative_to(root)), read_bytes(p)) for p in xml_files],
        rejects,
    )
    warnings: list[str] = []
    if (ascii_dir / "forms.txt").is_file():
        forms = _parse_ascii(ascii_dir, "forms.txt", parse_forms, rejects)
        xml_writers = dict(zip(xml_forms["form_id"], xml_forms["writer_id"], strict=True))
        forms["writer_id"] = [xml_writers.get(f, w) for f, w in zip(forms["form_id"], forms["writer_id"], strict=True)]
    elif xml_files:
        forms = xml_forms
        warnings.append("ascii/forms.txt is missing: writer ids come from xml/*.xml")
    else:
        raise IAMLayoutError(
            f"{ascii_dir / 'forms.txt'}: missing, and no xml/*.xml either; writer ids (and so writer-disjoint "
            "splits) come only from there: copy forms.txt from IAM's ascii.tgz into ascii/, or add xml.tgz"
        )
    lines = (
        _parse_ascii(ascii_dir, "lines.txt", parse_lines, rejects) if (ascii_dir / "lines.txt").is_file() else xml_lines
    )
    if parse.ignore_word_boxes:
        words = xml_words.iloc[:0]
    elif (ascii_dir / "words.txt").is_file():
        words = _parse_ascii(ascii_dir, "words.txt", parse_words, rejects)
    else:
        words = xml_words
        if not xml_files:
            warnings.append("ascii/words.txt is missing: each line's words are found in its ink")
    if len(words) == 0 and (ascii_dir / "words.txt").is_file() and not parse.ignore_word_boxes:
        warnings.append(
            "ascii/words.txt holds no usable word row (see the rejects; without the file, or with "
            "--ignore-word-boxes, each line's words are found in its ink)"
        )
    input_word_rows = len(words) + sum(r["file"] == "ascii/words.txt" and r["stage"] == "parse" for r in rejects.rows)
    forms = drop_duplicates(forms, "form_id", "ascii/forms.txt", rejects)
    lines = drop_duplicates(lines, "line_id", "ascii/lines.txt", rejects)
    words = drop_duplicates(words, "word_id", "ascii/words.txt", rejects)
    known_forms = set(forms["form_id"])
    for table, key in ((lines, "line_id"), (words, "word_id")):
        for item in table.loc[~table["form_id"].isin(known_forms), key]:
            rejects.add("validate", "ascii/forms.txt", None, str(item), "form has no writer id (not in forms)")
    lines = lines[lines["form_id"].isin(known_forms)].reset_index(drop=True)
    words = words[words["form_id"].isin(known_forms)].reset_index(drop=True)
    lines, words = validate(root, lines, words, rejects, parse.check_images)
    words = words.assign(word_box=pd.Series("given", index=words.index, dtype="string"))
    if parse.check_images:
        warnings += [f"{kind}/ folder is missing: {why}" for kind, why in _missing_image_folders(root, lines, words)]
    form_split, stats = assign_form_splits(forms, find_task_files(root), split.ratios, split.seed, split.unlisted)
    forms = forms.assign(split=forms["form_id"].map(form_split).astype("string"))
    writer = forms.set_index("form_id")["writer_id"]

    def with_writer_and_split(df: pd.DataFrame) -> pd.DataFrame:
        return df.assign(
            writer_id=df["form_id"].map(writer).astype("string"),
            split=df["form_id"].map(form_split).astype("string"),
        )

    lines, words = with_writer_and_split(lines), with_writer_and_split(words)
    return IAMCorpus(root, forms, lines, words, rejects.frame(), stats, warnings, input_word_rows)


def _missing_image_folders(root: Path, lines: pd.DataFrame, words: pd.DataFrame) -> list[tuple[str, str]]:
    out = []
    if len(lines) and not (root / "lines").is_dir():
        out.append(
            ("lines", "each line is composed from its words' own images (lines.tgz gives the segmentation whole lines)")
        )
    if len(words) and not (root / "words").is_dir() and not (root / "lines").is_dir():
        out.append(("words", "no images at all: extract lines.tgz or words.tgz here"))
    return out
