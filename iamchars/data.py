"""Loading a built dataset in a training script of your own: three lines.

    from iamchars.data import CharacterDataset
    train = CharacterDataset("data/processed/iam", "train")
    loader = torch.utils.data.DataLoader(train, batch_size=256, shuffle=True)

`load_split` gives the packed arrays as numpy, `load_geometry` each box's size and place on its line;
`CharacterDataset` wraps the images and labels for torch's DataLoader.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from iamchars.errors import UserError

SPLITS = ("train", "val", "test")


def load_split(path: str | Path, split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(images N x S x S uint8, white ink on black; labels N int64; chars: the class names, label -> text).

    A class of a merged set (bymerge, letters) is named by its canonical member, as `classes.json` and the
    training metrics name it (`members` there lists the rest)."""
    root = Path(path)
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    try:
        classes = json.loads((root / "classes.json").read_text())
        with np.load(root / "arrays" / f"{split}.npz", allow_pickle=False) as data:
            images, labels = data["images"], data["labels"].astype(np.int64)
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: missing; is {root} a dataset from `iamchars build-dataset`?") from None
    except (KeyError, ValueError, OSError) as exc:
        raise UserError(f"{root}: not a readable iamchars dataset ({exc})") from None
    chars = [c["char"] for c in classes["classes"]]
    return images, labels, chars


def load_geometry(path: str | Path, split: str) -> np.ndarray:
    """(N, 3) float32, in `load_split`'s order: each box's top, bottom and width in its line's ink standard
    deviations from the line's ink mean: the size and height that the crops, scaled to fill their tile, lose
    (what tells o from O; `iamchars train --geometry` feeds it to the classifier)."""
    root = Path(path)
    if split not in SPLITS:
        raise UserError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    try:
        with np.load(root / "arrays" / f"{split}.npz", allow_pickle=False) as data:
            return np.asarray(data["geometry"], np.float32)
    except FileNotFoundError as exc:
        raise UserError(f"{exc.filename}: missing; is {root} a dataset from `iamchars build-dataset`?") from None
    except KeyError:
        raise UserError(f"{root}: built before iamchars stored box geometry; rebuild it") from None


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
