from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from iamchars.cli import app
from iamchars.config import SegmentConfig
from iamchars.fonts import load_font
from iamchars.iam.corpus import load_corpus
from iamchars.segment.evaluate import box_iou, evaluate, match, span_iou
from iamchars.segment.horizontal import ink_cuts, seed_spans
from iamchars.segment.methods import METHODS, MissingCutsError, method_of
from iamchars.segment.pipeline import LineInput, WordBox, cut_line
from iamchars.segment.refine import (
    WordInk,
    WordStrip,
    boxes_from_cuts,
    refined_cuts,
    snap_cuts,
    word_body,
    word_end,
)
from iamchars.segment.runner import segment_form
from iamchars.segment.slant import estimate_slant
from iamchars.segment.vertical import line_ink_stats, vertical_band

runner = CliRunner()


def test_line_statistics_of_known_ink_rows() -> None:
    gray = np.full((20, 50), 255, np.uint8)
    gray[5, :] = 0  # equal darkness on rows 5 and 11: mean 8, std 3
    gray[11, :] = 0
    mean, std = line_ink_stats(gray, threshold=128)
    assert mean == pytest.approx(8.0) and std == pytest.approx(3.0)
    assert vertical_band(mean, std, 1.5, 20) == (3, 13)
    gray[11, :25] = 255  # row 11 now has half the ink: weights 2:1 -> mean 7, std sqrt(8)
    mean, std = line_ink_stats(gray, threshold=128)
    assert mean == pytest.approx(7.0) and std == pytest.approx(np.sqrt(8.0))


def test_ink_weights_follow_darkness() -> None:
    gray = np.full((10, 10), 255, np.uint8)
    gray[2, :] = 0
    gray[8, :] = 155  # paler ink weighs (255-155)/(255-0) as much
    mean, _ = line_ink_stats(gray, threshold=200)
    assert mean == pytest.approx((2 * 255 + 8 * 100) / 355)


def _render(text: str, size: int = 64, shear: float = 0.0) -> tuple[np.ndarray, np.ndarray, int]:
    """The word drawn glyph by glyph from the alignment font itself; returns (ink mask, expected inner cuts in
    pixels, baseline row)."""
    font = load_font("dancing-script", size)
    starts, ends = font.spans(text)
    height, base, pad = size * 2, int(size * 1.3), 20
    canvas = np.zeros((height, int(ends[-1]) + 2 * pad + size), np.uint8)
    for s, ch in zip(starts, text, strict=True):
        g = font.glyph(ch)
        x, y = round(pad + s + g.left), base + g.top
        region = canvas[y : y + g.alpha.shape[0], x : x + g.alpha.shape[1]]
        np.maximum(region, g.alpha, out=region)
    if shear:
        import cv2

        m = np.float32([[1, -np.tan(shear), np.tan(shear) * base + size], [0, 1, 0]])
        canvas = cv2.warpAffine(canvas, m, (canvas.shape[1] + 2 * size, height))
    cuts = pad + (ends[:-1] + starts[1:]) / 2
    return canvas > 0, cuts, base


def test_a_word_in_the_alignment_font_aligns_to_within_a_pixel() -> None:
    font = load_font("dancing-script", 64)
    for text in ("minimum", "Gaitskell", "handwriting"):
        mask, expected, _ = _render(text)
        ys, xs = np.nonzero(mask)
        ink = WordInk.from_pixels(ys, xs, 0.0, float(ys.mean()))
        rel = ink_cuts(text, font)
        first = xs.min()
        mapped = first + rel[1:-1] * (xs.max() + 1 - first)
        assert np.abs(mapped - expected).max() <= 1.0, text
        share = np.full(len(text), 1 / len(text))
        strip = WordStrip.from_ink(ink, (0, 1e9), 1)
        assert strip is not None
        cuts = refined_cuts(strip, rel, 0.35, False, 0.75)
        boxes, scores = boxes_from_cuts(strip, cuts, share, (0, 1), 1, 0.0, 0.02, 0.0)
        # each character's pixels start right at its cut (cursive ink is continuous across cuts); slivers stay
        # where the cut put them (fragment_share 0, the default here; the pipeline's 0.25 would hand an end of
        # the G's stroke, apart from its body, to the a)
        assert np.abs(boxes[1:, 0] - np.ceil(mapped)).max() <= 1.0, text
        assert (scores > 0).all() and (scores <= 1).all()


