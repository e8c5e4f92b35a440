from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from iamchars.cli import app
from iamchars.config import SynthConfig
from iamchars.fileio import read_gray
from iamchars.fonts import load_font
from iamchars.iam.corpus import image_path, load_corpus
from iamchars.synth.corpus import render_form, writer_font
from iamchars.synth.render import char_boxes, render_line, writer_style
from iamchars.synth.text import fill_lines, make_faker, sentence_tokens

runner = CliRunner()


def _gt(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "chars_gt.csv", keep_default_na=False, dtype={"char": str})


def test_corpus_round_trips_through_the_iam_reader(synth_corpus: Path) -> None:
    corpus = load_corpus(synth_corpus)
    assert corpus.rejects.empty, corpus.rejects.head()
    assert len(corpus.forms) == 8 and len(corpus.lines) == 32
    assert corpus.lines["valid"].all() and corpus.words["valid"].all()
    assert (corpus.lines["flag"] == "err").any()
    gt = _gt(synth_corpus)
    assert set(gt["word_id"]) == set(corpus.words["word_id"])
    lengths = corpus.words.set_index("word_id")["text"].str.len()
    assert (gt.groupby("word_id").size().reindex(lengths.index) == lengths).all()
    joined = gt.merge(corpus.words[["word_id", "text"]], on="word_id")
    assert (joined.apply(lambda r: r["text"][r["char_index"]] == r["char"], axis=1)).all()


def test_true_boxes_sit_inside_their_words_hold_ink_and_follow_reading_order(synth_corpus: Path) -> None:
    corpus = load_corpus(synth_corpus)
    words = corpus.words.set_index("word_id")
    lines = corpus.lines.set_index("line_id")
    gt = (
        _gt(synth_corpus)
        .join(words[["x", "y", "w", "h", "flag", "line_id"]].add_suffix("_word"), on="word_id")
        .rename(columns={"flag_word": "flag", "line_id_word": "line_id"})
    )
    ok = gt[gt["flag"] == "ok"]  # err words carry a deliberately truncated box, as in IAM
    assert (ok["x"] >= ok["x_word"]).all() and (ok["y"] >= ok["y_word"]).all()
    assert (ok["x"] + ok["w"] <= ok["x_word"] + ok["w_word"]).all()
    assert (ok["y"] + ok["h"] <= ok["y_word"] + ok["h_word"]).all()
    assert ((gt["w"] > 0) & (gt["h"] > 0)).all()
    images = {lid: read_gray(image_path(synth_corpus, "lines", lid)) for lid in lines.index}
    for row in gt.itertuples():
        line = lines.loc[row.line_id]
        crop = images[row.line_id][row.y - line.y : row.y - line.y + row.h, row.x - line.x : row.x - line.x + row.w]
        assert crop.size and crop.min() < line.graylevel, f"no ink in the box of {row.word_id}[{row.char_index}]"
    centres = gt.assign(cx=gt["x"] + gt["w"] / 2).groupby("word_id")["cx"]
    # reading order: centres move right, allowing small overlaps of joined cursive letters
    assert (centres.apply(lambda c: (np.diff(c.to_numpy()) > -8).all())).mean() > 0.97
    firsts = gt[gt["char_index"] == 0].sort_values("word_id")
    lasts = gt.groupby("word_id").tail(1).sort_values("word_id")
    assert (firsts["x"].to_numpy() <= lasts["x"].to_numpy() + lasts["w"].to_numpy()).all()


def test_splits_are_writer_disjoint(synth_corpus: Path) -> None:
    corpus = load_corpus(synth_corpus)
    assert corpus.split_stats["writers_from_task_files"] == corpus.forms["writer_id"].nunique()
    assert corpus.forms.groupby("writer_id")["split"].nunique().max() == 1
    assert set(corpus.forms["split"]) == {"train", "val", "test"}


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    def digest(root: Path) -> str:
        h = hashlib.sha256()
        for p in sorted(root.rglob("*")):
            if p.is_file():
                h.update(str(p.relative_to(root)).encode() + p.read_bytes())
        return h.hexdigest()

    args = ["synth", "--forms", "3", "--lines-per-form", "2", "--seed", "11", "--no-progress"]
    a = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--workers", "2"])
    b = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--workers", "1"])
    assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    c = runner.invoke(app, [*args[:-3], "--seed", "12", "--no-progress", "--out", str(tmp_path / "c")])
    assert c.exit_code == 0 and digest(tmp_path / "c") != digest(tmp_path / "a")


def test_alignment_font_is_never_a_writer(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dancing-script"):
        writer_font(SynthConfig(fonts=["caveat", "dancing-script"]), 0)
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "never"), "--fonts", "dancing-script,kalam"])
    assert result.exit_code == 1 and "never be a synthetic writer" in result.output
    result = runner.invoke(app, ["synth", "--out", str(tmp_path / "never"), "--fonts", "no-such-font"])
    assert result.exit_code == 2 and "fontpkg-no-such-font is not installed" in result.output
    assert not (tmp_path / "never").exists()


def test_tokens_look_like_iam() -> None:
    rng = np.random.default_rng(0)
    fake = make_faker(0)
    tokens = [t for _ in range(200) for t in sentence_tokens(fake, rng)]
    assert any(t in ("Mr.", "Mrs.", "Dr.") for t in tokens)
    assert any(t.isdigit() for t in tokens) and any(t[:1].isupper() for t in tokens)
    assert "." in tokens and "," in tokens
    assert all(t == "." or not t.endswith(".") or t in ("Mr.", "Mrs.", "Dr.", "St.") for t in tokens)
    lines = fill_lines(fake, rng, 3, lambda t: 10.0 * len(t), 5.0, 300.0)
    assert len(lines) == 3 and all(sum(10 * len(t) + 5 for t in ln) - 5 <= 300 or len(ln) == 1 for ln in lines)


def test_glyph_labels_give_tight_boxes_in_reading_order() -> None:
    style = writer_style("kalam", np.random.default_rng(1))
    font = load_font("kalam", style.size)
    line = render_line(["abc", "de"], style, font, np.random.default_rng(2))
    boxes = char_boxes(line)
    assert line.owners == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert (boxes[:, 2] > 0).all()
    assert (np.diff(boxes[:, 0]) > 0).all()
    for k, (x, y, w, h) in enumerate(boxes, start=1):
        ys, xs = np.nonzero(line.labels == k)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x, y, x + w, y + h)


def test_render_form_is_a_pure_function_of_seed_and_index() -> None:
    cfg = SynthConfig(lines_per_form=2, seed=3)
    a, images_a = render_form(1, cfg)
    b, images_b = render_form(1, cfg)
    assert a == b and images_a.keys() == images_b.keys()
    assert all(np.array_equal(images_a[k], images_b[k]) for k in images_a)
