"""Character boxes written back into the PAGE or ALTO files they came from: a Glyph per character, with its
box and confidence, inside the element that holds its word. The parsed tree is edited in place and written
whole, prolog, DOCTYPE, comments and entity references included, so nothing of the user's file is lost:

- a word the file holds in its own Word or String element (boxed or not) gets its Glyphs there, after the
  children the schema puts first; that element is otherwise left as it was;
- a line with no word elements at all (a PAGE line with only its TextEquiv) gets one new Word per word, with
  the found box, placed where the schema puts Words;
- a word element that already has Glyphs keeps them, and gets none of ours; a line whose word elements do
  not spell its transcription is left as it was. Both are counted in the returned `WriteReport`.
Pure: bytes and tables in, bytes out."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd
from lxml import etree

from iamchars.layout.read import document_entities, format_of, line_words, parse_xml

Box = tuple[int, int, int, int]
PAGE_WORD_AFTER = ("AlternativeImage", "Coords", "Baseline", "Word")
"""A PAGE TextLine's children that come before its Words (TextLineType's sequence)."""
GLYPH_AFTER = {"page": ("AlternativeImage", "Coords", "Glyph"), "alto": ("Shape", "ALTERNATIVE", "Glyph")}
"""A word element's children that come before (and among) its Glyphs, by format."""


@dataclass(frozen=True)
class GlyphBox:
    char: str
    box: Box
    score: float


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
            GlyphBox(str(c.char), (int(c.x), int(c.y), int(c.w), int(c.h)), float(c.score))
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


class _Ids:
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
    equiv = etree.SubElement(element, _same_ns(element, "TextEquiv"), conf=f"{glyph.score:.4f}")
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
        GC=f"{glyph.score:.4f}",
    )


GLYPH_OF: dict[str, Callable[[etree._Element, str, GlyphBox], etree._Element]] = {
    "page": _page_glyph,
    "alto": _alto_glyph,
}
ID_ATTR = {"page": "id", "alto": "ID"}


def _new_page_words(line: etree._Element, words: list[WordGlyphs], line_ident: str, ids: _Ids) -> list[etree._Element]:
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
    line: etree._Element, words: list[WordGlyphs], fmt: str, ids: _Ids, entities: dict[str, str], report: WriteReport
) -> None:
    """The glyphs of one text line's words, each word's into the element that holds it."""
    found = line_words(line, fmt, entities)
    line_ident = line.get(ID_ATTR[fmt]) or "line"
    if not found.elements and fmt == "page":
        targets = dict(zip((w.index for w in words), _new_page_words(line, words, line_ident, ids), strict=True))
    elif found.owners is None:
        report.lines_not_matched.append(line.sourceline or 0)
        return
    else:
        owners = found.owners
        targets = {w.index: found.elements[owners[w.index]] for w in words if w.index < len(owners)}
    had_glyphs = {id(e) for e in targets.values() if e.find("{*}Glyph") is not None}
    report.words_with_own_glyphs += len(had_glyphs)
    placed: dict[int, int] = {}  # glyphs put into each element so far (one element may hold several words)
    for word in words:
        element = targets.get(word.index)
        if element is None or id(element) in had_glyphs:
            continue
        ident = element.get(ID_ATTR[fmt]) or f"{line_ident}_w{word.index:02d}"
        first = placed.get(id(element), 0)
        placed[id(element)] = first + len(word.glyphs)
        at = _after(element, GLYPH_AFTER[fmt])
        element[at:at] = [
            GLYPH_OF[fmt](element, ids.new(f"{ident}_g{first + k:02d}"), g) for k, g in enumerate(word.glyphs)
        ]


def _declaration(data: bytes) -> tuple[bool, bool | None]:
    """Whether the file opens with an XML declaration, and its `standalone` (None where it states none)."""
    head = data[:200].replace(b"\x00", b"").removeprefix(b"\xef\xbb\xbf").lstrip(b"\xff\xfe")
    if not head.startswith(b"<?xml"):
        return False, None
    found = re.search(rb"""standalone\s*=\s*["'](yes|no)["']""", head.split(b"?>", 1)[0])
    return True, None if found is None else found.group(1) == b"yes"


def add_glyphs(data: bytes, source: str, lines: dict[int, list[WordGlyphs]]) -> tuple[bytes, WriteReport]:
    """The file with a Glyph per character inside its word's element, for the text lines at the given
    positions (document order, as `read.read_layout` numbers them); PAGE or ALTO as the file is. Everything
    else is written as it was read, in the file's own encoding."""
    root = parse_xml(data, source)
    fmt = format_of(root) or "page"
    ids = _Ids(root, ID_ATTR[fmt])
    entities = document_entities(root)
    report = WriteReport()
    for order, line in enumerate(root.iter("{*}TextLine")):
        words = lines.get(order)
        if words:
            _put_line(line, sorted(words, key=lambda w: w.index), fmt, ids, entities, report)
    tree = root.getroottree()
    info = tree.docinfo
    declared, standalone = _declaration(data)
    written = etree.tostring(tree, xml_declaration=declared, encoding=info.encoding or "UTF-8", standalone=standalone)
    if data.endswith(b"\n") and not written.endswith(b"\n") and not data.endswith(b"\x00"):
        written += b"\n"  # the final newline lxml drops (not for UTF-16, whose newline is two bytes)
    return written, report