def test_ink_past_the_last_cut_belongs_to_no_character() -> None:
    # two 8-column letters (rows 0..19) and a full stop (rows 16..19, columns 22..24) in one word box
    mask = np.zeros((20, 25), bool)
    mask[:, 0:8] = mask[:, 9:17] = True
    mask[16:20, 22:25] = True
    ys, xs = np.nonzero(mask)
    strip = WordStrip.from_ink(WordInk.from_pixels(ys, xs, 0.0, 10.0), (0, 100), 1)
    assert strip is not None and strip.length == 25
    share = np.full(2, 0.5)
    whole, _ = boxes_from_cuts(strip, np.array([0.0, 8.5, 25.0]), share, (0, 20), 1)
    trimmed, _ = boxes_from_cuts(strip, np.array([0.0, 8.5, 19.0]), share, (0, 20), 1)
    assert whole[1].tolist() == [9, 0, 16, 20]  # the stop widens the last letter's box
    assert trimmed.tolist() == [[0, 0, 8, 20], [9, 0, 8, 20]]


def test_a_slanted_word_is_deslanted() -> None:
    for degrees in (-15.0, 0.0, 20.0, 30.0):
        mask, _, _ = _render("lifted", shear=np.radians(degrees))
        ys, xs = np.nonzero(mask)
        upright, _, _ = _render("lifted")
        uy, ux = np.nonzero(upright)
        font_own = estimate_slant(uy.astype(float), ux.astype(float), 40, 17)
        found = estimate_slant(ys.astype(float), xs.astype(float), 40, 17)
        added = np.degrees(np.arctan(np.tan(found) - np.tan(font_own)))  # shears add as tangents
        assert added == pytest.approx(degrees, abs=2.5)


def test_snapping_moves_a_cut_to_the_nearby_gap_and_keeps_order() -> None:
    profile = np.array([5, 5, 5, 5, 1, 5, 5, 5, 5, 5, 5, 0.5, 5, 5, 5], float)
    cuts = np.array([0, 6, 9, 14], float)
    snapped = snap_cuts(cuts, profile, window=3)
    assert snapped.tolist() == [0, 4, 11, 14]
    assert snap_cuts(np.array([0, 5, 5.2, 14]), profile, window=1).tolist()[1:3] in ([4, 6], [5, 6], [4, 5])


def test_seed_spans_stretch_the_font_cells_over_the_box() -> None:
    font = load_font("dancing-script", 64)
    spans = seed_spans("abc", font, 100, 60)
    assert spans[0, 0] == pytest.approx(100) and spans[-1, 1] == pytest.approx(160)
    assert (np.diff(spans[:, 0]) > 0).all()


def test_iou_helpers() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], float)
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5]], float)
    assert box_iou(a, b).tolist() == pytest.approx([50 / 150, 0.0])
    assert span_iou(np.array([0.0]), np.array([10.0]), np.array([5.0]), np.array([15.0]))[0] == pytest.approx(1 / 3)
    gt = pd.DataFrame(
        {
            "word_id": ["w", "w"],
            "char_index": [0, 1],
            "char": ["a", "b"],
            "x": [0, 10],
            "y": [0, 0],
            "w": [10, 10],
            "h": [10, 10],
        }
    )
    est = gt.iloc[:1].assign(score=0.9)
    result = evaluate(gt, est)[0]["all_true_characters"]
    assert result["missing"] == 1 and result["mean_iou"] == pytest.approx(0.5)


