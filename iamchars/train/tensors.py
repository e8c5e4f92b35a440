"""The packed arrays, loaded once onto the device as uint8, and augmented there in whole batches.

No per-sample Python loader runs in the hot loop: a batch is an index into a device tensor, and every
augmentation (affine, elastic, brightness/contrast, erasing) is one batched tensor operation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from iamchars.dataset.format import SPLITS, SplitArrays, read_classes, read_split, verify


@dataclass
class Split:
    images: torch.Tensor
    """uint8, N x S x S, on the device."""
    labels: torch.Tensor
    """int64, N, on the device."""
    char_ids: np.ndarray
    geometry: torch.Tensor | None = None
    """float32, N x `GEOMETRY_INPUTS`, on the device; None for a dataset built before it was stored."""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, keep: np.ndarray) -> Split:
        """The samples where `keep` (a boolean array, one per sample) is true."""
        index = torch.from_numpy(np.flatnonzero(keep)).to(self.labels.device)
        geometry = None if self.geometry is None else self.geometry[index]
        return Split(self.images[index], self.labels[index], self.char_ids[keep], geometry)


@dataclass
class Dataset:
    train: Split
    val: Split
    test: Split
    classes: dict
    size: int

    @property
    def num_classes(self) -> int:
        return int(self.classes["num_classes"])

    @property
    def class_chars(self) -> list[str]:
        return [c["char"] for c in self.classes["classes"]]


def to_device(arrays: SplitArrays, device: torch.device) -> Split:
    """A split's checked arrays as device tensors; the geometry gains its 'known' flag (all 1)."""
    geometry = arrays.geometry
    known = None if geometry is None else np.concatenate([geometry, np.ones((len(geometry), 1))], 1)
    return Split(
        torch.from_numpy(arrays.images).to(device),
        torch.from_numpy(arrays.labels).to(device),
        arrays.char_ids,
        None if known is None else torch.from_numpy(known.astype(np.float32)).to(device),
    )


def load_dataset(root: Path, device: torch.device) -> Dataset:
    """A complete dataset (its completion record checked against its files) onto `device`."""
    root = Path(root)
    verify(root)
    classes = read_classes(root)
    splits = {s: to_device(read_split(root, s, int(classes["num_classes"])), device) for s in SPLITS}
    size = int(splits["train"].images.shape[-1]) if len(splits["train"]) else int(classes.get("image_size", 32))
    return Dataset(splits["train"], splits["val"], splits["test"], classes, size)


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 N x S x S -> float N x 1 x S x S in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)


def balanced_weights(labels: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """Per-sample weights that draw class c with probability proportional to count(c) ** (1 - power):
    power 1 draws every class equally often, 0.5 (the default) halfway, on a log scale, between that and the
    data's own frequencies, so rare capitals are seen more without starving the common letters."""
    counts = torch.bincount(labels).float()
    return counts[labels].pow(-power)


def batches(
    n: int,
    batch_size: int,
    generator: torch.Generator | None,
    device: torch.device,
    drop_last: bool = False,
    weights: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """Index batches over n items, shuffled with `generator` (None: in order); with `weights`, an epoch is n
    draws with replacement in proportion to them (class-balanced sampling)."""
    if generator is not None and weights is not None:
        order = torch.multinomial(weights.to(generator.device), n, replacement=True, generator=generator).to(device)
    elif generator is not None:
        order = torch.randperm(n, generator=generator, device=generator.device).to(device)
    else:
        order = torch.arange(n, device=device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start : start + batch_size]


@dataclass(frozen=True)
class Augment:
    rotate_deg: float = 10.0
    shear: float = 0.25
    scale: tuple[float, float] = (0.85, 1.12)
    translate: float = 0.08
    """fraction of the image side"""
    elastic: float = 0.04
    """displacement amplitude as a fraction of the image side"""
    elastic_grid: int = 4
    brightness: float = 0.25
    contrast: float = 0.3
    erase_p: float = 0.3
    erase_max: float = 0.35


def jitter_geometry(
    geometry: torch.Tensor, generator: torch.Generator, sigma: float = 0.1, drop: float = 0.1
) -> torch.Tensor:
    """Training noise on the box geometry: `sigma` line stds on each measure (a box is a few pixels off), and
    the whole of it dropped (all 0, 'unknown') for a `drop` share of the batch, so that the model still reads
    an image that comes with no line."""
    noise = torch.randn(geometry.shape, generator=generator, device=generator.device).to(geometry.device) * sigma
    noise[:, -1] = 0.0  # the 'known' flag stays exact
    keep = torch.rand(len(geometry), 1, generator=generator, device=generator.device).to(geometry.device) >= drop
    return (geometry + noise) * keep


def augment(x: torch.Tensor, generator: torch.Generator, cfg: Augment = Augment()) -> torch.Tensor:
    """Random affine + elastic warp (one grid_sample), brightness/contrast and erasing, for a whole batch."""
    n, _, h, w = x.shape
    dev = x.device

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*shape or (n,), generator=generator, device=generator.device).to(dev) * (hi - lo) + lo

    angle = uniform(-cfg.rotate_deg, cfg.rotate_deg) * math.pi / 180
    shear = uniform(-cfg.shear, cfg.shear)
    scale = uniform(*cfg.scale)
    tx, ty = uniform(-cfg.translate, cfg.translate) * 2, uniform(-cfg.translate, cfg.translate) * 2
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin + shear * cos, tx], 1), torch.stack([sin, cos + shear * sin, ty], 1)], 1
    )
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    if cfg.elastic > 0:
        coarse = uniform(-1, 1, n, 2, cfg.elastic_grid, cfg.elastic_grid) * cfg.elastic * 2
        field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
        grid = grid + field.permute(0, 2, 3, 1)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    contrast = uniform(1 - cfg.contrast, 1 + cfg.contrast).view(n, 1, 1, 1)
    brightness = uniform(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1) * 0.5
    out = (out * contrast + brightness * (out > 0.05)).clamp_(0, 1)
    if cfg.erase_p > 0:
        erase = uniform(0, 1) < cfg.erase_p
        eh = (uniform(0.1, cfg.erase_max) * h).long().clamp(min=1)
        ew = (uniform(0.1, cfg.erase_max) * w).long().clamp(min=1)
        y0 = (uniform(0, 1) * (h - eh)).long()
        x0 = (uniform(0, 1) * (w - ew)).long()
        rows = torch.arange(h, device=dev).view(1, h, 1)
        cols = torch.arange(w, device=dev).view(1, 1, w)
        box = (
            (rows >= y0.view(n, 1, 1))
            & (rows < (y0 + eh).view(n, 1, 1))
            & (cols >= x0.view(n, 1, 1))
            & (cols < (x0 + ew).view(n, 1, 1))
        )
        out = out.masked_fill((box & erase.view(n, 1, 1)).unsqueeze(1), 0.0)
    return out
