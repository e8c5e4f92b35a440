"""Character boxes written back into the PAGE or ALTO files they came from: a Glyph per character, with its
box and confidence, under its word (the file's own Word or String where it boxed the words, a new one with
the found box where it did not). Everything else in the file is kept as it was. Pure: bytes and tables in,
bytes out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from lxml import etree

from iamchars.layout.read import parse_xml

Box = tuple[int, int, int, int]


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
    """The file boxed this word (its own element gets the glyphs); else a new element is made."""
    glyphs: list[GlyphBox]


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


def _corners(box: Box) -> str:
    x, y, w, h = box
    x1, y1 = x + max(w, 1) - 1, y + max(h, 1) - 1
    return f"{x},{y} {x1},{y} {x1},{y1} {x},{y1}"


def _element(parent: etree._Element, name: str, **attrs: str) -> etree._Element:
    """A new element in the parent's namespace (not yet placed)."""
    return etree.Element(etree.QName(etree.QName(parent).namespace, name).text, attrs)


def _after(parent: etree._Element, names: tuple[str, ...]) -> int:
    """The index just past the parent's last child named one of `names` (the place schema order allows)."""
    index = 0
    for i, child in enumerate(parent):
        if isinstance(child.tag, str) and etree.QName(child).localname in names:
            index = i + 1
    return index


def _put_glyphs(
    targets: dict[int, etree._Element],
    words: list[WordGlyphs],
    line_ident: str,
    id_attr: str,
    glyph_of: Callable[[etree._Element, str, GlyphBox], etree._Element],
    after: tuple[str, ...],
) -> None:
    """Each word's element (by its index in `targets`) with its old Glyphs replaced by one per character,
    placed after its last child named in `after` (where the schema puts Glyphs)."""
    for word in words:
        element = targets.get(word.index)
        if element is None:
            continue
        for old in element.findall("{*}Glyph"):
            element.remove(old)
        ident = element.get(id_attr) or f"{line_ident}_w{word.index:02d}"
        at = _after(element, after)
        element[at:at] = [glyph_of(element, f"{ident}_g{k:02d}", g) for k, g in enumerate(word.glyphs)]


def _page_glyph(word: etree._Element, ident: str, glyph: GlyphBox) -> etree._Element:
    element = _element(word, "Glyph", id=ident)
    etree.SubElement(element, _same_ns(element, "Coords"), points=_corners(glyph.box))
    equiv = etree.SubElement(element, _same_ns(element, "TextEquiv"), conf=f"{glyph.score:.4f}")
    etree.SubElement(equiv, _same_ns(element, "Unicode")).text = glyph.char
    return element


def _same_ns(element: etree._Element, name: str) -> str:
    namespace = etree.QName(element).namespace
    return f"{{{namespace}}}{name}" if namespace else name


def _page_line(line: etree._Element, words: list[WordGlyphs], line_ident: str) -> None:
    existing = line.findall("{*}Word")
    if words and not words[0].given:
        for old in existing:
            line.remove(old)
        existing = []
        at = _after(line, ("AlternativeImage", "Coords", "Baseline"))
        for word in words:
            element = _element(line, "Word", id=f"{line_ident}_iamchars_w{word.index:02d}")
            etree.SubElement(element, _same_ns(element, "Coords"), points=_corners(word.box))
            equiv = etree.SubElement(element, _same_ns(element, "TextEquiv"))
            etree.SubElement(equiv, _same_ns(element, "Unicode")).text = word.text
            line.insert(at, element)
            at += 1
            existing.append(element)
        targets = dict(zip((w.index for w in words), existing, strict=True))
    else:
        targets = {w.index: existing[w.index] for w in words if w.index < len(existing)}
    _put_glyphs(targets, words, line_ident, "id", _page_glyph, ("AlternativeImage", "Coords"))


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


def _alto_line(line: etree._Element, words: list[WordGlyphs], line_ident: str) -> None:
    strings = line.findall("{*}String")
    if words and not words[0].given:
        for old in [c for c in line if isinstance(c.tag, str) and etree.QName(c).localname in ("String", "SP", "HYP")]:
            line.remove(old)
        at = _after(line, ("Shape",))
        strings = []
        for k, word in enumerate(words):
            if k:
                line.insert(at, _element(line, "SP"))
                at += 1
            x, y, w, h = word.box
            element = _element(
                line,
                "String",
                ID=f"{line_ident}_iamchars_w{word.index:02d}",
                CONTENT=word.text,
                HPOS=str(x),
                VPOS=str(y),
                WIDTH=str(w),
                HEIGHT=str(h),
            )
            line.insert(at, element)
            at += 1
            strings.append(element)
        targets = dict(zip((w.index for w in words), strings, strict=True))
    else:
        targets = {w.index: strings[w.index] for w in words if w.index < len(strings)}
    _put_glyphs(targets, words, line_ident, "ID", _alto_glyph, ("Shape", "ALTERNATIVE"))


def add_glyphs(data: bytes, source: str, lines: dict[int, list[WordGlyphs]]) -> bytes:
    """The file with a Glyph per character under its word, for the text lines at the given positions
    (document order, as `read.read_layout` numbers them); PAGE or ALTO as the file is."""
    root = parse_xml(data, source)
    alto = etree.QName(root).localname == "alto"
    for order, line in enumerate(root.iter("{*}TextLine")):
        words = lines.get(order)
        if not words:
            continue
        ident = line.get("ID" if alto else "id") or f"l{order}"
        (_alto_line if alto else _page_line)(line, sorted(words, key=lambda w: w.index), ident)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=None)
