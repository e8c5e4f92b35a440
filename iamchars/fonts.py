"""Handwriting fonts from the `fontpkg-*` packages (or any TTF path), with cached glyphs and advances.

Both the synthetic writer and the segmentation's alignment read fonts through here, so both agree on what
"the advance of a character, kerning included" means.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from iamchars.errors import UserError


class FontNotFoundError(UserError, FileNotFoundError):
    pass


def font_path(name: str) -> Path:
    """A fontpkg name (`dancing-script`) or a path to a TTF/OTF file -> the font file."""
    candidate = Path(name)
    if candidate.suffix.lower() in (".ttf", ".otf") or "/" in name or "\\" in name:
        if not candidate.is_file():
            raise FontNotFoundError(f"{candidate}: font file not found (give a .ttf/.otf file or a fontpkg name)")
        return candidate
    if not re.fullmatch(r"[A-Za-z0-9-]+", name):
        raise FontNotFoundError(f"font {name!r}: neither a fontpkg name (letters, digits, '-') nor a .ttf/.otf file")
    module_name = "fontpkg_" + name.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise FontNotFoundError(
            f"font {name!r}: package fontpkg-{name} is not installed (pip install fontpkg-{name}) "
            "and it is not a path to a .ttf/.otf file"
        ) from None
    files = Path(module.__file__ or "").parent / "files"
    fonts = sorted(files.glob("*.ttf")) + sorted(files.glob("*.otf"))
    if not fonts:
        raise FontNotFoundError(f"font {name!r}: no .ttf/.otf under {files}")
    regular = [f for f in fonts if "Regular" in f.name]
    return (regular or fonts)[0]


def check_font(name: str) -> None:
    """Raise FontNotFoundError unless `name` is a font that opens (a fontpkg name, or a TTF/OTF file)."""
    path = font_path(name)
    try:
        ImageFont.truetype(str(path), 16)
    except OSError as exc:
        raise FontNotFoundError(f"{path}: not a readable TTF/OTF font ({exc})") from None


@dataclass(frozen=True)
class Glyph:
    alpha: np.ndarray
    """uint8 coverage, 255 = full ink."""
    left: int
    """x of the bitmap's left edge relative to the pen position."""
    top: int
    """y of the bitmap's top edge relative to the baseline (negative: above it)."""
    advance: float


class FontMetrics:
    """Advances, kerning and glyph bitmaps of one font at one pixel size, all cached."""

    def __init__(self, path: Path, size: int, stroke: int = 0) -> None:
        self.path = Path(path)
        self.size = size
        self.stroke = stroke
        layout = ImageFont.Layout.RAQM if _has_raqm() else ImageFont.Layout.BASIC
        self.font = ImageFont.truetype(str(path), size, layout_engine=layout)
        self.ascent, self.descent = self.font.getmetrics()
        self._glyph = lru_cache(maxsize=512)(self._render_glyph)
        self._advance = lru_cache(maxsize=512)(self.font.getlength)
        self._pair = lru_cache(maxsize=8192)(self._kerning)

    def advance(self, ch: str) -> float:
        return float(self._advance(ch))

    def kerning(self, a: str, b: str) -> float:
        return float(self._pair(a, b))

    def _kerning(self, a: str, b: str) -> float:
        return float(self.font.getlength(a + b) - self.font.getlength(a) - self.font.getlength(b))

    def glyph(self, ch: str) -> Glyph:
        return self._glyph(ch)

    def _render_glyph(self, ch: str) -> Glyph:
        left, top, right, bottom = self.font.getbbox(ch, anchor="ls", stroke_width=self.stroke)
        w, h = max(1, int(right - left)), max(1, int(bottom - top))
        image = Image.new("L", (w, h), 0)
        ImageDraw.Draw(image).text(
            (-left, -top),
            ch,
            font=self.font,
            fill=255,
            anchor="ls",
            stroke_width=self.stroke,
            stroke_fill=255,
        )
        alpha = np.asarray(image, dtype=np.uint8)
        alpha.setflags(write=False)
        return Glyph(alpha, int(left), int(top), self.advance(ch))

    def spans(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Start and end x of every character's advance cell, kerning included; starts[0] == 0."""
        starts = np.zeros(len(text))
        ends = np.zeros(len(text))
        pen = 0.0
        for i, ch in enumerate(text):
            if i:
                pen += self.kerning(text[i - 1], ch)
            starts[i] = pen
            pen += self.advance(ch)
            ends[i] = pen
        return starts, ends


@lru_cache(maxsize=1)
def _has_raqm() -> bool:
    from PIL import features

    return bool(features.check("raqm"))


@lru_cache(maxsize=32)
def load_font(name: str, size: int, stroke: int = 0) -> FontMetrics:
    """Cached per process: workers build a font once and reuse it for every word."""
    return FontMetrics(font_path(name), size, stroke)
