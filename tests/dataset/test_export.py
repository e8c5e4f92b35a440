from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from iamchars.cli import app
from iamchars.config import load_config
from iamchars.dataset import export
from iamchars.dataset.classes import class_set
from iamchars.dataset.crops import box_geometry, crop_box, normalize_crop
from iamchars.dataset.export import MANIFEST_COLUMNS, build_dataset
from iamchars.dataset.reliability import boxes_right

pytestmark = pytest.mark.slow  # dataset builds

runner = CliRunner()
CONTRACT = [
    "char_id",
    "word_id",
    "line_id",
    "form_id",
    "writer_id",
    "split",
    "char",
    "char_index",
    "label",
    "x",
    "y",
    "w",
    "h",
    "confidence",
]


def _build(root: Path, out: Path, *overrides: str) -> dict:
    cfg = load_config(None, ["export.workers=1", 'segment.method="refined"', *overrides])
    return build_dataset(root, out, cfg, progress=False)


@pytest.fixture()
def built(built_dataset: Path) -> Path:
    return built_dataset


def test_class_sets_match_emnist_sizes_and_fold_case_safely() -> None:
    sizes = {name: len(class_set(name).classes) for name in ("byclass", "bymerge", "letters", "digits")}
    assert sizes == {"byclass": 62, "bymerge": 47, "letters": 26, "digits": 10}
    assert len(class_set("byclass", punctuation=True).classes) == 62 + 16
    for name in ("byclass", "bymerge", "letters", "digits"):
        cs = class_set(name, punctuation=True)
        folders = [cs.folder(i) for i in range(len(cs.classes))]
        assert len({f.lower() for f in folders}) == len(folders)
        assert sorted(folders) == folders  # ImageFolder's sorted order is the label order
    merge = class_set("bymerge").mapping
    assert merge["c"] == merge["C"] and merge["a"] != merge["A"]
    letters = class_set("letters").mapping
    assert letters["q"] == letters["Q"] == 16 and "1" not in letters
    with pytest.raises(ValueError, match="unknown class set"):
        class_set("balanced-ish")


def test_crops_are_white_on_black_centred_and_aspect_preserving() -> None:
    crop = np.full((40, 10), 250, np.uint8)
    crop[5:35, 3:7] = 20  # a dark vertical bar
    tile = normalize_crop(crop, paper=250, ink=20, size=32)
    assert tile.shape == (32, 32) and tile.dtype == np.uint8
    assert tile.max() == 255 and tile[0, 0] == 0
    ys, xs = np.nonzero(tile > 128)
    assert abs((xs.min() + xs.max()) / 2 - 15.5) <= 1.5 and abs((ys.min() + ys.max()) / 2 - 15.5) <= 1.5
    assert (ys.max() - ys.min()) > 2.5 * (xs.max() - xs.min())


