"""Parsers for IAM's ascii files, following what the real files show rather than what their headers say.

Facts (see the real sample): `words.txt` rows carry no component count although the header documents one
(both variants are accepted); transcriptions may contain spaces; the flag is `ok` or `err`; boxes are in
form-page pixels. Each parser takes the file's text lines and returns a typed table, reporting malformed
rows to `Rejects` with their file and line number.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import pandas as pd

from iamchars.iam.rejects import Rejects

FORM_COLUMNS = {
    "form_id": "string",
    "writer_id": "string",
    "n_sentences": "int32",
    "segmentation": "string",
    "n_lines": "int32",
    "n_lines_ok": "int32",
    "n_words": "int32",
    "n_words_ok": "int32",
}
LINE_COLUMNS = {
    "line_id": "string",
    "form_id": "string",
    "flag": "string",
    "graylevel": "int32",
    "components": "int32",
    "x": "int32",
    "y": "int32",
    "w": "int32",
    "h": "int32",
    "transcription": "string",
    "text": "string",
}
WORD_COLUMNS = {
    "word_id": "string",
    "line_id": "string",
    "form_id": "string",
    "flag": "string",
    "graylevel": "int32",
    "x": "int32",
    "y": "int32",
    "w": "int32",
    "h": "int32",
    "tag": "string",
    "text": "string",
}
FLAGS = ("ok", "err")
ID_PART = re.compile(r"[A-Za-z0-9]+")
ID_PARTS = {"form": 2, "line": 3, "word": 4}
"""IAM's ids: `a01-000u` (form), `a01-000u-00` (line), `a01-000u-00-00` (word): letters and digits in parts
joined by `-`. The parts become folder and file names (`lines/a01/a01-000u/a01-000u-00.png`), so nothing
else is accepted."""
MAX_COORDINATE = 1_000_000
"""Largest box coordinate or count accepted (a page 1,000,000 pixels wide): anything past it is a broken row,
never a box (a 32-bit overflow would otherwise wrap it into a plausible one)."""
MIN_BOX = -1
"""IAM writes -1 for an unknown box; anything below is a broken row."""


def decode_lines(data: bytes, source: str, rejects: Rejects) -> list[str]:
    """A text file's bytes -> its lines, each decoded as strict UTF-8 (a leading byte-order mark is dropped)
    and put in Unicode NFC (an "e" and a combining acute become one "é", the character a sample is of).

    A line that is not valid UTF-8 is rejected with its line number and byte offset and becomes an empty
    line (so later line numbers stay right): replacing the bytes with U+FFFD would invent characters."""
    body = data.removeprefix(b"\xef\xbb\xbf")
    out: list[str] = []
    offset = len(data) - len(body)
    for number, raw in enumerate(body.split(b"\n"), start=1):
        try:
            out.append(unicodedata.normalize("NFC", raw.decode("utf-8")))
        except UnicodeDecodeError as exc:
            item = raw.split(maxsplit=1)[0].decode("ascii", "replace") if raw.strip() else ""
            rejects.add("parse", source, number, item, f"not UTF-8 (byte {offset + exc.start} of the file)")
            out.append("")
        offset += len(raw) + 1
    if out and out[-1] == "":
        out.pop()
    return out


def _data_rows(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if line.strip() and not line.startswith("#"):
            yield number, line


def _ints(fields: list[str]) -> list[int] | None:
    try:
        return [int(f) for f in fields]
    except ValueError:
        return None


def id_problem(item: str, level: str) -> str | None:
    """Why `item` is not an IAM id of `level` ("form", "line" or "word"); None when it is one."""
    parts = item.split("-")
    if len(parts) == ID_PARTS[level] and all(ID_PART.fullmatch(p) for p in parts):
        return None
    shape = {"form": "a01-000u", "line": "a01-000u-00", "word": "a01-000u-00-00"}[level]
    return (
        f"{level} id {item[:80]!r} is not an IAM id (letters and digits in {ID_PARTS[level]} parts joined by '-', "
        f"like {shape})"
    )


def number_problem(numbers: list[int], low: int = MIN_BOX) -> str | None:
    """Why a row's numbers cannot be a box or a count (out of `low`..MAX_COORDINATE); None when they can."""
    bad = [n for n in numbers if not low <= n <= MAX_COORDINATE]
    return f"number {bad[0]} out of range {low}..{MAX_COORDINATE:,}" if bad else None


