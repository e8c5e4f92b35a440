"""PAGE XML (2010 to 2019 namespaces) and ALTO (v2 to v4) pages, parsed with lxml into the lines iamchars
segments: each text line's polygon, its region's polygon, its transcription's words and, where the file
boxes them, their boxes. Pure: bytes in, dataclasses out; problems are returned with their XML line."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from lxml import etree

from iamchars.errors import UserError

FORMATS = ("page", "alto")
ROOTS = {"PcGts": "page", "alto": "alto"}
"""Local name of the root element -> format."""
Box = tuple[int, int, int, int]
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


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
    """(width, height) the file declares, in pixels."""
    lines: list[LayoutLine] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    """(XML line, reason) of each text line left out."""


def parse_xml(data: bytes, source: str) -> etree._Element:
    """The document's root; a LayoutError naming the file and line when it is not well-formed XML. Entities
    are not expanded and nothing is fetched from the network."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise LayoutError(f"{source}:{exc.lineno}: malformed XML: {exc.msg}") from exc


def format_of(root: etree._Element) -> str | None:
    """ "page" or "alto" by the root element's local name; None for anything else."""
    return ROOTS.get(etree.QName(root).localname)


def read_layout(data: bytes, source: str) -> LayoutPage:
    """One PAGE or ALTO file; a LayoutError (file and line) when it is malformed or neither format."""
    root = parse_xml(data, source)
    kind = format_of(root)
    if kind == "page":
        return _read_page(root, source)
    if kind == "alto":
        return _read_alto(root, source)
    raise LayoutError(
        f"{source}:{root.sourceline}: root element <{etree.QName(root).localname}> is neither PAGE (PcGts) nor ALTO"
    )


def points(text: str | None) -> np.ndarray | None:
    """A PAGE `points` or ALTO `POINTS` string ("x,y x,y ..." or "x y x y ...") as (k, 2) ints; None unless it
    holds at least three points."""
    values = [float(v) for v in NUMBER.findall(text or "")]
    if len(values) < 6 or len(values) % 2:
        return None
    return np.rint(np.array(values).reshape(-1, 2)).astype(np.int64)


def bounding_box(polygon: np.ndarray) -> Box:
    x0, y0 = polygon.min(axis=0)
    x1, y1 = polygon.max(axis=0)
    return int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1


def _text(element: etree._Element | None) -> str:
    return (element.text or "") if element is not None else ""


def _children(element: etree._Element, name: str) -> list[etree._Element]:
    return element.findall(f"{{*}}{name}")


def _lines(page: etree._Element) -> Iterator[tuple[int, etree._Element]]:
    yield from enumerate(page.iter("{*}TextLine"))


def _read_page(root: etree._Element, source: str) -> LayoutPage:
    page = root.find("{*}Page")
    if page is None:
        raise LayoutError(f"{source}:{root.sourceline}: PAGE file without a <Page> element")
    size = _size(page.get("imageWidth"), page.get("imageHeight"))
    out = LayoutPage("page", page.get("imageFilename") or "", size)
    for order, line in _lines(page):
        polygon = points(_coords(line))
        if polygon is None:
            out.problems.append((line.sourceline or 0, "text line without Coords points"))
            continue
        region = points(_coords(line.getparent())) if line.getparent() is not None else None
        words = _children(line, "Word")
        word_texts = [_text(w.find("{*}TextEquiv/{*}Unicode")).strip() for w in words]
        word_polys = [points(_coords(w)) for w in words]
        boxed = bool(words) and all(t and " " not in t for t in word_texts) and all(p is not None for p in word_polys)
        if boxed:
            texts = word_texts
            boxes: list[Box] | None = [bounding_box(p) for p in word_polys if p is not None]
        else:
            texts = _text(line.find("{*}TextEquiv/{*}Unicode")).split()
            if not texts and all(word_texts):
                texts = " ".join(word_texts).split()
            boxes = None
        _add_line(out, order, line, polygon, region, texts, boxes)
    return out


def _coords(element: etree._Element | None) -> str | None:
    coords = element.find("{*}Coords") if element is not None else None
    return coords.get("points") if coords is not None else None


def _read_alto(root: etree._Element, source: str) -> LayoutPage:
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
    for order, line in _lines(page):
        polygon = _alto_outline(line)
        if polygon is None:
            out.problems.append((line.sourceline or 0, "text line without a box or polygon"))
            continue
        parent = line.getparent()
        region = _alto_outline(parent) if parent is not None else None
        strings = _children(line, "String")
        contents = [(s.get("CONTENT") or "").strip() for s in strings]
        word_boxes = [_alto_box(s) for s in strings]
        boxed = bool(strings) and all(c and " " not in c for c in contents) and all(b is not None for b in word_boxes)
        texts = contents if boxed else " ".join(contents).split()
        _add_line(out, order, line, polygon, region, texts, [b for b in word_boxes if b] if boxed else None)
    return out


def _alto_box(element: etree._Element) -> Box | None:
    try:
        x, y, w, h = (float(element.get(k, "")) for k in ("HPOS", "VPOS", "WIDTH", "HEIGHT"))
    except ValueError:
        return None
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
    try:
        return int(float(width or "")), int(float(height or ""))
    except ValueError:
        return None


def _add_line(
    out: LayoutPage,
    order: int,
    line: etree._Element,
    polygon: np.ndarray,
    region: np.ndarray | None,
    texts: list[str],
    boxes: list[Box] | None,
) -> None:
    where = line.sourceline or 0
    if not texts:
        out.problems.append((where, "text line without a transcription"))
    elif any("|" in t for t in texts):
        out.problems.append((where, "transcription holds '|', IAM's word separator"))
    else:
        out.lines.append(LayoutLine(order, where, polygon, region, texts, boxes))