def test_manifest_contract_and_outputs(built: Path, synth_corpus: Path) -> None:
    manifest = pd.read_parquet(built / "manifest.parquet")
    assert list(manifest.columns) == MANIFEST_COLUMNS and set(CONTRACT) <= set(manifest.columns)
    csv = pd.read_csv(built / "manifest.csv", keep_default_na=False, dtype={"char": str, "writer_id": str})
    assert len(csv) == len(manifest) and csv["char_id"].tolist() == manifest["char_id"].tolist()
    assert manifest["char_id"].is_unique
    assert manifest["confidence"].between(0, 1).all()
    assert set(manifest["char"]) <= set(class_set("byclass").mapping)
    assert (manifest["word_flag"] == "ok").all()  # err words are excluded by default
    assert manifest.groupby("writer_id")["split"].nunique().max() == 1
    classes = json.loads((built / "classes.json").read_text())
    assert classes["num_classes"] == 62 and "white ink" in classes["polarity"]
    by_char = {c["char"]: c["label"] for c in classes["classes"]}
    assert (manifest["label"] == manifest["char"].map(by_char)).all()
    total = 0
    for split in ("train", "val", "test"):
        with np.load(built / "arrays" / f"{split}.npz") as data:
            images, labels, ids, geometry = data["images"], data["labels"], data["char_ids"], data["geometry"]
        part = manifest[manifest["split"] == split]
        assert images.dtype == np.uint8 and images.shape[1:] == (32, 32) and len(images) == len(part)
        assert labels.tolist() == part["label"].tolist() and ids.tolist() == part["char_id"].tolist()
        assert geometry.dtype == np.float32 and np.array_equal(geometry, box_geometry(part))
        total += len(images)
    assert total == len(manifest)
    # each box's geometry is its place on its line: ascenders start higher than x-height letters, all of
    # them end near the baseline, and only descenders reach far below it
    top, bottom = box_geometry(manifest)[:, 0], box_geometry(manifest)[:, 1]
    tall, short, deep = (manifest["char"].isin(list(group)).to_numpy() for group in ("bdhklt", "aceonrsuvxz", "gpqy"))
    assert np.median(top[tall]) < np.median(top[short]) - 0.5
    assert np.median(bottom[deep]) > np.median(bottom[short]) + 0.5
    lines = manifest.assign(bottom=manifest["y"] + manifest["h"]).groupby("line_id")
    assert (lines["line_mean_y"].nunique() == 1).all() and (manifest["line_std"] > 0).all()
    assert (lines["y"].min() < lines["line_mean_y"].first()).all()
    assert (lines["line_mean_y"].first() < lines["bottom"].max()).all()
    card = (built / "card.md").read_text()
    assert "white ink" in card and "| train |" in card
    # the confidence measured on the corpus's own true boxes, and what each threshold keeps
    trust = card.split("## How far to trust each box")[1].split("\n## ")[0]
    assert "![reliability](qa/reliability.png)" in trust and "Measured against true boxes (" in trust
    rows = [r for r in trust.splitlines() if r.startswith("| 0.")]
    assert len(rows) == 6 and rows[0].startswith("| 0.00 | 100.0% |") and "observed share right" in trust
    truth = pd.read_csv(synth_corpus / "chars_gt.csv", dtype={"word_id": str})
    right = boxes_right(manifest, truth)
    observed = float(rows[0].split("|")[4].strip().rstrip("%")) / 100
    assert abs(observed - right.mean()) < 0.001  # the share of the manifest's boxes that are right
    expected = float(rows[0].split("|")[3].strip().rstrip("%")) / 100
    assert abs(expected - manifest["confidence"].mean()) < 0.001
    for picture in ("overlays.png", "overview.png", "lowest_confidence.png", "reliability.png"):
        image = cv2.imread(str(built / "qa" / picture))
        assert image is not None and image.shape[0] > 30
    assert len(list((built / "qa" / "classes").glob("*.png"))) == manifest["label"].nunique()


def test_a_dataset_is_complete_or_refused(built: Path, synth_corpus: Path, tmp_path: Path) -> None:
    from iamchars.dataset.format import RECORD, DatasetFormatError, verify

    record = verify(built)
    assert set(record["files"]) >= {"manifest.parquet", "arrays/train.npz", "classes.json", "qa/overview.png"}
    out = tmp_path / "ds"
    shutil.copytree(built, out)
    before = (out / "manifest.parquet").read_bytes()

    def disk_full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError), pytest.MonkeyPatch.context() as patch:  # failing while staging replaces nothing
        patch.setattr(export, "make_record", disk_full)
        _build(synth_corpus, out, "export.size=28")
    assert (out / "manifest.parquet").read_bytes() == before and verify(out) == record
    assert not (out / ".work" / "stage").exists() and (out / ".work" / "forms").is_dir()  # kept for a rerun
    (out / "classes.json").write_text("{}")
    with pytest.raises(DatasetFormatError, match=r"classes\.json: differs from the dataset's record"):
        verify(out)
    (out / RECORD).unlink()
    with pytest.raises(DatasetFormatError, match="incomplete dataset"):
        verify(out)
    _build(synth_corpus, out)  # the same build completes it
    assert verify(out)["files"]["manifest.parquet"] == record["files"]["manifest.parquet"]