def _table(rows: list[dict[str, object]], columns: dict[str, str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    return df.astype(columns)


def parent_id(item_id: str) -> str:
    """`a01-000u-00-01` -> `a01-000u-00`; `a01-000u-00` -> `a01-000u`."""
    return item_id.rsplit("-", 1)[0]


def parse_forms(lines: Iterable[str], source: str, rejects: Rejects) -> pd.DataFrame:
    rows = []
    for number, line in _data_rows(lines):
        fields = line.split()
        counts = _ints([fields[2], *fields[4:8]]) if len(fields) == 8 else None
        if counts is None:
            rejects.add(
                "parse",
                source,
                number,
                fields[0] if fields else "",
                "expected 8 fields: form writer sentences segmentation lines lines_ok words words_ok",
            )
            continue
        problem = id_problem(fields[0], "form") or number_problem(counts, 0)
        if problem:
            rejects.add("parse", source, number, fields[0][:80], problem)
            continue
        rows.append(
            {
                "form_id": fields[0],
                "writer_id": fields[1],
                "n_sentences": counts[0],
                "segmentation": fields[3],
                "n_lines": counts[1],
                "n_lines_ok": counts[2],
                "n_words": counts[3],
                "n_words_ok": counts[4],
            }
        )
    return _table(rows, FORM_COLUMNS)


def parse_lines(lines: Iterable[str], source: str, rejects: Rejects) -> pd.DataFrame:
    rows = []
    for number, line in _data_rows(lines):
        fields = line.split(None, 8)  # spaces or tabs; the text after the box may itself hold spaces
        item = fields[0]
        if len(fields) < 9:
            rejects.add("parse", source, number, item, "expected 9 fields: id flag gray components x y w h text")
            continue
        numbers = _ints(fields[2:8])
        if numbers is None:
            rejects.add("parse", source, number, item, "graylevel, components and box must be integers")
            continue
        problem = id_problem(item, "line") or number_problem(numbers)
        if problem:
            rejects.add("parse", source, number, item[:80], problem)
            continue
        if fields[1] not in FLAGS:
            rejects.add("parse", source, number, item, f"flag {fields[1]!r} is neither 'ok' nor 'err'")
            continue
        transcription = fields[8]
        rows.append(
            {
                "line_id": item,
                "form_id": parent_id(item),
                "flag": fields[1],
                "graylevel": numbers[0],
                "components": numbers[1],
                "x": numbers[2],
                "y": numbers[3],
                "w": numbers[4],
                "h": numbers[5],
                "transcription": transcription,
                "text": transcription.replace("|", " "),
            }
        )
    return _table(rows, LINE_COLUMNS)


def parse_words(lines: Iterable[str], source: str, rejects: Rejects) -> pd.DataFrame:
    """Rows are `id flag gray x y w h tag text...`; the header's variant with a component count after the
    graylevel is accepted too (told apart by field 8 being an integer: a tag never is)."""
    rows = []
    for number, line in _data_rows(lines):
        fields = line.split()  # spaces or tabs
        item = fields[0]
        if len(fields) >= 10 and _ints(fields[2:8]) is not None:
            fields = fields[:3] + fields[4:]  # drop the component count
        if len(fields) < 9:
            rejects.add("parse", source, number, item, "expected at least 9 fields: id flag gray x y w h tag text")
            continue
        numbers = _ints(fields[2:7])
        if numbers is None:
            rejects.add("parse", source, number, item, "graylevel and box must be integers")
            continue
        problem = id_problem(item, "word") or number_problem(numbers)
        if problem:
            rejects.add("parse", source, number, item[:80], problem)
            continue
        if fields[1] not in FLAGS:
            rejects.add("parse", source, number, item, f"flag {fields[1]!r} is neither 'ok' nor 'err'")
            continue
        text = " ".join(fields[8:])
        if not text:
            rejects.add("parse", source, number, item, "empty transcription")
            continue
        line_id = parent_id(item)
        rows.append(
            {
                "word_id": item,
                "line_id": line_id,
                "form_id": parent_id(line_id),
                "flag": fields[1],
                "graylevel": numbers[0],
                "x": numbers[1],
                "y": numbers[2],
                "w": numbers[3],
                "h": numbers[4],
                "tag": fields[7],
                "text": text,
            }
        )
    return _table(rows, WORD_COLUMNS)


def drop_duplicates(df: pd.DataFrame, key: str, source: str, rejects: Rejects) -> pd.DataFrame:
    """Keep the first row of each id; later ones go to the rejects report."""
    dup = df[key].duplicated(keep="first")
    for item in df.loc[dup, key]:
        rejects.add("validate", source, None, str(item), f"duplicate {key}")
    return df.loc[~dup].reset_index(drop=True)
