"""The on-disk dataset: which files make it, the completion record written last, and reading it back.

`build-dataset` stages every file of a dataset in `OUT/.work/stage/` and `publish` swaps them in, then
writes `dataset.json`, the completion record: each data file's size and SHA-256, the config and input
digests. Every reader (`iamchars train`, `evaluate`, `zoo`, `iamchars.data`) goes through `verify`, which
refuses a folder without the record (a build stopped half-way through the swap, or no dataset at all) or
whose files disagree with it (a file replaced, truncated or edited since), so a mixed or partial dataset is
never read as one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from iamchars.errors import UserError
from iamchars.fileio import atomic_path, read_bytes, write_json, write_table
from iamchars.layout.formats import FORMATS

RECORD = "dataset.json"
FORMAT_VERSION = 2
"""The version of the dataset's files, in its record. Bumped whenever what a reader finds changes (a manifest
column added, renamed or retyped; an array or file added), with its manifest columns in FORMAT_COLUMNS: a test
fails until both are done. Readers refuse a dataset of any other version, naming both."""
SPLITS = ("train", "val", "test")
DATA_FILES = (
    "manifest.parquet",
    "manifest.csv",
    "classes.json",
    "card.md",
    "rejects.csv",
    *(f"arrays/{s}.npz" for s in SPLITS),
)
"""Files whose bytes the record pins (the QA pictures under qa/ and the PAGE/ALTO files under page/ and alto/
are pinned too, whatever their names)."""
LAYOUT_FOLDERS = tuple(FORMATS)
"""The folders `--write` fills, one per layout format (`layout/formats.py`)."""
OWNED = (
    "manifest.parquet",
    "manifest.csv",
    "classes.json",
    "card.md",
    "rejects.csv",
    "arrays",
    "images",
    "qa",
    *LAYOUT_FOLDERS,
)
"""What a dataset owns in its folder: replaced as a whole by a rebuild, nothing else touched."""
FAILED_REJECTS = "failed-rejects.csv"
"""The rejects report of a build that failed, written beside (never into) the dataset it did not replace."""
BUILD_HINT = "make one with `iamchars build-dataset --iam-root IAM_ROOT --out DATASET`"


class ManifestRow(NamedTuple):
    """One exported character: a row of manifest.parquet / manifest.csv, in column order."""

    char_id: str
    """`{word_id}-{char_index:02d}`, the tile's file name."""
    word_id: str
    line_id: str
    form_id: str
    writer_id: str
    split: str
    char: str
    char_index: int
    """Position of the character in its word, from 0."""
    label: int
    """Class index in classes.json."""
    x: int
    """Box on the form page, pixels (IAM's page coordinates)."""
    y: int
    w: int
    h: int
    confidence: float
    """The calibrated probability that the box is right (IoU >= 0.5 with the character's ink box); 1 for true
    boxes."""
    check_iou: float
    """IoU with the self-check box of a separable word; NaN where the word is not separable."""
    bounds_from: str
    """"line image", or "word images" where the line was composed from its words."""
    line_mean_y: float
    """The line's ink mean row, page pixels."""
    line_std: float
    """The line's ink standard deviation, pixels."""
    word_text: str
    word_flag: str
    """IAM's segmentation flag of the word's line: "ok" or "err"."""
    word_box: str
    """"given" (the input boxed the word) or "found" (found in the line's ink: the input boxed only lines)."""
    word_x: int
    """The word's box on the form page, pixels."""
    word_y: int
    word_w: int
    word_h: int
    source: str
    """"gt" (true boxes), "estimated:METHOD", or "pieces" (letters written apart: each is its own piece of ink,
    whose box is exact)."""
    image: str
    """The tile, relative to the dataset folder ("" when tiles are not written)."""


