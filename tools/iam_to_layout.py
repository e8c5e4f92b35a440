"""Convert an IAM root into a folder of page images with layout files (PAGE XML 2019, ALTO 4: any format of
`iamchars.layout.formats`), written by iamchars.layout.

Each form becomes one page: its line images pasted at their places on white paper (`<form>.png`), and
`<form>.xml` with one text region, one text line per line (its box as Coords or HPOS/VPOS/WIDTH/HEIGHT, its
transcription) and, unless --no-word-boxes, one Word or String per word with its box. `writers.csv` keeps
IAM's writers. What `build-dataset --corpus` reads, for round trips and for trying the PAGE/ALTO path on
data with known boxes.

    python -m tools.iam_to_layout --iam-root ../shared/pen-dev --out /tmp/pen-page --format page
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from iamchars.fileio import inside, read_gray, write_png, write_table
from iamchars.iam.corpus import image_path, load_corpus
from iamchars.layout.formats import FORMATS
from iamchars.layout.write import DocumentLine

MARGIN = 20


def _document_lines(lines: pd.DataFrame, words: pd.DataFrame | None) -> list[DocumentLine]:
    """The form's lines as layout lines: each line's box and words, with their boxes where given."""
    out = []
    for line in lines.itertuples(index=False):
        tokens = [t for t in str(line.transcription).split("|") if t]
        if words is None:
            out.append(DocumentLine((line.x, line.y, line.w, line.h), tokens, None))
            continue
        mine = words[words["line_id"] == line.line_id]
        boxes = list(zip(mine["x"], mine["y"], mine["w"], mine["h"], strict=True))
        out.append(DocumentLine((line.x, line.y, line.w, line.h), mine["text"].tolist(), boxes))
    return out


def iam_to_layout(root: Path, out: Path, fmt: str, forms: list[str] | None = None, word_boxes: bool = True) -> int:
    """Write the forms of an IAM root (all, or those listed) as pages; returns the number written."""
    corpus = load_corpus(root)
    lines = corpus.lines[corpus.lines["valid"]].sort_values("line_id")
    words = corpus.words[corpus.words["valid"]].sort_values("word_id")
    chosen = forms if forms is not None else sorted(set(lines["form_id"]))
    writers = corpus.forms.set_index("form_id")["writer_id"]
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for form_id in chosen:
        form_lines = lines[lines["form_id"] == form_id]
        if form_lines.empty:
            continue
        size = (
            int((form_lines["x"] + form_lines["w"]).max()) + MARGIN,
            int((form_lines["y"] + form_lines["h"]).max()) + MARGIN,
        )
        page = np.full((size[1], size[0]), 255, np.uint8)
        for line in form_lines.itertuples(index=False):
            page[line.y : line.y + line.h, line.x : line.x + line.w] = read_gray(
                image_path(root, "lines", line.line_id)
            )
        write_png(inside(out, f"{form_id}.png"), page)
        given = words[words["form_id"] == form_id] if word_boxes else None
        xml = FORMATS[fmt].document(f"{form_id}.png", size, _document_lines(form_lines, given))
        inside(out, f"{form_id}.xml").write_bytes(xml)
        rows.append((f"{form_id}.xml", str(writers[form_id])))
    write_table(pd.DataFrame(rows, columns=["page", "writer"]), out / "writers.csv")
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iam-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=tuple(FORMATS), default="page")
    parser.add_argument("--forms", nargs="*", help="form ids (default: every form)")
    parser.add_argument("--no-word-boxes", action="store_true", help="lines and their text only")
    args = parser.parse_args(argv)
    n = iam_to_layout(args.iam_root, args.out, args.format, args.forms, not args.no_word_boxes)
    print(f"{n} pages written to {args.out}")


if __name__ == "__main__":
    main()
