"""Inference outside training: image files read and prepared like dataset tiles, top-k prediction, and
model export."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from iamchars.dataset.crops import normalize_crop, paper_and_ink_levels
from iamchars.fileio import read_gray
from iamchars.train.models import GEOMETRY_INPUTS, GeometryNet


def prepare_image(gray: np.ndarray, size: int) -> np.ndarray:
    """Any greyscale character image -> the dataset's form (white ink on black, S x S, centred).

    An image that already is a dataset crop (S x S, dark background) passes unchanged."""
    if gray.shape == (size, size) and np.median(gray) < 64:
        return gray
    if np.median(gray) < 128:  # light ink on a dark background: flip to the scanned-page polarity
        gray = 255 - gray
    paper, ink = paper_and_ink_levels(gray)
    ys, xs = np.nonzero(gray < (paper + ink) / 2)
    if len(ys):
        gray = gray[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    return normalize_crop(gray, paper, ink, size)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm")


def read_images(arguments: list[Path], size: int) -> tuple[list[Path], list[np.ndarray], list[str]]:
    """The readable images among `arguments` (files, or folders standing for every file under them named like
    an image, sorted) prepared for the network, and why each other one was skipped: one bad file or folder
    (no image in it, a FIFO, a looping link, not an image at all) never stops the rest."""
    paths: list[Path] = []
    bad: list[str] = []
    for path in arguments:
        if path.is_dir():  # what is named like an image but is no regular file is read, and listed below
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and not p.is_dir())
            paths += found
            if not found:
                bad.append(f"{path}: folder holds no image ({', '.join(IMAGE_SUFFIXES)})")
        else:
            paths.append(path)
    good: list[Path] = []
    prepared: list[np.ndarray] = []
    for path in paths:
        try:
            prepared.append(prepare_image(read_gray(path), size))
            good.append(path)
        except ValueError as exc:
            bad.append(str(exc))
    return good, prepared, bad


@torch.no_grad()
def top_k(model: nn.Module, images: np.ndarray, chars: list[str], k: int) -> list[list[tuple[str, float]]]:
    device = next(model.parameters()).device
    x = torch.from_numpy(images).float().div(255).unsqueeze(1).to(device)
    probs = torch.softmax(model(x).float(), 1)
    values, indices = probs.topk(min(k, probs.shape[1]), dim=1)
    return [
        [(chars[int(i)], float(v)) for v, i in zip(vs, ix, strict=True)]
        for vs, ix in zip(values.cpu(), indices.cpu(), strict=True)
    ]


def export_model(model: nn.Module, size: int, path: Path, fmt: str) -> Path:
    """`pt2` (torch.export, loadable with torch.export.load) or `onnx` (needs the onnx and onnxscript packages).
    A model that takes box geometry is exported with it as a second input (N x `GEOMETRY_INPUTS`)."""
    model = model.cpu().eval()
    batch = torch.export.Dim("batch", min=1, max=65536)
    example: tuple[torch.Tensor, ...] = (torch.zeros(2, 1, size, size),)
    dynamic: tuple[dict[int, Any], ...] = ({0: batch},)
    if isinstance(model, GeometryNet):  # two inputs: the images and their boxes' geometry
        example, dynamic = (*example, torch.zeros(2, GEOMETRY_INPUTS)), (*dynamic, {0: batch})
    if fmt == "pt2":
        program = torch.export.export(model, example, dynamic_shapes=dynamic)
        torch.export.save(program, str(path))
        return path
    if fmt == "onnx":
        try:
            import onnx  # noqa: F401
            import onnxscript  # noqa: F401
        except ImportError:
            raise RuntimeError("ONNX export needs `pip install onnx onnxscript`; or use --format pt2") from None
        torch.onnx.export(model, example, str(path), dynamic_shapes=dynamic, dynamo=True)
        return path
    raise ValueError(f"unknown export format {fmt!r}: use pt2 or onnx")