def test_a_small_mark_past_a_wide_gap_is_left_out_of_the_word() -> None:
    # three 10-column letters 2 columns apart (columns 0..33), then a mark of 4 columns 20 columns further on
    letters = [np.repeat(np.arange(c, c + 10), 20) for c in (0, 12, 24)]
    mark = np.repeat(np.arange(54, 58), 5)
    xd = np.concatenate([*letters, mark]).astype(float)
    assert word_body(xd, 3, 1.0, 1.0, 12.0) == (0.0, 34.0)
    assert word_body(xd, 3, 2.0, 1.0, 12.0) == (0.0, 58.0)  # a blank of 20 columns < 2 widths of 12
    assert word_body(57.0 - xd, 3, 1.0, 1.0, 12.0) == (24.0, 58.0)  # the mark before the word
    # a piece past the blank with more than a letter's ink belongs to the word (a letter written apart)
    big = np.concatenate([*letters, np.repeat(np.arange(54, 64), 30)]).astype(float)
    assert word_body(big, 3, 1.0, 1.0, 12.0) == (0.0, 64.0)
    # nothing goes that would leave the rest too narrow for its letters ("of" with its o far from the f)
    assert word_body(xd, 6, 1.0, 1.0, 12.0) == (0.0, 58.0)
    # marks at both ends, one of two pieces ("14"): each end group goes as a whole
    both = np.concatenate([xd, np.repeat([60.0, 61.0], 3), -4.0 - np.repeat(np.arange(54, 58), 5)])
    assert word_body(both, 3, 1.0, 1.0, 12.0) == (0.0, 34.0)


def test_a_full_stop_just_after_the_last_letter_is_left_out() -> None:
    # three 10-column letters of rows 0..19 (columns 0..33), a 3 x 3 mark 2 columns after them
    letters = [(np.repeat(np.arange(c, c + 10), 20), np.tile(np.arange(20), 10)) for c in (0, 12, 24)]
    xd = np.concatenate([x for x, _ in letters]).astype(float)
    ys = np.concatenate([y for _, y in letters]).astype(float)

    def with_mark(rows: np.ndarray, width: int = 3) -> tuple[np.ndarray, np.ndarray]:
        cols = np.repeat(np.arange(36, 36 + width), len(rows))
        return np.concatenate([xd, cols]), np.concatenate([ys, np.tile(rows, width)])

    low, high = np.arange(16, 19), np.arange(0, 3)
    assert word_end(*with_mark(low), 3, 0.25, 12.0, 9.5) == 34.0  # a full stop: the word ends at its letter
    assert word_end(*with_mark(high), 3, 0.25, 12.0, 9.5) == 39.0  # above the middle: a quote, kept
    assert word_end(*with_mark(np.arange(10, 20), width=10), 3, 0.25, 12.0, 9.5) == 46.0  # a letter written apart
    assert word_end(*with_mark(low), 3, 0.25, 30.0, 9.5) == 39.0  # 2 columns < 0.1 of a 30-column width
    assert word_end(xd, ys, 3, 0.25, 12.0, 9.5) == 34.0  # nothing after the word


def test_a_word_strip_keeps_only_the_words_own_ink() -> None:
    mask = np.zeros((20, 60), bool)
    mask[:, 0:10] = mask[:, 12:22] = mask[:, 24:34] = True
    mask[15:20, 54:58] = True  # a full stop far after the word
    gray = np.where(mask, 30, 240).astype(np.uint8)
    gray = np.pad(gray, ((20, 20), (0, 0)), constant_values=240)
    word = [WordBox("w-00", "nnn", 0, 0, 60, 60)]
    font = load_font("dancing-script", 64)
    for gap, stop, right in ((1.0, 0.0, 34), (0.0, 0.25, 34), (0.0, 0.0, 58)):
        cfg = SegmentConfig(method="refined", stray_gap=gap, stop_share=stop, deslant=False)
        out = cut_line(LineInput("w", gray, (0, 0), 128, word), cfg, font).words[0]
        assert out[:, 0].min() == 0 and (out[:, 0] + out[:, 2]).max() == right


