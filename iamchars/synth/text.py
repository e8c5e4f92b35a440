"""Offline English-like text, tokenised the way IAM tokenises: sentence punctuation as separate tokens,
abbreviations such as `Mr.` kept whole, with digits and capitals mixed in.

Words come at run time from Faker's English word list and surnames; no text is stored in the repository.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from faker import Faker

TITLES = ("Mr.", "Mrs.", "Dr.", "St.")
SENTENCE_END = (".", ".", ".", ".", "?", "!")
INNER_PUNCT = (",", ",", ",", ";", ":", "-")


def make_faker(seed: int) -> Faker:
    fake = Faker("en_US")
    fake.seed_instance(seed)
    return fake


def _ascii(word: str) -> str:
    return "".join(ch for ch in word if ch.isascii() and (ch.isalnum() or ch in "'-")) or "a"


def sentence_tokens(fake: Faker, rng: np.random.Generator) -> list[str]:
    """One sentence as IAM-style tokens."""
    words = [_ascii(w) for w in fake.sentence(nb_words=int(rng.integers(5, 15))).rstrip(".").split()]
    tokens: list[str] = []
    for i, word in enumerate(words):
        r = rng.random()
        if r < 0.06:
            tokens += [str(rng.choice(TITLES)), _ascii(fake.last_name())]
        elif r < 0.11:
            tokens.append(str(int(rng.choice([rng.integers(1, 100), rng.integers(1800, 2030)]))))
        elif r < 0.13:
            tokens.append(word.upper())
        elif r < 0.17:
            tokens.append(word.capitalize())
        if rng.random() < 0.04:
            tokens += ['"', word, '"']
        else:
            tokens.append(word)
        if i < len(words) - 1 and rng.random() < 0.08:
            tokens.append(str(rng.choice(INNER_PUNCT)))
    tokens.append(str(rng.choice(SENTENCE_END)))
    return tokens


def fill_lines(
    fake: Faker,
    rng: np.random.Generator,
    n_lines: int,
    width: Callable[[str], float],
    gap: float,
    max_width: float,
) -> list[list[str]]:
    """Greedy line filling: a token goes on the current line while the estimated width fits."""
    lines: list[list[str]] = [[]]
    used = 0.0
    stream: list[str] = []
    while len(lines) <= n_lines:
        if not stream:
            stream = sentence_tokens(fake, rng)
        token = stream.pop(0)
        w = width(token)
        if lines[-1] and used + gap + w > max_width:
            lines.append([])
            used = 0.0
        lines[-1].append(token)
        used += (gap if used else 0.0) + w
    return lines[:n_lines]


def pos_tag(token: str) -> str:
    """A coarse stand-in for IAM's LOB tags (IAM's own tags are not needed by any stage)."""
    if not any(ch.isalnum() for ch in token):
        return token
    if token.isdigit():
        return "CD"
    if token in TITLES:
        return "NPT"
    if token[0].isupper():
        return "NP"
    return "NN"
