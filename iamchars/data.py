"""Loading a built dataset in a training script of your own: three lines.

    import torch
    from iamchars.data import CharacterDataset
    train = CharacterDataset("data/processed/iam", "train")
    loader = torch.utils.data.DataLoader(train, batch_size=256, shuffle=True)

`load_split` gives the packed arrays as numpy, `load_geometry` each box's size and place on its line,
`class_to_idx` the class-folder-to-label map for an ImageFolder over `images/{split}`; `CharacterDataset`
wraps the images and labels for torch's DataLoader. Every loader checks the dataset's completion record
first, so a dataset that a stopped or failed build left mixed is refused, never read.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from iamchars.dataset.format import SplitArrays, read_classes, read_split, verify


def _checked(path: str | Path, split: str) -> tuple[SplitArrays, dict]:
    root = Path(path)
    verify(root)
    classes = read_classes(root)
    return read_split(root, split, int(classes["num_classes"])), classes


def load_split(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images N x S x S uint8, white ink on black; labels N int64; chars: the class names, label -> text).

    A class of a merged set (bymerge, letters) is named by its canonical member, as `classes.json` and the
    training metrics name it (`members` there lists the rest)."""
    arrays, classes = _checked(path, split)
    return arrays.images, arrays.labels, [c["char"] for c in classes["classes"]]


def load_geometry(path: str | Path, split: str) -> np.ndarray:
    """(N, 3) float32, in `load_split`'s order: each box's top, bottom and width in its line's ink standard
    deviations from the line's ink mean: the size and height that the crops, scaled to fill their tile, lose
    (what tells o from O; `iamchars train --geometry` feeds it to the classifier)."""
    arrays, _ = _checked(path, split)
    if arrays.geometry is None:
        raise ValueError(f"{path}: built before iamchars stored box geometry; rebuild it")
    return arrays.geometry


def class_to_idx(path: str | Path) -> dict[str, int]:
    """Class folder name -> label, from `classes.json`: pass it to an ImageFolder over `images/{split}` (or
    compare with the one it builds) so that every split gives each image its manifest label. Every split
    holds every class's folder, empty where the split lacks the class, so torchvision's
    `ImageFolder(..., allow_empty=True)` sorts them into this same order."""
    root = Path(path)
    verify(root)
    classes = read_classes(root)
    return {str(c["folder"]): int(c["label"]) for c in classes["classes"]}


class CharacterDataset(torch.utils.data.Dataset):
    """One split as (float tensor 1 x S x S in [0, 1], label); `transform` applies to the tensor."""

    def __init__(
        self, path: str | Path, split: str, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    ) -> None:
        images, labels, self.classes = load_split(path, split)
        self.images = torch.from_numpy(images)
        self.labels = torch.from_numpy(labels)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index].unsqueeze(0).float().div_(255.0)
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])
