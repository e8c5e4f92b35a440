"""`iamchars.data`, the public loader of a built dataset: numpy, pandas, torch and ImageFolder all give each
image its manifest label."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from iamchars.data import load_split
from iamchars.dataset.crops import box_geometry
from iamchars.errors import UserError

pytestmark = pytest.mark.slow  # on a built dataset


@pytest.fixture()
def built(built_dataset: Path) -> Path:
    return built_dataset


def image_folder_classes(split_root: Path) -> dict[str, int]:
    """torchvision's ImageFolder rule (`find_classes`): the sorted names of the sub-folders, each indexed by its
    place in that order, whatever the names say."""
    return {name: i for i, name in enumerate(sorted(e.name for e in os.scandir(split_root) if e.is_dir()))}


def test_image_folder_gives_every_image_its_label_in_every_split(built: Path) -> None:
    from iamchars.data import class_to_idx

    manifest = pd.read_parquet(built / "manifest.parquet").set_index("char_id")
    counts = manifest.groupby("split")["label"].nunique()
    assert counts.min() < len(json.loads((built / "classes.json").read_text())["classes"])  # splits lack classes
    for split in ("train", "val", "test"):
        split_root = built / "images" / split
        assert image_folder_classes(split_root) == class_to_idx(built)  # empty folders hold the places
        count = 0
        for folder, index in image_folder_classes(split_root).items():
            for png in sorted((split_root / folder).glob("*.png")):
                image = cv2.imread(str(png), cv2.IMREAD_UNCHANGED)
                assert image.shape == (32, 32) and image.dtype == np.uint8
                row = manifest.loc[png.stem]
                assert row["label"] == index and row["image"] == str(png.relative_to(built))
                count += 1
        assert count == int((manifest["split"] == split).sum())


def test_loading_api_numpy_pandas_and_torch(built: Path) -> None:
    import torch

    from iamchars.data import CharacterDataset, load_geometry, load_split
    from iamchars.errors import UserError

    images, labels, chars = load_split(built, "train")
    manifest = pd.read_parquet(built / "manifest.parquet")
    train = manifest[manifest["split"] == "train"]
    assert images.shape == (len(train), 32, 32) and images.dtype == np.uint8
    assert [chars[i] for i in labels] == train["char"].tolist() and len(chars) == 62
    dataset = CharacterDataset(built, "train")
    assert len(dataset) == len(train) and dataset.classes == chars
    image, label = dataset[3]
    assert image.shape == (1, 32, 32) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    assert label == labels[3] and torch.equal((image[0] * 255).round().byte(), torch.from_numpy(images[3]))
    batch, batch_labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=8)))
    assert batch.shape == (8, 1, 32, 32) and batch_labels.tolist() == labels[:8].tolist()
    geometry = load_geometry(built, "train")
    assert geometry.shape == (len(train), 3) and np.array_equal(geometry, box_geometry(train))
    flipped = CharacterDataset(built, "val", transform=lambda t: 1 - t)
    assert flipped[0][0].max() == 1.0  # the paper, now white
    with pytest.raises(UserError, match=r"no such dataset folder.*iamchars build-dataset"):
        load_split(built / "nowhere", "train")
    with pytest.raises(UserError, match="split must be one of"):
        load_split(built, "dev")


def test_the_format_version_means_something(built: Path, tmp_path: Path) -> None:
    from iamchars.dataset.format import FORMAT_COLUMNS, FORMAT_VERSION, MANIFEST_COLUMNS, RECORD, verify

    # a manifest column added, renamed or moved fails here until FORMAT_VERSION is bumped with its columns
    assert FORMAT_COLUMNS[FORMAT_VERSION].split() == MANIFEST_COLUMNS
    assert verify(built)["format"] == FORMAT_VERSION
    for version, word in ((FORMAT_VERSION + 1, "newer"), (FORMAT_VERSION - 1, "older")):
        copy = tmp_path / f"v{version}"
        shutil.copytree(built, copy)
        record = json.loads((copy / RECORD).read_text())
        (copy / RECORD).write_text(json.dumps({**record, "format": version}))
        with pytest.raises(UserError, match=rf"a dataset of format {version}; this iamchars reads format .* {word}"):
            load_split(copy, "train")
