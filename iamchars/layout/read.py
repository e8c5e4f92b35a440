"""PAGE XML (2010 to 2019 namespaces) and ALTO (v2 to v4) pages, parsed with lxml into the lines iamchars
segments: each text line's polygon, its region's polygon, its transcription's words and, where the file
boxes them, their boxes. Pure: parsed documents in, dataclasses out; problems are returned with their XML
line. `layout.formats` names each format's reader.

What is read, and how (the README's Reliability section states the same to users):
- A transcription is the whole text of its `Unicode` element (comments skipped; an entity of the document's
  own DTD expanded where its value is plain text; any other entity makes the line a problem), from the
  TextEquiv with the lowest `@index` (document order among equals), in Unicode NFC.
- Numbers (coordinates, sizes) are decimal or scientific notation, finite, and within MAX_COORDINATE;
  anything else is not a number, and a line whose outline has none is a problem, never a crash.
- `line_words` says which of a line's word elements (a format's `WordScheme`) holds each word of its
  transcription: the writer puts each word's glyphs into that element, so reading and writing cannot disagree.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
from lxml import etree

from iamchars.errors import UserError
from iamchars.iam.parse import MAX_COORDINATE

Box = tuple[int, int, int, int]
SEPARATORS = re.compile(r"[\s,]+")


class LayoutError(UserError, ValueError):
    """A file that cannot be read as a PAGE or ALTO page (its path and XML line in the message)."""


@dataclass(frozen=True)
class LayoutLine:
    order: int
    """The line's position among all text lines of the file, in document order (how it is found again)."""
    xml_line: int
    """The line of the XML file where the text line starts."""
    polygon: np.ndarray
    """(k, 2) int points of the line's outline, page pixels."""
    region: np.ndarray | None
    """(k, 2) int points of its region's outline, None where the region has none."""
    words: list[str]
    """The transcription's words, in reading order."""
    word_boxes: list[Box] | None
    """Each word's box (x, y, w, h, page pixels) where the file boxes every word of the line; else None."""


@dataclass
class LayoutPage:
    format: str
    image: str
    """The page image's file name as the file gives it ("" where it gives none)."""
    size: tuple[int, int] | None
    """(width, height) the file declares, in pixels (None where it declares none that is a pixel count)."""
    lines: list[LayoutLine] = field(default_factory=list)
    problems: list[tuple[int, str, int]] = field(default_factory=list)
    """(XML line, reason, words of its transcription where known) of each text line left out."""


@dataclass(frozen=True)
class LineWords:
    """A text line's transcription as the file gives it, and which of its word elements holds each word."""

    texts: list[str]
    """The transcription's words, in reading order."""
    boxes: list[Box] | None
    """Each word's box where every word element holds one boxed word; else None."""
    owners: list[int] | None
    """For each word, the index (among the line's Word or String children) of the element that holds it; None
    where the line has no word elements, or where they do not spell its transcription."""
    elements: list[etree._Element]
    """The line's word elements (PAGE Word, ALTO String), in document order."""
    problem: str | None = None
    """Why the transcription cannot be read (an entity that is not expanded), None when it can."""