MANIFEST_COLUMNS = list(ManifestRow._fields)
PIECES = "pieces"
"""`source` of the characters of words whose letters are written apart: their boxes are their pieces of ink."""
FORMAT_COLUMNS = {
    1: (
        "char_id word_id line_id form_id writer_id split char char_index label x y w h score check_iou bounds_from "
        "line_mean_y line_std word_text word_flag word_box word_x word_y word_w word_h source image"
    ),
    2: (
        "char_id word_id line_id form_id writer_id split char char_index label x y w h confidence check_iou "
        "bounds_from line_mean_y line_std word_text word_flag word_box word_x word_y word_w word_h source image"
    ),
}
"""The manifest's columns in each format version, space-separated."""
MANIFEST_DTYPES = {
    "char_index": "int32",
    "label": "int32",
    "x": "int32",
    "y": "int32",
    "w": "int32",
    "h": "int32",
    "confidence": "float64",
    "check_iou": "float64",
    "word_x": "int32",
    "word_y": "int32",
    "word_w": "int32",
    "word_h": "int32",
    "line_mean_y": "float64",
    "line_std": "float64",
}


def manifest_table(rows: list[ManifestRow] | list[list[Any]]) -> pd.DataFrame:
    """The manifest as a typed table (the dtypes readers can rely on), in the rows' order."""
    return pd.DataFrame(rows, columns=MANIFEST_COLUMNS).astype(MANIFEST_DTYPES)


def write_manifest(root: Path, manifest: pd.DataFrame) -> None:
    write_table(manifest, root / "manifest.parquet")
    write_table(manifest, root / "manifest.csv")


def write_split(root: Path, split: str, arrays: SplitArrays) -> None:
    """arrays/{split}.npz, as `read_split` reads it back (every new dataset holds the boxes' geometry)."""
    geometry = arrays.geometry
    if geometry is None:
        raise ValueError("a split is written with its boxes' geometry")
    with atomic_path(root / "arrays" / f"{split}.npz") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, images=arrays.images, labels=arrays.labels, geometry=geometry, char_ids=arrays.char_ids)


def write_classes(root: Path, classes: dict[str, Any]) -> None:
    """classes.json: the class list (label, char, folder, members) with the tiles' size, framing and polarity."""
    write_json(root / "classes.json", classes)


class DatasetFormatError(UserError, ValueError):
    """A folder that is not a complete, consistent iamchars dataset; the message names the file."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pinned_files(root: Path) -> list[str]:
    """The files a record pins, relative to the dataset folder, in a fixed order."""
    qa = sorted(p.relative_to(root).as_posix() for p in (root / "qa").rglob("*.png")) if (root / "qa").is_dir() else []
    layout = sorted(p.relative_to(root).as_posix() for name in LAYOUT_FOLDERS for p in (root / name).rglob("*.xml"))
    return [*DATA_FILES, *qa, *layout]


def make_record(root: Path, config_digest: str, inputs_digest: str, images: dict[str, int]) -> dict[str, Any]:
    """The completion record of the dataset files now in `root`."""
    files = {
        rel: {"bytes": (root / rel).stat().st_size, "sha256": sha256_file(root / rel)} for rel in pinned_files(root)
    }
    return {
        "format": FORMAT_VERSION,
        "config_digest": config_digest,
        "inputs_digest": inputs_digest,
        "images_per_split": images,
        "files": files,
    }


def publish(stage: Path, out: Path, record: dict[str, Any]) -> None:
    """Swap a staged dataset into `out`: the old record goes first (from then on readers refuse the folder),
    the old dataset's files are moved aside, the staged ones moved in, and the new record written last. A
    stop anywhere in between leaves a folder without a record, which readers refuse and a rerun of the same
    build completes from its finished work."""
    (out / RECORD).unlink(missing_ok=True)
    old = stage.parent / "replaced"
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir(parents=True)
    for name in (*OWNED, FAILED_REJECTS):
        if (out / name).exists() or (out / name).is_symlink():
            os.replace(out / name, old / name)
    for entry in sorted(stage.iterdir()):
        os.replace(entry, out / entry.name)
    write_json(out / RECORD, record)
    shutil.rmtree(old, ignore_errors=True)


def verify(root: Path) -> dict[str, Any]:
    """The record of a complete dataset in `root`; a DatasetFormatError naming what is wrong otherwise."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(f"{root}: no such dataset folder; {BUILD_HINT}")
    if not (root / RECORD).is_file():
        if any((root / name).exists() for name in OWNED):
            raise DatasetFormatError(
                f"{root}: incomplete dataset (no {RECORD}: a build was stopped while replacing it, or it was made "
                "by an older iamchars); run the same `iamchars build-dataset` again to complete it"
            )
        if (root / "ascii").is_dir() or (root / "lines").is_dir() or (root / "xml").is_dir():
            raise DatasetFormatError(
                f"{root}: is an IAM root, not a dataset; make a dataset from it with "
                f"`iamchars build-dataset --iam-root {root} --out DATASET`"
            )
        raise DatasetFormatError(f"{root}: not an iamchars dataset (no {RECORD}); {BUILD_HINT}")
    try:
        record = json.loads(read_bytes(root / RECORD))
        files = dict(record["files"])
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise DatasetFormatError(
            f"{root / RECORD}: unreadable completion record ({exc}); rebuild the dataset"
        ) from None
    version = record.get("format")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        fix = "upgrade iamchars to read it" if newer else "rebuild it with `iamchars build-dataset`"
        raise DatasetFormatError(
            f"{root}: a dataset of format {version!r}; this iamchars reads format {FORMAT_VERSION} "
            f"({'a newer' if newer else 'an older'} one): {fix}"
        )
    for rel, expected in files.items():
        path = root / rel
        if not path.is_file():
            raise DatasetFormatError(f"{path}: missing from the dataset; rebuild it with `iamchars build-dataset`")
        if path.stat().st_size != expected["bytes"] or sha256_file(path) != expected["sha256"]:
            raise DatasetFormatError(
                f"{path}: differs from the dataset's record (truncated, replaced or edited since it was built); "
                "rebuild it with `iamchars build-dataset`"
            )
    return dict(record)


