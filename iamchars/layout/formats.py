"""The layout formats, one table: each name (the `--format` and `--write` value, `export.layout`, and the
dataset's `OUT/<name>/` folder) maps to its root element, its reader, how it holds a line's words, how glyphs
are written into it, and how a new document of pages is made. Everything that names a format reads `FORMATS`;
a new format is its reader and writer parts (`read.py`, `write.py`, or a module of its own) and an entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from iamchars.layout.read import (
    ALTO_WORDS,
    PAGE_WORDS,
    LayoutError,
    LayoutPage,
    WordScheme,
    parse_xml,
    read_alto,
    read_page,
)
from iamchars.layout.write import (
    ALTO_GLYPHS,
    PAGE_GLYPHS,
    DocumentLine,
    GlyphScheme,
    WordGlyphs,
    WriteReport,
    add_glyphs,
    alto_document,
    page_document,
)


@dataclass(frozen=True)
class LayoutFormat:
    name: str
    title: str
    """How people call it (the card, messages)."""
    root: str
    """Local name of the document's root element, by which a file is known to be of this format."""
    read: Callable[[etree._Element, str], LayoutPage]
    words: WordScheme
    glyphs: GlyphScheme
    document: Callable[[str, tuple[int, int], list[DocumentLine]], bytes]
    """A new document of one page (image name, its size, its lines)."""


FORMATS: dict[str, LayoutFormat] = {
    f.name: f
    for f in (
        LayoutFormat("page", "PAGE XML", "PcGts", read_page, PAGE_WORDS, PAGE_GLYPHS, page_document),
        LayoutFormat("alto", "ALTO", "alto", read_alto, ALTO_WORDS, ALTO_GLYPHS, alto_document),
    )
}


def format_of(root: etree._Element) -> LayoutFormat | None:
    """The format of a parsed document, by its root element; None for anything else."""
    name = etree.QName(root).localname
    return next((f for f in FORMATS.values() if f.root == name), None)


def read_layout(data: bytes, source: str) -> LayoutPage:
    """One layout file; a LayoutError (file and line) when it is malformed or of no known format."""
    root = parse_xml(data, source)
    fmt = format_of(root)
    if fmt is None:
        roots = ", ".join(f"{f.title} ({f.root})" for f in FORMATS.values())
        raise LayoutError(
            f"{source}:{root.sourceline}: root element <{etree.QName(root).localname}> is none of {roots}"
        )
    return fmt.read(root, source)


def write_glyphs(data: bytes, source: str, lines: dict[int, list[WordGlyphs]]) -> tuple[bytes, WriteReport]:
    """The file with a Glyph per character inside its word's element (`write.add_glyphs`), in its own format."""
    root = parse_xml(data, source)
    fmt = format_of(root)
    if fmt is None:
        raise LayoutError(f"{source}: not a layout file of a known format")
    return add_glyphs(root, data, lines, fmt.words, fmt.glyphs)
