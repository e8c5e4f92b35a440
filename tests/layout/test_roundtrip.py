"""PAGE and ALTO round trips: pen-dev forms written as PAGE XML and ALTO pages (tools/iam_to_layout.py), built
with `build-dataset --corpus`, give the very boxes the IAM layout gives; the files written back validate
against the official PAGE 2019 and ALTO 4 schemas."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from lxml import etree
from typer.testing import CliRunner

from iamchars.cli import app
from tests.corpora import subset
from tests.layout.nodes import added_nodes
from tests.layout.schemas import schema
from tools.iam_to_layout import iam_to_layout

pytestmark = pytest.mark.slow  # dataset builds

FORMS = ["p00-000x", "p00-001x", "p00-002x", "p00-003x"]
SETTINGS = ["--set", "segment.method='refined'", "--set", "segment.ink_threshold=180"]
"""The refined method (seconds, not minutes) and pen-dev's own ink threshold: lines.txt carries it, a PAGE or
ALTO file has no place for it."""
COMPARED = [
    "char",
    "x",
    "y",
    "w",
    "h",
    "confidence",
    "split",
    "writer_id",
    "word_box",
    "word_x",
    "word_y",
    "word_w",
    "word_h",
]
runner = CliRunner()


def build(tmp: Path, *args: str) -> pd.DataFrame:
    out = tmp / f"ds{len(list(tmp.glob('ds*')))}"
    result = runner.invoke(
        app, ["build-dataset", *args, "--out", str(out), "--punctuation", "--include-err", "--no-progress", *SETTINGS]
    )
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out / "manifest.parquet")


def boxes(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest[COMPARED].sort_values(COMPARED).reset_index(drop=True)


@pytest.mark.parametrize("fmt", ["page", "alto"])
def test_pen_dev_as_page_or_alto_gives_the_iam_layouts_boxes(pen_dev: Path, tmp_path: Path, fmt: str) -> None:
    iam = subset(pen_dev, tmp_path / "iam", FORMS)
    pages = tmp_path / fmt
    assert iam_to_layout(iam, pages, fmt) == len(FORMS)
    for xml in pages.glob("*.xml"):
        assert schema(fmt).validate(etree.parse(str(xml))), schema(fmt).error_log.last_error
    from_iam = build(tmp_path, "--iam-root", str(iam))
    from_layout = build(tmp_path, "--corpus", str(pages), "--format", fmt, "--write", fmt)
    assert len(from_iam) > 100
    pd.testing.assert_frame_equal(boxes(from_iam), boxes(from_layout))
    assert set(from_layout["word_box"]) == {"given"}
    assert from_layout["word_id"].str.startswith("pg-p00").all()
    written = sorted((tmp_path / "ds1" / fmt).glob("*.xml"))
    assert [p.name for p in written] == [f"{f}.xml" for f in FORMS]
    glyphs = 0
    confidences: list[float] = []
    for xml in written:
        tree = etree.parse(str(xml))
        assert schema(fmt).validate(tree), schema(fmt).error_log.last_error
        glyphs += len(tree.findall(".//{*}Glyph"))
        confidences += [
            float(g.get("GC") if fmt == "alto" else g.find("{*}TextEquiv").get("conf"))
            for g in tree.findall(".//{*}Glyph")
        ]
        added = added_nodes((pages / xml.name).read_bytes(), xml.read_bytes())
        assert {etree.QName(e).localname for e in added} == {"Glyph"}  # nothing but Glyphs in the user's words
    assert glyphs == len(from_layout)
    assert sorted(confidences) == sorted(from_layout["confidence"].round(4).tolist())  # each glyph its confidence


@pytest.mark.parametrize("fmt", ["page", "alto"])
def test_lines_without_word_boxes_get_found_words_written_back(pen_dev: Path, tmp_path: Path, fmt: str) -> None:
    iam = subset(pen_dev, tmp_path / "iam", FORMS[:2])
    pages = tmp_path / fmt
    iam_to_layout(iam, pages, fmt, word_boxes=False)
    manifest = build(tmp_path, "--corpus", str(pages), "--write", fmt)
    assert set(manifest["word_box"]) == {"found"}
    true_words = pd.read_csv(
        pen_dev / "ascii" / "words.txt", sep=" ", comment="#", header=None, usecols=[0, 3, 4, 5, 6]
    )
    true_words.columns = ["word_id", "tx", "ty", "tw", "th"]
    found = manifest.drop_duplicates("word_id").assign(word_id=lambda d: d["word_id"].str.replace("pg-p00", "p00-"))
    joined = found.merge(true_words, on="word_id")
    assert len(joined) == len(found)  # IAM's ids: line id and the word's index in the transcription
    left = joined[["word_x", "tx"]].max(axis=1)
    right = pd.concat([joined["word_x"] + joined["word_w"], joined["tx"] + joined["tw"]], axis=1).min(axis=1)
    union = pd.concat([joined["word_x"] + joined["word_w"], joined["tx"] + joined["tw"]], axis=1).max(axis=1)
    x_iou = (right - left).clip(lower=0) / (union - joined[["word_x", "tx"]].min(axis=1))
    assert (x_iou > 0.8).mean() > 0.8
    written = next((tmp_path / "ds0" / fmt).glob("*.xml"))
    tree = etree.parse(str(written))
    assert schema(fmt).validate(tree), schema(fmt).error_log.last_error
    added = added_nodes((pages / written.name).read_bytes(), written.read_bytes())
    words = tree.findall(".//{*}Word" if fmt == "page" else ".//{*}String")
    if fmt == "page":  # lines with their TextEquiv only: a new Word per word, with its found box
        assert words and all("iamchars" in w.get("id") for w in words)
        assert {etree.QName(e).localname for e in added} == {"Word"}
    else:  # the file's own Strings (without boxes) are kept as they were, and get the Glyphs
        assert words and not any("iamchars" in w.get("ID") for w in words)
        assert {etree.QName(e).localname for e in added} == {"Glyph"}
        written_glyphs = sum(
            len(etree.parse(str(p)).findall(".//{*}String/{*}Glyph")) for p in written.parent.glob("*.xml")
        )
        assert written_glyphs == len(manifest)
    card = (tmp_path / "ds0" / "card.md").read_text()
    assert "**found** in their lines' ink" in card and "writers: writers.csv." in card