def test_segment_line_returns_page_coordinates_and_handles_empty_words() -> None:
    mask, _, _ = _render("minimum")
    gray = np.where(mask, 30, 240).astype(np.uint8)
    ys, xs = np.nonzero(mask)
    words = [
        WordBox(
            "w-00",
            "minimum",
            1000 + xs.min(),
            500 + ys.min(),
            xs.max() - xs.min() + 1,
            ys.max() - ys.min() + 1,
        ),
        WordBox("w-01", "x", 1000, 500, 5, 5),
    ]
    font = load_font("dancing-script", 64)
    for method in ("seed", "refined"):
        line = METHODS[method].line(LineInput("w", gray, (1000, 500), 0, words), SegmentConfig(), font, None)
        out = line.words
        assert out[0].shape == (7, 5) and out[1].shape == (1, 5)
        assert (out[0][:, 0] >= 1000 + xs.min() - 1).all() and (out[0][:, 1] >= 500).all()
        assert line.geometry.threshold < 240 and line.geometry.band[0] < line.geometry.band[1]
        # the word without ink gets the reference boxes (font cells over its box) in both methods
        assert out[1][0, 0] == 1000 and out[1][0, 2] == 5 and out[1][0, 4] == 0.0
    with pytest.raises(MissingCutsError):  # the aligned method never runs without its corpus pass's cuts
        method_of("aligned").line(LineInput("w", gray, (1000, 500), 0, words), SegmentConfig(), font, None)
    aligned = method_of("aligned").line(LineInput("w", gray, (1000, 500), 0, words), SegmentConfig(), font, {})
    refined = method_of("refined").line(LineInput("w", gray, (1000, 500), 0, words), SegmentConfig(), font, None)
    assert all(np.array_equal(a, r) for a, r in zip(aligned.words, refined.words, strict=True))  # no cuts: refined


@pytest.mark.slow
def test_refined_beats_the_reference_on_held_out_writers(synth_corpus: Path) -> None:
    corpus = load_corpus(synth_corpus)
    gt = pd.read_csv(synth_corpus / "chars_gt.csv", keep_default_na=False, dtype={"char": str})
    words = corpus.words[corpus.words["flag"] == "ok"]
    gt = gt[gt["word_id"].isin(set(words["word_id"]))]
    scores = {}
    for method in ("seed", "refined"):
        boxes = pd.concat(
            [
                segment_form(
                    synth_corpus, lines, words[words["form_id"] == f], SegmentConfig(), METHODS[method].line
                ).boxes
                for f, lines in corpus.lines.groupby("form_id")
            ]
        )
        scores[method] = evaluate(gt, boxes)[0]["all_true_characters"]
    assert scores["refined"]["missing"] == 0
    assert scores["refined"]["mean_iou"] > 0.65 and scores["refined"]["share_iou_ge_0.5"] > 0.75
    assert scores["refined"]["mean_iou"] > scores["seed"]["mean_iou"] + 0.1