def test_same_input_gives_a_byte_identical_manifest(built: Path, synth_corpus: Path, tmp_path: Path) -> None:
    _build(synth_corpus, tmp_path / "again")
    for name in ("manifest.parquet", "manifest.csv", "classes.json"):
        assert (tmp_path / "again" / name).read_bytes() == (built / name).read_bytes(), name
    for split in ("train", "test"):
        assert (tmp_path / "again" / "arrays" / f"{split}.npz").read_bytes() == (
            built / "arrays" / f"{split}.npz"
        ).read_bytes()


def test_a_killed_run_resumes_where_it_stopped(
    built: Path, synth_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "resumed"
    real = export.process_form
    done: list[str] = []

    def dies_on_the_fourth_form(job: export.FormJob) -> dict:
        if len(done) == 3:
            raise KeyboardInterrupt("killed")
        done.append(job.form_id)
        return real(job)

    monkeypatch.setattr(export, "process_form", dies_on_the_fourth_form)
    with pytest.raises(KeyboardInterrupt):
        _build(synth_corpus, out)
    assert len(list((out / ".work" / "forms").glob("*.npz"))) == 3
    monkeypatch.setattr(export, "process_form", real)
    summary = _build(synth_corpus, out)
    assert summary["timings"]["forms_resumed"] == 3
    assert (out / "manifest.parquet").read_bytes() == (built / "manifest.parquet").read_bytes()
    assert not (out / ".work").exists()  # a finished run cleans its working files
    # a changed input or parameter invalidates the finished forms of a killed run instead of mixing two runs
    copy = tmp_path / "iam"
    shutil.copytree(synth_corpus, copy)

    def killed_run(root: Path, *overrides: str) -> None:
        done.clear()
        monkeypatch.setattr(export, "process_form", dies_on_the_fourth_form)
        with pytest.raises(KeyboardInterrupt):
            _build(root, out, *overrides)
        monkeypatch.setattr(export, "process_form", real)

    killed_run(synth_corpus)
    assert _build(copy, out)["timings"]["forms_resumed"] == 0  # another root
    killed_run(copy)
    with open(copy / "ascii" / "words.txt", "a") as handle:
        handle.write("# edited\n")
    assert _build(copy, out)["timings"]["forms_resumed"] == 0
    killed_run(synth_corpus)
    summary = _build(synth_corpus, out, "export.size=28")
    assert summary["timings"]["forms_resumed"] == 0
    with np.load(out / "arrays" / "train.npz") as data:
        assert data["images"].shape[1:] == (28, 28)
    killed_run(synth_corpus)
    assert _build(synth_corpus, out)["timings"]["forms_resumed"] == 3  # same input and parameters: resumed


def test_corrupted_images_are_listed_in_rejects_and_the_run_goes_on(synth_corpus: Path, tmp_path: Path) -> None:
    root = tmp_path / "iam"
    shutil.copytree(synth_corpus, root)
    pngs = sorted((root / "lines").rglob("*.png"))
    pngs[0].write_bytes(pngs[0].read_bytes()[:60])  # truncated
    pngs[5].write_bytes(b"this is not a png at all")  # undecodable
    pngs[9].unlink()  # missing, and so are its words' images: nothing left of that line
    for word_png in (root / "words").rglob(f"{pngs[9].stem}-*.png"):
        word_png.unlink()
    summary = _build(root, tmp_path / "ds")
    rejects = pd.read_csv(tmp_path / "ds" / "rejects.csv", keep_default_na=False).set_index("item_id")
    for png in (pngs[0], pngs[5], pngs[9]):
        assert png.stem in rejects.index, png.stem
    manifest = pd.read_parquet(tmp_path / "ds" / "manifest.parquet")
    assert not (manifest["line_id"] == pngs[9].stem).any()
    # the two broken line images were composed from their words' own images, and say so
    for png in (pngs[0], pngs[5]):
        assert rejects.loc[[png.stem], "reason"].str.contains("its words' own images were used").any()
        rows = manifest[manifest["line_id"] == png.stem]
        assert len(rows) > 0 and (rows["bounds_from"] == "word images").all()
    assert (manifest.loc[~manifest["line_id"].isin({pngs[0].stem, pngs[5].stem}), "bounds_from"] == "line image").all()
    assert summary["characters"] > 0 and summary["rejects"] >= 3


def test_words_tgz_alone_is_enough(synth_corpus: Path, tmp_path: Path) -> None:
    """Many users download only words.tgz: each line is composed from its words' images, and the boxes are
    as good as those found on the whole line images."""
    from iamchars.segment.evaluate import evaluate

    root = tmp_path / "iam"
    shutil.copytree(synth_corpus, root, ignore=shutil.ignore_patterns("lines"))
    summary = _build(root, tmp_path / "ds", "export.punctuation=true")
    assert any("lines/ folder is missing" in w for w in summary["warnings"]) and summary["rejects"] == 0
    words_only = pd.read_parquet(tmp_path / "ds" / "manifest.parquet")
    assert (words_only["bounds_from"] == "word images").all()
    _build(synth_corpus, tmp_path / "full", "export.punctuation=true")
    full = pd.read_parquet(tmp_path / "full" / "manifest.parquet")
    gt = pd.read_csv(synth_corpus / "chars_gt.csv", keep_default_na=False, dtype={"char": str})
    gt = gt[gt["word_id"].isin(set(full["word_id"]))]
    score_words = evaluate(gt, words_only)[0]["all_true_characters"]["mean_iou"]
    score_full = evaluate(gt, full)[0]["all_true_characters"]["mean_iou"]
    assert len(words_only) == len(full) and score_words > score_full - 0.03


def test_gt_boxes_err_words_punctuation_and_min_confidence(synth_corpus: Path, tmp_path: Path) -> None:
    gt_path = synth_corpus / "chars_gt.csv"
    summary = _build(
        synth_corpus,
        tmp_path / "gt",
        f"export.boxes='gt:{gt_path}'",
        "export.include_err=true",
        "export.punctuation=true",
    )
    manifest = pd.read_parquet(tmp_path / "gt" / "manifest.parquet")
    gt = pd.read_csv(gt_path, keep_default_na=False, dtype={"char": str})
    merged = manifest.merge(gt, on=["word_id", "char_index"], suffixes=("", "_gt"))
    assert len(merged) == len(manifest) == len(gt)  # every true character, punctuation and err words too
    assert (merged[["x", "y", "w", "h"]].to_numpy() == merged[["x_gt", "y_gt", "w_gt", "h_gt"]].to_numpy()).all()
    assert (manifest["source"] == "gt").all() and (manifest["word_flag"] == "err").any()
    assert (manifest["confidence"] == 1.0).all() and "reliability.png" not in os.listdir(tmp_path / "gt" / "qa")
    assert summary["excluded_by_class_set"] == {}
    strict = _build(synth_corpus, tmp_path / "strict", "export.min_confidence=0.9")
    assert strict["below_min_confidence"] > 0
    assert pd.read_parquet(tmp_path / "strict" / "manifest.parquet")["confidence"].min() >= 0.9
    assert "." in _build(synth_corpus, tmp_path / "nopunct")["excluded_by_class_set"]


def test_bad_box_source_is_a_clear_error(synth_corpus: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "build-dataset",
            "--method",
            "refined",
            "--iam-root",
            str(synth_corpus),
            "--out",
            str(tmp_path / "x"),
            "--boxes",
            "gt:/nonexistent/chars_gt.csv",
        ],
    )
    assert result.exit_code == 1 and "true-box file /nonexistent/chars_gt.csv: file not found" in result.output


