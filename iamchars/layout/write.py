"""Character boxes written back into the PAGE or ALTO files they came from: a Glyph per character, with its
box and confidence, inside the element that holds its word. The parsed tree is edited in place and written
whole, prolog, DOCTYPE, comments and entity references included, so nothing of the user's file is lost:

- a word the file holds in its own word element (boxed or not) gets its Glyphs there, after the children the
  schema puts first; that element is otherwise left as it was;
- a line with no word elements at all (a PAGE line with only its TextEquiv) gets one new word element per
  word, with the found box, placed where the schema puts them;
- a word element that already has Glyphs keeps them, and gets none of ours; a line whose word elements do
  not spell its transcription is left as it was. Both are counted in the returned `WriteReport`.

Also new documents of pages (`page_document`, `alto_document`), for turning an IAM root into PAGE or ALTO.
Each format's part is a `GlyphScheme`; `layout.formats` names them. Pure: bytes and tables in, bytes out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from lxml import etree

from iamchars.layout.read import WordScheme, document_entities, line_words

Box = tuple[int, int, int, int]
PAGE_NS = "http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"
ALTO_NS = "http://www.loc.gov/standards/alto/ns-v4#"
PAGE_WORD_AFTER = ("AlternativeImage", "Coords", "Baseline", "Word")
"""A PAGE TextLine's children that come before its Words (TextLineType's sequence)."""


@dataclass(frozen=True)
class GlyphBox:
    char: str
    box: Box
    confidence: float
    """The probability that the box is right: PAGE's TextEquiv@conf, ALTO's GC."""


@dataclass(frozen=True)
class WordGlyphs:
    index: int
    """The word's position in its line's transcription."""
    text: str
    box: Box
    given: bool
    """The file boxed this word."""
    glyphs: list[GlyphBox]


@dataclass
class WriteReport:
    """What was left as the user had it, rather than given glyphs."""

    words_with_own_glyphs: int = 0
    """Word elements that already held Glyphs: theirs are kept, none are added."""
    lines_not_matched: list[int] = field(default_factory=list)
    """XML lines of text lines whose word elements do not spell the transcription that was segmented."""


def glyphs_by_line(manifest: pd.DataFrame, line_order: dict[str, int]) -> dict[int, list[WordGlyphs]]:
    """The manifest's characters grouped by the text line they belong to (its position in the file, from
    `line_order`: line id -> position) and by word, in reading order."""
    out: dict[int, list[WordGlyphs]] = {}
    rows = manifest[manifest["line_id"].isin(set(line_order))].sort_values(["word_id", "char_index"], kind="stable")
    for word_id, chars in rows.groupby("word_id", sort=True):
        first = chars.iloc[0]
        glyphs = [
            GlyphBox(str(c.char), (int(c.x), int(c.y), int(c.w), int(c.h)), float(c.confidence))
            for c in chars.itertuples(index=False)
        ]
        word = WordGlyphs(
            int(str(word_id).rsplit("-", 1)[1]),
            str(first.word_text),
            (int(first.word_x), int(first.word_y), int(first.word_w), int(first.word_h)),
            first.word_box == "given",
            glyphs,
        )
        out.setdefault(line_order[str(first.line_id)], []).append(word)
    return out


def corners(box: Box) -> str:
    """A box as PAGE `points`: its four corners, clockwise from the top left."""
    x, y, w, h = box
    x1, y1 = x + max(w, 1) - 1, y + max(h, 1) - 1
    return f"{x},{y} {x1},{y} {x1},{y1} {x},{y1}"


def _element(parent: etree._Element, name: str, **attrs: str) -> etree._Element:
    """A new element in the parent's namespace (not yet placed)."""
    return etree.Element(_same_ns(parent, name), attrs)


def _same_ns(element: etree._Element, name: str) -> str:
    namespace = etree.QName(element).namespace
    return f"{{{namespace}}}{name}" if namespace else name


def _after(parent: etree._Element, names: tuple[str, ...]) -> int:
    """The index just past the parent's last child named one of `names` (the place schema order allows)."""
    index = 0
    for i, child in enumerate(parent):
        if isinstance(child.tag, str) and etree.QName(child).localname in names:
            index = i + 1
    return index


class Ids:
    """IDs not yet used in the document: a new element's ID never repeats one of the user's."""

    def __init__(self, root: etree._Element, attr: str) -> None:
        self.attr = attr
        self.taken = {str(e.get(attr)) for e in root.iter() if isinstance(e.tag, str) and e.get(attr)}

    def new(self, base: str) -> str:
        ident, k = base, 1
        while ident in self.taken:
            k += 1
            ident = f"{base}_{k}"
        self.taken.add(ident)
        return ident


