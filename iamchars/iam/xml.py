"""IAM's per-form XML files: the authoritative writer id, and lines/words when the ascii files are absent."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pandas as pd

from iamchars.iam.parse import FORM_COLUMNS, LINE_COLUMNS, WORD_COLUMNS, parent_id
from iamchars.iam.rejects import Rejects


def _union(boxes: list[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return x0, y0, x1 - x0, y1 - y0


def parse_form_xml(text: str, source: str, rejects: Rejects) -> tuple[dict, list[dict], list[dict]] | None:
    """One form's XML -> (form row, line rows, word rows); None (and a reject) when it cannot be used."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        rejects.add("parse", source, exc.position[0], "", f"malformed XML: {exc}")
        return None
    form_id, writer_id = root.get("id"), root.get("writer-id")
    if root.tag != "form" or not form_id or not writer_id:
        rejects.add("parse", source, None, form_id or "", "root <form> lacks id or writer-id")
        return None
    line_rows: list[dict] = []
    word_rows: list[dict] = []
    for line in root.iter("line"):
        line_id = line.get("id", "")
        flag = line.get("segmentation", "ok")
        flag = "err" if flag.startswith("er") else flag
        line_boxes = []
        tokens = []
        for word in line.iter("word"):
            cmps = [
                (int(c.get("x", 0)), int(c.get("y", 0)), int(c.get("width", 0)), int(c.get("height", 0)))
                for c in word.iter("cmp")
            ]
            tokens.append(word.get("text", ""))
            if not cmps:
                rejects.add("parse", source, None, word.get("id", ""), "word has no <cmp> box")
                continue
            box = _union(cmps)
            line_boxes.append(box)
            word_rows.append(
                {
                    "word_id": word.get("id", ""),
                    "line_id": line_id,
                    "form_id": form_id,
                    "flag": flag,
                    "graylevel": int(line.get("threshold", 0)),
                    "x": box[0],
                    "y": box[1],
                    "w": box[2],
                    "h": box[3],
                    "tag": word.get("tag", ""),
                    "text": word.get("text", ""),
                }
            )
        if not line_boxes:
            rejects.add("parse", source, None, line_id, "line has no word boxes")
            continue
        box = _union(line_boxes)
        line_rows.append(
            {
                "line_id": line_id,
                "form_id": parent_id(line_id),
                "flag": flag,
                "graylevel": int(line.get("threshold", 0)),
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


def parse_xml_forms(documents: list[tuple[str, str]], rejects: Rejects) -> tuple[pd.DataFrame, ...]:
    """(source, text) pairs -> forms, lines, words tables."""
    forms, lines, words = [], [], []
    for source, text in documents:
        parsed = parse_form_xml(text, source, rejects)
        if parsed is not None:
            forms.append(parsed[0])
            lines.extend(parsed[1])
            words.extend(parsed[2])
    return (
        pd.DataFrame(forms, columns=list(FORM_COLUMNS)).astype(FORM_COLUMNS),
        pd.DataFrame(lines, columns=list(LINE_COLUMNS)).astype(LINE_COLUMNS),
        pd.DataFrame(words, columns=list(WORD_COLUMNS)).astype(WORD_COLUMNS),
    )