def test_line_crops_keep_size_and_height_that_char_crops_lose() -> None:
    from iamchars.dataset.crops import line_window

    line = np.full((60, 200), 250, np.uint8)
    line[20:40, 20:32] = 20  # a small letter on the x-height band (an 'o')
    line[10:40, 60:80] = 20  # a tall one (an 'O'), same baseline
    line[36:40, 120:124] = 20  # a full stop, on the baseline
    line[20:40, 33:40] = 20  # a neighbour touching the 'o': blanked in its window
    boxes = {"o": (20, 20, 12, 20), "O": (60, 10, 20, 30), ".": (120, 36, 4, 4)}
    tiles = {}
    for name, box in boxes.items():
        window = line_window(line, box, mean=30.0, std=10.0, k=3.0, paper=250)
        assert window is not None and window.shape == (60, 60)
        tiles[name] = normalize_crop(window, paper=250, ink=20, size=32)
    rows = {name: np.nonzero(tile.max(axis=1) > 128)[0] for name, tile in tiles.items()}
    assert len(rows["O"]) > 1.3 * len(rows["o"])  # the capital stays bigger
    assert abs(rows["o"].max() - rows["O"].max()) <= 1 and abs(rows["."].max() - rows["o"].max()) <= 1  # baseline
    assert len(rows["."]) <= 3  # and the full stop stays small
    assert (tiles["o"][:, 24:] == 0).all()  # nothing of the neighbour
    # the EMNIST framing makes 'o' and 'O' the same size
    char_rows = [
        np.nonzero(normalize_crop(crop_box(line, b), 250, 20, 32).max(axis=1) > 128)[0] for b in boxes.values()
    ]
    assert len(char_rows[0]) == len(char_rows[1])
    assert line_window(line, (5, 5, 0, 3), 30.0, 10.0, 3.0, 250) is None