def _page_glyph(word: etree._Element, ident: str, glyph: GlyphBox) -> etree._Element:
    element = _element(word, "Glyph", id=ident)
    etree.SubElement(element, _same_ns(element, "Coords"), points=corners(glyph.box))
    equiv = etree.SubElement(element, _same_ns(element, "TextEquiv"), conf=f"{glyph.confidence:.4f}")
    etree.SubElement(equiv, _same_ns(element, "Unicode")).text = glyph.char
    return element


def _alto_glyph(string: etree._Element, ident: str, glyph: GlyphBox) -> etree._Element:
    x, y, w, h = glyph.box
    return _element(
        string,
        "Glyph",
        ID=ident,
        CONTENT=glyph.char,
        HPOS=str(x),
        VPOS=str(y),
        WIDTH=str(w),
        HEIGHT=str(h),
        GC=f"{glyph.confidence:.4f}",
    )


@dataclass(frozen=True)
class GlyphScheme:
    """How a format writes a word's glyphs (and words, where a line has none)."""

    id_attr: str
    after: tuple[str, ...]
    """A word element's children that come before (and among) its Glyphs."""
    glyph: Callable[[etree._Element, str, GlyphBox], etree._Element]
    new_words: Callable[[etree._Element, list[WordGlyphs], str, Ids], list[etree._Element]] | None
    """New word elements for a line that has none, placed in it; None where a read line always has them."""


def _new_page_words(line: etree._Element, words: list[WordGlyphs], line_ident: str, ids: Ids) -> list[etree._Element]:
    """One new Word per word (its found box and text), where the schema puts Words."""
    at = _after(line, PAGE_WORD_AFTER)
    made = []
    for word in words:
        element = _element(line, "Word", id=ids.new(f"{line_ident}_iamchars_w{word.index:02d}"))
        etree.SubElement(element, _same_ns(element, "Coords"), points=corners(word.box))
        equiv = etree.SubElement(element, _same_ns(element, "TextEquiv"))
        etree.SubElement(equiv, _same_ns(element, "Unicode")).text = word.text
        line.insert(at, element)
        at += 1
        made.append(element)
    return made


def _put_line(
    line: etree._Element,
    words: list[WordGlyphs],
    scheme: tuple[WordScheme, GlyphScheme],
    ids: Ids,
    entities: dict[str, str],
    report: WriteReport,
) -> None:
    """The glyphs of one text line's words, each word's into the element that holds it."""
    word_scheme, glyphs = scheme
    found = line_words(line, word_scheme, entities)
    line_ident = line.get(glyphs.id_attr) or "line"
    if not found.elements and glyphs.new_words is not None:
        targets = dict(zip((w.index for w in words), glyphs.new_words(line, words, line_ident, ids), strict=True))
    elif found.owners is None:
        report.lines_not_matched.append(line.sourceline or 0)
        return
    else:
        owners = found.owners
        targets = {w.index: found.elements[owners[w.index]] for w in words if w.index < len(owners)}
    had_glyphs = {id(e) for e in targets.values() if e.find("{*}Glyph") is not None}
    report.words_with_own_glyphs += len(had_glyphs)
    for word in words:
        element = targets.get(word.index)
        if element is None or id(element) in had_glyphs:
            continue
        ident = element.get(glyphs.id_attr) or f"{line_ident}_w{word.index:02d}"
        first = len(element.findall("{*}Glyph"))  # ours so far: an element may hold several words
        at = _after(element, glyphs.after)
        made = [glyphs.glyph(element, ids.new(f"{ident}_g{first + k:02d}"), g) for k, g in enumerate(word.glyphs)]
        element[at:at] = made


def _declaration(data: bytes) -> tuple[bool, bool | None]:
    """Whether the file opens with an XML declaration, and its `standalone` (None where it states none)."""
    head = data[:200].replace(b"\x00", b"").removeprefix(b"\xef\xbb\xbf").lstrip(b"\xff\xfe")
    if not head.startswith(b"<?xml"):
        return False, None
    found = re.search(rb"""standalone\s*=\s*["'](yes|no)["']""", head.split(b"?>", 1)[0])
    return True, None if found is None else found.group(1) == b"yes"


def add_glyphs(
    root: etree._Element, data: bytes, lines: dict[int, list[WordGlyphs]], words: WordScheme, glyphs: GlyphScheme
) -> tuple[bytes, WriteReport]:
    """The file (`root`, parsed from `data`) with a Glyph per character inside its word's element, for the text
    lines at the given positions (document order, as the readers number them), in the format whose schemes are
    given. Everything else is written as it was read, in the file's own encoding."""
    ids = Ids(root, glyphs.id_attr)
    entities = document_entities(root)
    report = WriteReport()
    for order, line in enumerate(root.iter("{*}TextLine")):
        found = lines.get(order)
        if found:
            _put_line(line, sorted(found, key=lambda w: w.index), (words, glyphs), ids, entities, report)
    tree = root.getroottree()
    declared, standalone = _declaration(data)
    encoding = tree.docinfo.encoding or "UTF-8"
    written = etree.tostring(tree, xml_declaration=declared, encoding=encoding, standalone=standalone)
    if data.endswith(b"\n") and not written.endswith(b"\n") and not data.endswith(b"\x00"):
        written += b"\n"  # the final newline lxml drops (not for UTF-16, whose newline is two bytes)
    return written, report