def test_a_corrupt_line_image_is_rejected_not_fatal(synth_corpus: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "iam"
    shutil.copytree(synth_corpus, root)
    corpus = load_corpus(root)
    first = corpus.lines.iloc[0]
    path = root / "lines" / first.line_id[:3] / first.line_id[:7] / f"{first.line_id}.png"
    path.write_bytes(path.read_bytes()[:100])
    form = corpus.lines[corpus.lines["form_id"] == first.form_id]
    words = corpus.words[corpus.words["form_id"] == first.form_id]
    refined = METHODS["refined"].line
    seg = segment_form(root, form, words, SegmentConfig(), refined)
    # its words' own images stand in for it
    assert seg.lines.composed == {first.line_id} and seg.lines.rejects[0]["stage"] == "replaced"
    assert seg.boxes["word_id"].str.startswith(first.line_id + "-").any()
    for word_png in (root / "words").rglob(f"{first.line_id}-*.png"):
        word_png.unlink()
    seg = segment_form(root, form, words, SegmentConfig(), refined)
    assert {r["item_id"] for r in seg.lines.rejects} == {first.line_id} and not seg.lines.composed
    assert "truncated" in seg.lines.rejects[0]["reason"]
    assert not seg.boxes["word_id"].str.startswith(first.line_id + "-").any()
    assert len(seg.boxes) > 0


@pytest.mark.slow
def test_evaluate_segmentation_cli(synth_corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = runner.invoke(
        app,
        [
            "build-dataset",
            "--method",
            "refined",
            "--iam-root",
            str(synth_corpus),
            "--out",
            str(out),
            "--no-progress",
            "--workers",
            "1",
            "--punctuation",
            "--include-err",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "evaluate-segmentation",
            "--gt",
            str(synth_corpus / "chars_gt.csv"),
            "--manifest",
            str(out / "manifest.parquet"),
            "--iam-root",
            str(synth_corpus),
            "--worst",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "mean IoU" in result.output
    assert (out / "segeval" / "worst_cases.png").stat().st_size > 1000
    table = pd.read_csv(out / "segeval" / "per_character.csv", keep_default_na=False)
    assert {"char", "count", "mean_iou", "share_ge_05", "mean_iou_x"} <= set(table.columns)
    # without true boxes: the self-check, which the dataset's manifest and card report too
    args = ["evaluate-segmentation", "--manifest", str(out / "manifest.parquet"), "--iam-root", str(synth_corpus)]
    result = runner.invoke(app, [*args, "--self-check", "--json"])
    assert result.exit_code == 0, result.output
    check = json.loads(result.output)["self_check"]
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert check["characters_checked"] == manifest["check_iou"].notna().sum() > 0
    assert check["mean_iou"] == pytest.approx(manifest["check_iou"].mean(), abs=1e-3)
    assert "Self-check" in (out / "card.md").read_text()
    assert runner.invoke(app, args).exit_code == 2  # neither --gt nor --self-check


def test_a_cut_path_goes_round_an_overhanging_stroke() -> None:
    from iamchars.segment.paths import cut_paths, owners_by_paths

    ink = np.zeros((20, 30), bool)
    ink[5:20, 3:6] = True  # letter 0: a stem
    ink[5:20, 20:23] = True  # letter 1: a stem ...
    ink[2:4, 8:23] = True  # ... with a bar leaning back over the gap, to column 8
    ys, xs = np.nonzero(ink)
    truth = (xs >= 8).astype(int)
    vertical = (xs >= 12).astype(int)  # a straight cut halfway between the stems
    assert (vertical != truth).sum() > 0
    (paths,) = cut_paths([ink], [np.array([12.0])], [6])
    assert paths.shape == (1, 20) and np.abs(np.diff(paths[0])).max() <= 1
    assert (owners_by_paths(ys, xs, paths, 2) == truth).all()
    assert cut_paths([ink], [np.zeros(0)], [3])[0].shape == (0, 20)
    # going round costs about 30 column-rows of bend; at 0.1 each that is dearer than crossing the bar's 2 rows
    (stiff,) = cut_paths([ink], [np.array([12.0])], [6], bend_cost=0.1)
    assert (owners_by_paths(ys, xs, stiff, 2) != truth).sum() == 2 * 4  # bar columns 8..11 go to letter 0


def test_a_lines_cut_paths_solved_together_are_each_words_own() -> None:
    from iamchars.segment.paths import cut_paths

    rng = np.random.default_rng(3)
    inks = [rng.random((rows, width)) < 0.3 for rows, width in ((23, 40), (9, 25), (31, 60), (0, 10), (12, 8))]
    cuts = [np.array([10.0, 21.0, 30.0]), np.array([12.0]), np.array([15.0, 44.0]), np.array([5.0]), np.zeros(0)]
    reaches = [3, 5, 2, 4, 1]
    for row_step in (1, 2, 3):
        together = cut_paths(inks, cuts, reaches, 0.02, row_step)
        for ink, c, reach, paths in zip(inks, cuts, reaches, together, strict=True):
            (alone,) = cut_paths([ink], [c], [reach], 0.02, row_step)
            assert paths.shape == alone.shape == (len(c), ink.shape[0])
            assert (paths == alone).all()
            if paths.size:
                assert (np.abs(paths - np.rint(c)[:, None]) <= reach).all()
                assert np.abs(np.diff(paths[:, ::row_step], axis=1)).max(initial=0) <= 1


def test_a_sliver_of_the_next_letters_stroke_goes_back_to_it() -> None:
    from iamchars.segment.paths import reclaim_fragments

    ink = np.zeros((20, 16), bool)
    ink[4:20, 1:4] = True  # letter 0: a stem ...
    ink[0:2, 1:4] = True  # ... and its dot, apart from everything
    ink[4:20, 11:14] = True  # letter 1: a stem ...
    ink[15:17, 5:11] = True  # ... with an entry stroke from column 5, clear of letter 0
    ys, xs = np.nonzero(ink)
    strip = WordStrip.from_ink(WordInk.from_pixels(ys, xs, 0.0, 10.0), (0, 100), 1)
    assert strip is not None
    cuts, share = np.array([0.0, 6.0, 15.0]), np.full(2, 0.5)  # ink columns from x=1: a cut at x=7
    kept, _ = boxes_from_cuts(strip, cuts, share, (0, 20), 1, fragment_share=0.0)
    reclaimed, _ = boxes_from_cuts(strip, cuts, share, (0, 20), 1, fragment_share=0.25)
    assert kept.tolist() == [[1, 0, 6, 20], [7, 4, 7, 16]]  # letter 0 stretched over the sliver
    assert reclaimed.tolist() == [[1, 0, 3, 20], [5, 4, 9, 16]]  # the dot stays: it touches no neighbour
    owner = (xs >= 7).astype(np.int64)
    assert (reclaim_fragments(ys, xs, owner, 2, 0.25) == (xs >= 5)).all()
    assert (reclaim_fragments(ys, xs, owner, 1, 0.25) == owner).all()  # one character: nothing to hand back


def test_an_i_dot_written_over_the_next_letter_goes_to_the_i() -> None:
    from iamchars.segment.paths import DotRule, attach_dots

    ink = np.zeros((21, 17), bool)
    ink[8:21, 1:4] = True  # 'i': its stem ...
    ink[0:3, 6:9] = True  # ... and its dot, over the n
    ink[8:21, 7:10] = ink[8:21, 13:16] = ink[8:10, 7:16] = True  # 'n'
    ink[18:21, 11:12] = True  # a speck between the n's legs, low in the line: not a dot
    ys, xs = np.nonzero(ink)
    strip = WordStrip.from_ink(WordInk.from_pixels(ys, xs, 0.0, 10.0), (0, 100), 1)
    assert strip is not None
    cuts, share = np.array([0.0, 4.0, 16.0]), np.full(2, 0.5)  # ink columns from x=1: a cut at x=5
    rule = DotRule(np.array([True, False]), above=6.0, reach=1.0)
    plain, _ = boxes_from_cuts(strip, cuts, share, (0, 21), 1)
    dotted, _ = boxes_from_cuts(strip, cuts, share, (0, 21), 1, dots=rule)
    assert plain.tolist() == [[1, 8, 3, 13], [6, 0, 10, 21]]  # the n's box climbs to the dot
    assert dotted.tolist() == [[1, 0, 8, 21], [7, 8, 9, 13]]
    owner = (xs >= 5).astype(np.int64)
    moved = attach_dots(ys, xs, xs.astype(np.float64), owner, rule, char_width=8.0)
    assert (moved != owner).sum() == 9 and (moved[(ys < 3)] == 0).all()
    too_far = attach_dots(ys, xs, xs.astype(np.float64), owner, rule, char_width=4.0)  # reach 4 < 5 columns
    assert (too_far == owner).all()
    no_i = DotRule(np.array([False, False]), above=6.0, reach=1.0)
    assert (attach_dots(ys, xs, xs.astype(np.float64), owner, no_i, char_width=8.0) == owner).all()


def test_self_check_finds_the_separable_words() -> None:
    from iamchars.segment.selfcheck import separable_boxes

    mask = np.zeros((40, 60), bool)
    mask[10:30, 2:12] = True  # 'o'
    mask[14:30, 20:23] = True  # 'i' stem ...
    mask[8:11, 20:23] = True  # ... and its dot
    mask[10:30, 30:40] = True  # 'n'
    mask[0, 50] = True  # a speck of noise
    boxes = separable_boxes(mask, np.array([1.0, 0.4, 1.0]))
    assert boxes is not None
    assert boxes.tolist() == [[2, 10, 10, 20], [20, 8, 3, 22], [30, 10, 10, 20]]
    assert separable_boxes(mask, np.ones(2)) is None  # 3 pieces for 2 characters
    joined = mask.copy()
    joined[25:27, 12:20] = True  # a ligature joins 'o' to 'i'
    assert separable_boxes(joined, np.array([1.0, 0.4, 1.0])) is None
    assert separable_boxes(mask, np.array([1.0, 8.0, 1.0])) is None  # widths implausible for the text
    # a rendered word in a print-like font with its letters apart is found, with its letters' ink boxes
    font = load_font("kalam", 48)
    canvas = np.zeros((120, 400), np.uint8)
    pen, expected = 10, []
    for ch in "bad":
        g = font.glyph(ch)
        canvas[80 + g.top : 80 + g.top + g.alpha.shape[0], pen + g.left : pen + g.left + g.alpha.shape[1]] = g.alpha
        ys, xs = np.nonzero(canvas[:, pen + g.left : pen + g.left + g.alpha.shape[1]] > 128)
        expected.append([pen + g.left + xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1])
        pen += int(g.advance) + 12
    found = separable_boxes(canvas > 128, np.array([font.advance(c) for c in "bad"]))
    assert found is not None and found.tolist() == expected


def test_letters_written_apart_are_told_from_joined_writing_that_breaks() -> None:
    from iamchars.segment.selfcheck import written_apart

    apart = np.array([[0, 0, 10, 20], [14, 0, 10, 20], [28, 0, 10, 20]], float)  # blanks of 4, 0.4 widths
    assert written_apart(apart)
    touching = apart.copy()
    touching[1, 0] = 11  # a blank of one column: a break in joined writing
    assert not written_apart(touching)
    assert written_apart(apart[:1])  # one letter: its piece is its box
    assert not written_apart(apart, apart=0.5)


def test_a_word_written_apart_takes_its_pieces_as_its_boxes(unipen_dev: Path, tmp_path: Path) -> None:
    from tests.corpora import subset

    root = subset(unipen_dev, tmp_path / "iam", ["q00-016x"])  # print, letter by letter
    corpus = load_corpus(root)
    refined = METHODS["refined"].line
    with_pieces = segment_form(root, corpus.lines, corpus.words, SegmentConfig(), refined, pieces=True).boxes
    without = segment_form(root, corpus.lines, corpus.words, SegmentConfig(), refined).boxes
    exact = with_pieces["from_pieces"].to_numpy()
    assert exact.sum() >= 20 and not without["from_pieces"].any()
    assert (with_pieces.loc[exact, "check_iou"] == 1.0).all()  # each box is its piece
    kept = ~with_pieces.groupby("word_id")["from_pieces"].transform("any").to_numpy()
    assert kept.any() and with_pieces[kept].equals(without[kept])  # the other words keep the method's boxes
    truth = pd.read_csv(unipen_dev / "chars_gt.csv", dtype={"word_id": str})
    truth = truth[truth["word_id"].isin(set(with_pieces.loc[exact, "word_id"]))]
    share = {
        name: (match(truth, boxes[exact])["iou"] >= 0.5).mean()
        for name, boxes in (("pieces", with_pieces), ("refined", without))
    }
    assert share["pieces"] > 0.95 and share["pieces"] > share["refined"]