def test_qa_pictures_carry_a_title_and_the_overlays_a_confidence_legend(built: Path) -> None:
    from iamchars.dataset import qa
    from iamchars.viz.overlay import titled

    band = titled(np.full((5, 400), 255, np.uint8), "a title")[:26]
    assert band.min() < 100  # the title's ink
    overlay = cv2.imread(str(built / "qa" / "overlays.png"))
    head = overlay[:26].astype(int)
    coloured = np.abs(head[..., 2] - head[..., 1]) > 100  # the red..green ramp of the confidence legend
    assert coloured[:, overlay.shape[1] // 2 :].any() and not coloured[:, : overlay.shape[1] // 4].any()
    sheets = [built / "qa" / "lowest_confidence.png", built / "qa" / "reliability.png"]
    for sheet in [*sheets, *sorted((built / "qa" / "classes").glob("*.png"))[:3]]:
        image = cv2.imread(str(sheet), cv2.IMREAD_GRAYSCALE)
        assert image[:26].max() == 255 and image[:26].min() < 100, sheet.name  # a white band with a title
    assert qa.confidence_colors(np.array([0.0, 1.0])).tolist() == [[0, 0, 255], [0, 200, 0]]  # the legend's two ends


def test_lines_without_word_boxes_get_their_words_found_with_iam_ids(pen_dev: Path, tmp_path: Path) -> None:
    from tests.corpora import subset

    forms = ["p00-000x", "p00-001x", "p00-002x"]
    boxed = subset(pen_dev, tmp_path / "boxed", forms)
    lines_only = subset(pen_dev, tmp_path / "lines-only", forms)
    (lines_only / "ascii" / "words.txt").unlink()
    overrides = ["segment.method='refined'", "export.include_err=true", "export.punctuation=true"]
    cfg = load_config(None, overrides)
    summary = build_dataset(lines_only, tmp_path / "found", cfg, progress=False)
    found = pd.read_parquet(tmp_path / "found" / "manifest.parquet")
    assert set(found["word_box"]) == {"found"} and summary["word_boxes"]["found"] > 0
    true_ids = {r.split()[0] for r in (boxed / "ascii" / "words.txt").read_text().splitlines() if not r.startswith("#")}
    assert set(found["word_id"]) <= true_ids  # line id + the word's index: a truth file keyed by IAM ids scores them
    card = (tmp_path / "found" / "card.md").read_text()
    assert "words' boxes were **found** in their lines' ink" in card
    ignore = load_config(None, [*overrides, "parse.ignore_word_boxes=true"])
    build_dataset(boxed, tmp_path / "ignored", ignore, progress=False)
    ignored = pd.read_parquet(tmp_path / "ignored" / "manifest.parquet")
    pd.testing.assert_frame_equal(found, ignored)  # words.txt present but ignored: the same boxes
    given = build_dataset(boxed, tmp_path / "given", cfg, progress=False)
    assert given["word_boxes"] == {"given": given["word_boxes"]["given"], "found": 0}
    assert "all " in (tmp_path / "given" / "card.md").read_text().split("- Input:")[1].split("\n")[0]