PAGE_GLYPHS = GlyphScheme("id", ("AlternativeImage", "Coords", "Glyph"), _page_glyph, _new_page_words)
ALTO_GLYPHS = GlyphScheme("ID", ("Shape", "ALTERNATIVE", "Glyph"), _alto_glyph, None)


@dataclass(frozen=True)
class DocumentLine:
    """A text line of a new document: its box, its words and, where known, each word's box (page pixels)."""

    box: Box
    words: list[str]
    word_boxes: list[Box] | None


CREATOR = "iamchars"
CREATED = "2026-01-01T00:00:00"
"""A fixed time in new documents' metadata: the same inputs give the same bytes."""


def page_document(image: str, size: tuple[int, int], lines: list[DocumentLine]) -> bytes:
    """A PAGE 2019 document of one page: one region holding every line, each line's words where boxed."""
    ns = f"{{{PAGE_NS}}}"
    root = etree.Element(ns + "PcGts", nsmap={None: PAGE_NS})
    meta = etree.SubElement(root, ns + "Metadata")
    etree.SubElement(meta, ns + "Creator").text = CREATOR
    etree.SubElement(meta, ns + "Created").text = CREATED
    etree.SubElement(meta, ns + "LastChange").text = CREATED
    page = etree.SubElement(root, ns + "Page", imageFilename=image, imageWidth=str(size[0]), imageHeight=str(size[1]))
    region = etree.SubElement(page, ns + "TextRegion", id="r0")
    etree.SubElement(region, ns + "Coords", points=corners((0, 0, *size)))
    for k, line in enumerate(lines):
        element = etree.SubElement(region, ns + "TextLine", id=f"l{k}")
        etree.SubElement(element, ns + "Coords", points=corners(line.box))
        for j, (text, box) in enumerate(zip(line.words, line.word_boxes or [], strict=False)):
            word = etree.SubElement(element, ns + "Word", id=f"l{k}w{j}")
            etree.SubElement(word, ns + "Coords", points=corners(box))
            etree.SubElement(etree.SubElement(word, ns + "TextEquiv"), ns + "Unicode").text = text
        etree.SubElement(etree.SubElement(element, ns + "TextEquiv"), ns + "Unicode").text = " ".join(line.words)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _alto_box_attrs(box: Box) -> dict[str, str]:
    return dict(zip(("HPOS", "VPOS", "WIDTH", "HEIGHT"), map(str, box), strict=True))


def alto_document(image: str, size: tuple[int, int], lines: list[DocumentLine]) -> bytes:
    """An ALTO 4 document of one page: one block holding every line; each line's words as Strings, boxed
    where known, else without a box."""
    ns = f"{{{ALTO_NS}}}"
    root = etree.Element(ns + "alto", nsmap={None: ALTO_NS})
    description = etree.SubElement(root, ns + "Description")
    etree.SubElement(description, ns + "MeasurementUnit").text = "pixel"
    etree.SubElement(etree.SubElement(description, ns + "sourceImageInformation"), ns + "fileName").text = image
    page = etree.SubElement(
        etree.SubElement(root, ns + "Layout"),
        ns + "Page",
        ID="p0",
        PHYSICAL_IMG_NR="1",
        WIDTH=str(size[0]),
        HEIGHT=str(size[1]),
    )
    space = etree.SubElement(page, ns + "PrintSpace", _alto_box_attrs((0, 0, *size)))
    block = etree.SubElement(space, ns + "TextBlock", {"ID": "b0", **_alto_box_attrs((0, 0, *size))})
    for k, line in enumerate(lines):
        element = etree.SubElement(block, ns + "TextLine", {"ID": f"l{k}", **_alto_box_attrs(line.box)})
        boxes: list[Box | None] = list(line.word_boxes) if line.word_boxes is not None else [None] * len(line.words)
        for j, (text, box) in enumerate(zip(line.words, boxes, strict=True)):
            if j:
                etree.SubElement(element, ns + "SP")
            attrs = {"ID": f"l{k}w{j}", "CONTENT": text, **(_alto_box_attrs(box) if box is not None else {})}
            etree.SubElement(element, ns + "String", attrs)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
