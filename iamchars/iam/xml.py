"""IAM's per-form XML files: the authoritative writer id, and lines/words when the ascii files are absent.

Parsed with lxml (no entity expansion, no network): a malformed file, a bad id or a box that is not a
number is a reject with its file and line, never a traceback or a path."""

from __future__ import annotations

import pandas as pd
from lxml import etree

from iamchars.iam.parse import FORM_COLUMNS, LINE_COLUMNS, WORD_COLUMNS, id_problem, number_problem, parent_id
from iamchars.iam.rejects import Rejects

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def _int_attributes(element: etree._Element, names: tuple[str, ...]) -> list[int] | str:
    """The named integer attributes (0 when absent), or why they cannot be read."""
    try:
        values = [int(element.get(name, "0")) for name in names]
    except ValueError:
        return f"<{element.tag}> {', '.join(names)} must be integers"
    return number_problem(values) or values


def parse_form_xml(data: bytes, source: str, rejects: Rejects) -> tuple[dict, list[dict], list[dict]] | None:
    """One form's XML -> (form row, line rows, word rows); None (and a reject) when it cannot be used."""
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError as exc:
        rejects.add("parse", source, exc.lineno, "", f"malformed XML: {exc.msg}")
        return None
    form_id, writer_id = root.get("id"), root.get("writer-id")
    if root.tag != "form" or not form_id or not writer_id:
        rejects.add("parse", source, root.sourceline, form_id or "", "root <form> lacks id or writer-id")
        return None
    problem = id_problem(form_id, "form")
    if problem:
        rejects.add("parse", source, root.sourceline, form_id[:80], problem)
        return None
    line_rows: list[dict] = []
    word_rows: list[dict] = []
    for line in root.iter("line"):
        line_id = line.get("id", "")
        problem = id_problem(line_id, "line") or (
            None if parent_id(line_id) == form_id else f"line id {line_id!r} is not of form {form_id}"
        )
        threshold = _int_attributes(line, ("threshold",))
        if problem or isinstance(threshold, str):
            rejects.add("parse", source, line.sourceline, line_id[:80], problem or str(threshold))
            continue
        flag = line.get("segmentation", "ok")
        flag = "err" if flag.startswith("er") else flag
        line_boxes = []
        tokens = []
        for word in line.iter("word"):
            word_id = word.get("id", "")
            tokens.append(word.get("text", ""))
            problem = id_problem(word_id, "word") or (
                None if parent_id(word_id) == line_id else f"word id {word_id!r} is not of line {line_id}"
            )
            cmps = [_int_attributes(c, ("x", "y", "width", "height")) for c in word.iter("cmp")]
            problem = problem or next((c for c in cmps if isinstance(c, str)), None)
            if not problem and not cmps:
                problem = "word has no <cmp> box"
            if problem:
                rejects.add("parse", source, word.sourceline, word_id[:80], problem)
                continue
            box = _union([(c[0], c[1], c[2], c[3]) for c in cmps if not isinstance(c, str)])
            line_boxes.append(box)
            word_rows.append(
                {
                    "word_id": word_id,
                    "line_id": line_id,
                    "form_id": form_id,
                    "flag": flag,
                    "graylevel": threshold[0],
                    "x": box[0],
                    "y": box[1],
                    "w": box[2],
                    "h": box[3],
                    "tag": word.get("tag", ""),
                    "text": word.get("text", ""),
                }
            )
        if not line_boxes:
            rejects.add("parse", source, line.sourceline, line_id, "line has no word boxes")
            continue
        box = _union(line_boxes)
        line_rows.append(
            {
                "line_id": line_id,
                "form_id": form_id,
                "flag": flag,
                "graylevel": threshold[0],
                "components": sum(1 for _ in line.iter("cmp")),
                "x": box[0],
                "y": box[1],
                "w": box[2],
                "h": box[3],
                "transcription": "|".join(tokens),
                "text": line.get("text", " ".join(tokens)),
            }
        )
    form_row = {
        "form_id": form_id,
        "writer_id": writer_id,
        "n_sentences": 0,
        "segmentation": "",
        "n_lines": len(line_rows),
        "n_lines_ok": sum(r["flag"] == "ok" for r in line_rows),
        "n_words": len(word_rows),
        "n_words_ok": sum(r["flag"] == "ok" for r in word_rows),
    }
    return form_row, line_rows, word_rows


def parse_xml_forms(documents: list[tuple[str, bytes]], rejects: Rejects) -> tuple[pd.DataFrame, ...]:
    """(source, file bytes) pairs -> forms, lines, words tables."""
    forms, lines, words = [], [], []
    for source, data in documents:
        parsed = parse_form_xml(data, source, rejects)
        if parsed is not None:
            forms.append(parsed[0])
            lines.extend(parsed[1])
            words.extend(parsed[2])
    return (
        pd.DataFrame(forms, columns=list(FORM_COLUMNS)).astype(FORM_COLUMNS),
        pd.DataFrame(lines, columns=list(LINE_COLUMNS)).astype(LINE_COLUMNS),
        pd.DataFrame(words, columns=list(WORD_COLUMNS)).astype(WORD_COLUMNS),
    )
