"""Class sets named after EMNIST's, with folder names that are safe on case-insensitive file systems and
sort in label order (so torchvision's ImageFolder assigns the same integers as `classes.json`)."""

from __future__ import annotations

import string
from dataclasses import dataclass

DIGITS = string.digits
UPPER = string.ascii_uppercase
LOWER = string.ascii_lowercase
PUNCTUATION = "!\"#&'()*+,-./:;?"
BYMERGE_MERGED = "cijklmopsuvwxyz"
"""EMNIST's By_Merge folds these lowercase letters into their capitals (their shapes barely differ)."""
PUNCT_NAMES = {
    "!": "exclam",
    '"': "quote",
    "#": "hash",
    "&": "amp",
    "'": "apostrophe",
    "(": "lparen",
    ")": "rparen",
    "*": "star",
    "+": "plus",
    ",": "comma",
    "-": "hyphen",
    ".": "period",
    "/": "slash",
    ":": "colon",
    ";": "semicolon",
    "?": "question",
}
CLASS_SETS = ("byclass", "bymerge", "letters", "digits")


@dataclass(frozen=True)
class ClassSet:
    name: str
    classes: tuple[tuple[str, ...], ...]
    """Per label, the characters it holds (first: the canonical one)."""

    @property
    def mapping(self) -> dict[str, int]:
        return {ch: label for label, members in enumerate(self.classes) for ch in members}

    def folder(self, label: int) -> str:
        width = len(str(len(self.classes) - 1))
        return f"{label:0{width}d}_{_describe(self.classes[label][0], self.name)}"

    def to_json(self) -> dict[str, object]:
        return {
            "class_set": self.name,
            "num_classes": len(self.classes),
            "classes": [
                {"label": i, "char": members[0], "members": list(members), "folder": self.folder(i)}
                for i, members in enumerate(self.classes)
            ],
        }


def _describe(ch: str, set_name: str) -> str:
    if ch in DIGITS:
        return f"digit_{ch}"
    if ch in UPPER:
        return f"upper_{ch}"
    if ch in LOWER:
        return f"letter_{ch}" if set_name == "letters" else f"lower_{ch}"
    return f"punct_{PUNCT_NAMES.get(ch, f'u{ord(ch):04x}')}"


def class_set(name: str, punctuation: bool = False) -> ClassSet:
    classes: list[tuple[str, ...]]
    if name == "byclass":
        classes = [(c,) for c in DIGITS + UPPER + LOWER]
    elif name == "bymerge":
        classes = [(c,) for c in DIGITS]
        classes += [(c, c.lower()) if c.lower() in BYMERGE_MERGED else (c,) for c in UPPER]
        classes += [(c,) for c in LOWER if c not in BYMERGE_MERGED]
    elif name == "letters":
        classes = [(c, c.upper()) for c in LOWER]
    elif name == "digits":
        classes = [(c,) for c in DIGITS]
    else:
        raise ValueError(f"unknown class set {name!r}; choose one of {', '.join(CLASS_SETS)}")
    if punctuation:
        classes += [(c,) for c in PUNCTUATION]
    return ClassSet(name + ("+punct" if punctuation else ""), tuple(classes))
