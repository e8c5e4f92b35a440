"""Network pieces shared by the segmentation's aligner and the trainer: device choice, layers, saving.

It sits below both `segment/` and `train/`, so the aligner never imports the trainer."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from iamchars.errors import UserError
from iamchars.fileio import atomic_open


def pick_device(name: str, option: str = "--device") -> torch.device:
    """ "auto" takes the GPU when torch sees one, else the CPU; an explicit CUDA device must exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"{option} {name}: torch sees no CUDA GPU (is a CUDA build of torch installed? see README)")
    return torch.device(name)


@contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic kernels inside the block (the backward of indexing otherwise adds in whatever order the
    threads finish), so that the same inputs and seed give the same bytes; the caller's setting after it.
    Deterministic mode would also fill every new tensor with NaN, a debugging aid that costs the aligner's
    training 5% of its time and changes no result: that stays off."""
    before = torch.are_deterministic_algorithms_enabled()
    fill_before = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    torch.use_deterministic_algorithms(True)
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)
        torch.utils.deterministic.fill_uninitialized_memory = fill_before  # type: ignore[attr-defined]


def save_state(path: Path, state: Any) -> None:
    """`torch.save`, atomically and byte for byte the same for the same state: saved to a file, torch names
    the archive's records after the file, which is a random temporary name here."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_open(path, "wb") as handle:
        handle.write(buffer.getvalue())


def conv_bn(cin: int, cout: int) -> nn.Sequential:
    """3x3 convolution, batch norm, GELU: the block every model here is made of."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.GELU())