def read_classes(root: Path) -> dict[str, Any]:
    """classes.json of a verified dataset, checked for the fields every reader needs."""
    path = Path(root) / "classes.json"
    try:
        classes = json.loads(read_bytes(path))
        chars = [c["char"] for c in classes["classes"]]
        if int(classes["num_classes"]) != len(chars):
            raise ValueError(f"num_classes {classes['num_classes']} but {len(chars)} classes listed")
    except (ValueError, KeyError, TypeError) as exc:
        raise DatasetFormatError(f"{path}: not a valid class list ({str(exc)[:120]}); rebuild the dataset") from None
    return dict(classes)


@dataclass
class SplitArrays:
    images: np.ndarray
    """uint8, N x S x S, white ink on black."""
    labels: np.ndarray
    """int64, N, each in 0..num_classes-1."""
    char_ids: np.ndarray
    geometry: np.ndarray | None
    """float32, N x 3 (box top, bottom, width in line-ink stds); None for a dataset built without it."""


def read_split(root: Path, split: str, num_classes: int) -> SplitArrays:
    """One split's packed arrays, checked: shapes that agree, uint8 images, labels inside the class list."""
    if split not in SPLITS:
        raise DatasetFormatError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    path = Path(root) / "arrays" / f"{split}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            images, labels, ids = data["images"], data["labels"].astype(np.int64), data["char_ids"]
            geometry = np.asarray(data["geometry"], np.float32) if "geometry" in data.files else None
    except FileNotFoundError:
        raise DatasetFormatError(f"{path}: packed array missing; {BUILD_HINT}") from None
    except Exception as exc:  # numpy and zipfile raise many types for a truncated or foreign file
        raise DatasetFormatError(f"{path}: not a readable packed split ({str(exc)[:120]})") from None
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DatasetFormatError(f"{path}: images must be uint8 N x S x S, got {images.dtype} {images.shape}")
    if len(labels) != len(images) or len(ids) != len(images):
        raise DatasetFormatError(f"{path}: {len(images)} images but {len(labels)} labels and {len(ids)} ids")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetFormatError(
            f"{path}: label {int(labels.max())} outside the {num_classes} classes of classes.json; rebuild the dataset"
        )
    if geometry is not None and geometry.shape != (len(images), 3):
        raise DatasetFormatError(f"{path}: geometry must be N x 3, got {geometry.shape}")
    return SplitArrays(images, labels, ids, geometry)