def parse_xml(data: bytes, source: str) -> etree._Element:
    """The document's root; a LayoutError naming the file and line when it is not well-formed XML. Entities
    are not expanded and nothing is fetched from the network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise LayoutError(f"{source}:{exc.lineno}: malformed XML: {exc.msg}") from exc


def number(text: str | None) -> float | None:
    """A coordinate or size as the file writes it (decimal or scientific notation); None unless it is finite
    and within MAX_COORDINATE of zero."""
    try:
        value = float((text or "").strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and abs(value) <= MAX_COORDINATE else None


def points(text: str | None) -> np.ndarray | None:
    """A PAGE `points` or ALTO `POINTS` string ("x,y x,y ..." or "x y x y ...") as (k, 2) ints; None unless it
    holds at least three points, each of two numbers (`number`)."""
    tokens = [t for t in SEPARATORS.split(text or "") if t]
    values = [number(t) for t in tokens]
    if len(values) < 6 or len(values) % 2 or any(v is None for v in values):
        return None
    return np.rint(np.array(values, np.float64).reshape(-1, 2)).astype(np.int64)


def bounding_box(polygon: np.ndarray) -> Box:
    x0, y0 = polygon.min(axis=0)
    x1, y1 = polygon.max(axis=0)
    return int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1


def document_entities(root: etree._Element) -> dict[str, str]:
    """The entities of the document's own DTD whose value is plain text (no markup, no further reference):
    the only ones a transcription may use. Nothing is fetched, and no value is expanded twice."""
    dtd = root.getroottree().docinfo.internalDTD
    if dtd is None:
        return {}
    return {
        str(e.name): str(e.content)
        for e in dtd.iterentities()
        if e.content is not None and "&" not in e.content and "<" not in e.content
    }


def inner_text(element: etree._Element | None, entities: dict[str, str]) -> tuple[str, str | None]:
    """All the text of an element (child elements' too; comments and processing instructions skipped),
    with the document's plain-text entities expanded, in NFC; and why it cannot be read (an entity that is not
    one of `entities`), else None."""
    if element is None:
        return "", None
    parts = [element.text or ""]
    for child in element:
        if isinstance(child, etree._Entity):
            name = str(child.name)
            if name not in entities:
                return "", f"text holds the entity &{name}; whose value is not plain text in the file's own DTD"
            parts.append(entities[name])
        elif isinstance(child.tag, str):
            text, problem = inner_text(child, entities)
            if problem:
                return "", problem
            parts.append(text)
        parts.append(child.tail or "")
    return unicodedata.normalize("NFC", "".join(parts)), None


def equiv_text(element: etree._Element, entities: dict[str, str]) -> tuple[str, str | None]:
    """The text of a PAGE element's main TextEquiv: the one with the lowest `@index` (the schema's rule), the
    first in the file among those without one or with equal ones."""
    equivs = element.findall("{*}TextEquiv")
    if not equivs:
        return "", None

    def rank(pair: tuple[int, etree._Element]) -> tuple[float, int]:
        index = number(pair[1].get("index"))
        return (index if index is not None else math.inf, pair[0])

    main = min(enumerate(equivs), key=rank)[1]
    return inner_text(main.find("{*}Unicode"), entities)


TextOf = Callable[[etree._Element, dict[str, str]], tuple[str, "str | None"]]
"""An element's text in a format (and why it cannot be read, else None), given the document's entities."""


@dataclass(frozen=True)
class WordScheme:
    """How a format holds a text line's words."""

    element: str
    """Local name of the element that holds a word (PAGE Word, ALTO String)."""
    text: TextOf
    box: Callable[[etree._Element], Box | None]
    line_text: TextOf | None
    """The line's own transcription where the format has one (PAGE's TextEquiv); None where the words are it."""


def line_words(line: etree._Element, scheme: WordScheme, entities: dict[str, str]) -> LineWords:
    """A text line's words and their elements. The line's own transcription where the format has one (the
    words' texts where it has none, or where every word element holds one boxed word), else the words'."""
    elements = line.findall(f"{{*}}{scheme.element}")
    texts_of: list[str] = []
    for element in elements:
        text, problem = scheme.text(element, entities)
        if problem:
            return LineWords([], None, None, elements, problem)
        texts_of.append(text)
    tokens = [t for text in texts_of for t in text.split()]
    owners = [k for k, text in enumerate(texts_of) for _ in text.split()]
    boxes = [scheme.box(element) for element in elements]
    if elements and all(len(t.split()) == 1 for t in texts_of) and all(b is not None for b in boxes):
        return LineWords(tokens, [b for b in boxes if b is not None], owners, elements)
    if scheme.line_text is not None:
        line_text, problem = scheme.line_text(line, entities)
        if problem:
            return LineWords([], None, None, elements, problem)
        if line_text.split():
            texts = line_text.split()
            return LineWords(texts, None, owners if elements and texts == tokens else None, elements)
    return LineWords(tokens, None, owners if elements else None, elements)


def content_text(element: etree._Element, entities: dict[str, str]) -> tuple[str, str | None]:
    """An ALTO element's CONTENT, in NFC."""
    return unicodedata.normalize("NFC", element.get("CONTENT") or ""), None


def page_box(element: etree._Element) -> Box | None:
    """A PAGE element's box: the bounding box of its Coords points."""
    polygon = points(_coords(element))
    return bounding_box(polygon) if polygon is not None else None


def _lines(page: etree._Element) -> Iterator[tuple[int, etree._Element]]:
    yield from enumerate(page.iter("{*}TextLine"))


