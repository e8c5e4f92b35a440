"""Convert an IAM root into a folder of page images with PAGE XML (2019) or ALTO (4) files.

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
from lxml import etree

from iamchars.fileio import inside, read_gray, write_png, write_table
from iamchars.iam.corpus import image_path, load_corpus

PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
MARGIN = 20


def _points(x: int, y: int, w: int, h: int) -> str:
    return f"{x},{y} {x + w - 1},{y} {x + w - 1},{y + h - 1} {x},{y + h - 1}"


def page_xml(form_id: str, size: tuple[int, int], lines: pd.DataFrame, words: pd.DataFrame | None) -> bytes:
    """A PAGE 2019 document of one form: one region holding every line, each line's words where given."""
    ns = f"{{{PAGE_NS}}}"
    root = etree.Element(ns + "PcGts", nsmap={None: PAGE_NS})
    meta = etree.SubElement(root, ns + "Metadata")
    etree.SubElement(meta, ns + "Creator").text = "iamchars tools/iam_to_layout.py"
    etree.SubElement(meta, ns + "Created").text = "2026-01-01T00:00:00"
    etree.SubElement(meta, ns + "LastChange").text = "2026-01-01T00:00:00"
    page = etree.SubElement(
        root, ns + "Page", imageFilename=f"{form_id}.png", imageWidth=str(size[0]), imageHeight=str(size[1])
    )
    region = etree.SubElement(page, ns + "TextRegion", id="r0")
    etree.SubElement(region, ns + "Coords", points=_points(0, 0, *size))
    for k, line in enumerate(lines.itertuples(index=False)):
        element = etree.SubElement(region, ns + "TextLine", id=f"l{k}")
        etree.SubElement(element, ns + "Coords", points=_points(line.x, line.y, line.w, line.h))
        if words is not None:
            for j, word in enumerate(words[words["line_id"] == line.line_id].itertuples(index=False)):
                w = etree.SubElement(element, ns + "Word", id=f"l{k}w{j}")
                etree.SubElement(w, ns + "Coords", points=_points(word.x, word.y, word.w, word.h))
                etree.SubElement(etree.SubElement(w, ns + "TextEquiv"), ns + "Unicode").text = word.text
        etree.SubElement(etree.SubElement(element, ns + "TextEquiv"), ns + "Unicode").text = line.text
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def alto_xml(form_id: str, size: tuple[int, int], lines: pd.DataFrame, words: pd.DataFrame | None) -> bytes:
    """An ALTO 4 document of one form: one block holding every line; each line's words as Strings, boxed
    where given, else one String per word without a box."""
    ns = f"{{{ALTO_NS}}}"
    root = etree.Element(ns + "alto", nsmap={None: ALTO_NS})
    description = etree.SubElement(root, ns + "Description")
    etree.SubElement(description, ns + "MeasurementUnit").text = "pixel"
    source = etree.SubElement(description, ns + "sourceImageInformation")
    etree.SubElement(source, ns + "fileName").text = f"{form_id}.png"
    layout = etree.SubElement(root, ns + "Layout")
    page = etree.SubElement(layout, ns + "Page", ID="p0", PHYSICAL_IMG_NR="1", WIDTH=str(size[0]), HEIGHT=str(size[1]))
    space = etree.SubElement(page, ns + "PrintSpace", HPOS="0", VPOS="0", WIDTH=str(size[0]), HEIGHT=str(size[1]))
    block = etree.SubElement(
        space, ns + "TextBlock", ID="b0", HPOS="0", VPOS="0", WIDTH=str(size[0]), HEIGHT=str(size[1])
    )
    for k, line in enumerate(lines.itertuples(index=False)):
        box = {"HPOS": str(line.x), "VPOS": str(line.y), "WIDTH": str(line.w), "HEIGHT": str(line.h)}
        element = etree.SubElement(block, ns + "TextLine", ID=f"l{k}", **box)
        tokens = (
            list(words[words["line_id"] == line.line_id].itertuples(index=False))
            if words is not None
            else line.transcription.split("|")
        )
        for j, word in enumerate(tokens):
            if j:
                etree.SubElement(element, ns + "SP")
            if isinstance(word, str):
                etree.SubElement(element, ns + "String", ID=f"l{k}w{j}", CONTENT=word)
            else:
                etree.SubElement(
                    element,
                    ns + "String",
                    ID=f"l{k}w{j}",
                    CONTENT=word.text,
                    HPOS=str(word.x),
                    VPOS=str(word.y),
                    WIDTH=str(word.w),
                    HEIGHT=str(word.h),
                )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


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
        xml = (page_xml if fmt == "page" else alto_xml)(form_id, size, form_lines, given)
        inside(out, f"{form_id}.xml").write_bytes(xml)
        rows.append((f"{form_id}.xml", str(writers[form_id])))
    write_table(pd.DataFrame(rows, columns=["page", "writer"]), out / "writers.csv")
    return len(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iam-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=("page", "alto"), default="page")
    parser.add_argument("--forms", nargs="*", help="form ids (default: every form)")
    parser.add_argument("--no-word-boxes", action="store_true", help="lines and their text only")
    args = parser.parse_args(argv)
    n = iam_to_layout(args.iam_root, args.out, args.format, args.forms, not args.no_word_boxes)
    print(f"{n} pages written to {args.out}")


if __name__ == "__main__":
    main()