def read_page(root: etree._Element, source: str) -> LayoutPage:
    """A parsed PAGE document's lines; a LayoutError (file and line) where it has no Page."""
    page = root.find("{*}Page")
    if page is None:
        raise LayoutError(f"{source}:{root.sourceline}: PAGE file without a <Page> element")
    size = _size(page.get("imageWidth"), page.get("imageHeight"))
    out = LayoutPage("page", page.get("imageFilename") or "", size)
    entities = document_entities(root)
    for order, line in _lines(page):
        words = line_words(line, PAGE_WORDS, entities)
        polygon = points(_coords(line))
        if polygon is None:
            out.problems.append((line.sourceline or 0, "text line without readable Coords points", len(words.texts)))
            continue
        parent = line.getparent()
        region = points(_coords(parent)) if parent is not None else None
        _add_line(out, order, line, polygon, region, words)
    return out


def _coords(element: etree._Element | None) -> str | None:
    coords = element.find("{*}Coords") if element is not None else None
    return coords.get("points") if coords is not None else None


def read_alto(root: etree._Element, source: str) -> LayoutPage:
    """A parsed ALTO document's lines; a LayoutError (file and line) for a unit other than pixels or a number
    of pages other than one."""
    unit = _text(root.find("{*}Description/{*}MeasurementUnit")).strip() or "pixel"
    if unit != "pixel":
        raise LayoutError(
            f"{source}:{root.sourceline}: MeasurementUnit {unit!r}: only pixel coordinates can be matched to the image"
        )
    pages = root.findall("{*}Layout/{*}Page")
    if len(pages) != 1:
        raise LayoutError(f"{source}:{root.sourceline}: ALTO file with {len(pages)} pages; one page per file is read")
    page = pages[0]
    image = _text(root.find("{*}Description/{*}sourceImageInformation/{*}fileName")).strip()
    out = LayoutPage("alto", image, _size(page.get("WIDTH"), page.get("HEIGHT")))
    entities = document_entities(root)
    for order, line in _lines(page):
        words = line_words(line, ALTO_WORDS, entities)
        polygon = _alto_outline(line)
        if polygon is None:
            out.problems.append((line.sourceline or 0, "text line without a readable box or polygon", len(words.texts)))
            continue
        parent = line.getparent()
        region = _alto_outline(parent) if parent is not None else None
        _add_line(out, order, line, polygon, region, words)
    return out


def _text(element: etree._Element | None) -> str:
    return (element.text or "") if element is not None else ""


def _alto_box(element: etree._Element) -> Box | None:
    values = [number(element.get(k)) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT")]
    if any(v is None for v in values):
        return None
    x, y, w, h = (float(v) for v in values if v is not None)
    if w <= 0 or h <= 0:
        return None
    x0, y0 = round(x), round(y)
    return x0, y0, max(1, round(x + w) - x0), max(1, round(y + h) - y0)


def _alto_outline(element: etree._Element) -> np.ndarray | None:
    """An ALTO element's polygon (Shape/Polygon), else the rectangle of its HPOS, VPOS, WIDTH and HEIGHT."""
    polygon = element.find("{*}Shape/{*}Polygon")
    if polygon is not None:
        found = points(polygon.get("POINTS"))
        if found is not None:
            return found
    box = _alto_box(element)
    if box is None:
        return None
    x, y, w, h = box
    return np.array([[x, y], [x + w - 1, y], [x + w - 1, y + h - 1], [x, y + h - 1]], np.int64)


def _size(width: str | None, height: str | None) -> tuple[int, int] | None:
    w, h = number(width), number(height)
    return (int(w), int(h)) if w is not None and h is not None else None


def _add_line(
    out: LayoutPage,
    order: int,
    line: etree._Element,
    polygon: np.ndarray,
    region: np.ndarray | None,
    words: LineWords,
) -> None:
    where = line.sourceline or 0
    if words.problem:
        out.problems.append((where, words.problem, 0))
    elif not words.texts:
        out.problems.append((where, "text line without a transcription", 0))
    elif any("|" in t for t in words.texts):
        out.problems.append((where, "transcription holds '|', IAM's word separator", len(words.texts)))
    else:
        out.lines.append(LayoutLine(order, where, polygon, region, words.texts, words.boxes))


PAGE_WORDS = WordScheme("Word", equiv_text, page_box, equiv_text)
ALTO_WORDS = WordScheme("String", content_text, _alto_box, None)
