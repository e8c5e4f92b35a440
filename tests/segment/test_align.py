"""The `aligned` method: strips, candidate cuts and Viterbi on tiny arrays; self-training end to end."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from iamchars.cli import app
from iamchars.segment.align.alignment import (
    CHAR_COLUMNS,
    STRIP_ROWS,
    AlignmentWord,
    Lattice,
    candidate_cuts,
    end_candidates,
    neighbour_stroke,
    segment_pairs,
    stretch_word,
    strip_image,
    training_segments,
    viterbi_cuts,
    with_neighbour_stroke,
    word_posteriors,
)
from iamchars.segment.align.network import SegmentNet
from iamchars.segment.aligned import AlignmentStats, CorpusAlignment, load_cuts, save_cuts
from iamchars.segment.evaluate import evaluate
from iamchars.segment.refine import WordInk, WordStrip

runner = CliRunner()


def test_viterbi_takes_the_best_ordered_cuts() -> None:
    candidates, offsets = candidate_cuts(np.array([0.0, 10.0, 20.0, 30.0]), 30, reach=0.5, count=3)
    assert [len(c) for c in candidates] == [1, 3, 3, 1]
    np.testing.assert_allclose(candidates[1], [5.0, 10.0, 15.0])
    np.testing.assert_allclose(offsets[1], [-0.5, 0.0, 0.5])
    np.testing.assert_allclose(offsets[0], [0.0])
    starts, ends = segment_pairs(candidates)
    assert len(starts) == 3 + 9 + 3
    # each character likes a segment of width 12 best; the second cut 12, the third 24 fit that
    logp = -np.abs((ends - starts) - 12.0)
    flat_prior = [np.zeros(len(c)) for c in candidates]
    best = viterbi_cuts(candidates, logp, flat_prior)
    assert best[0] == 0.0 and best[-1] == 30.0 and np.all(np.diff(best) >= 1)
    widths = np.diff(best)
    assert np.abs(widths - 12).sum() <= min(
        np.abs(np.diff([0.0, a, b, 30.0]) - 12).sum() for a in candidates[1] for b in candidates[2] if b > a
    )
    # a strong prior keeps the cuts where they were
    strong = [np.zeros(1), *[np.array([-100.0, 0.0, -100.0])] * 2, np.zeros(1)]
    assert np.allclose(viterbi_cuts(candidates, logp, strong), [0, 10, 20, 30])


def test_free_ends_leave_a_neighbours_stroke_to_no_character() -> None:
    # "ab": letters over strip columns 0..20 (2 per ink column), a gap, then a full stop at 26..29
    strip = np.zeros((STRIP_ROWS, 31), np.uint8)
    strip[8:24, 0:20] = 255
    strip[20:23, 26:30] = 255
    word = AlignmentWord("w", "x", "ab", strip, 2.0, np.array([0.0, 7.5, 15.0]), 15)
    first, last = end_candidates(word, reach=1.4)
    np.testing.assert_allclose(first, [0.0])  # no gap near the start
    np.testing.assert_allclose(last, [15.0, 10.0])  # the ink's end, or where the gap before the stop opens
    assert end_candidates(word, reach=0.5)[1].tolist() == [15.0]  # the gap lies 0.67 widths in
    candidates, offsets = candidate_cuts(word.cuts, 15, reach=0.4, count=5, ends=(first, last))
    np.testing.assert_allclose(offsets[2], [0.0, 2 / 3])
    letters = [(0.0, 5.0), (5.0, 10.0)]
    prior = [-0.5 * (o / 0.5) ** 2 for o in offsets]
    assert viterbi_cuts(candidates, _fit_to(candidates, letters), prior)[-1] == 10.0  # off the full stop
    fixed, fixed_offsets = candidate_cuts(word.cuts, 15, reach=0.4, count=5)
    assert fixed[-1].tolist() == [15.0] and fixed_offsets[-1].tolist() == [0.0]


def _fit_to(candidates: list[np.ndarray], letters: list[tuple[float, float]]) -> np.ndarray:
    """Each character's score over `segment_pairs`: minus the distance of its ends from the letter's."""
    scores = []
    for (left, right), (start, end) in zip(itertools.pairwise(candidates), letters, strict=True):
        a, b = np.meshgrid(left, right, indexing="ij")
        scores.append(-np.abs(a.ravel() - start) - np.abs(b.ravel() - end))
    return np.concatenate(scores)


def test_viterbi_never_crosses_cuts() -> None:
    candidates = [np.array([0.0]), np.array([4.0, 8.0, 12.0]), np.array([6.0, 10.0, 14.0]), np.array([20.0])]
    starts, ends = segment_pairs(candidates)
    logp = np.where(ends - starts < 0, 50.0, 0.0)  # a crossed pair would score highest if it were allowed
    best = viterbi_cuts(candidates, logp, [np.zeros(len(c)) for c in candidates])
    assert np.all(np.diff(best) >= 1)


def test_word_posterior_averages_every_ordered_sequence_with_its_spread_and_fit() -> None:
    candidates = [np.array([0.0]), np.array([4.0, 8.0, 12.0]), np.array([6.0, 10.0, 14.0]), np.array([20.0])]
    logp = np.random.default_rng(3).normal(0.0, 2.0, len(segment_pairs(candidates)[0]))
    move = [np.zeros(1), np.array([-1.0, 0.0, -0.5]), np.array([0.0, -0.2, -2.0]), np.zeros(1)]
    # brute force over the 9 sequences, crossed or too narrow ones left out
    weights, seconds, thirds = [], [], []
    for j, k in itertools.product(range(3), range(3)):
        a, b = candidates[1][j], candidates[2][k]
        if b - a < 1:
            continue
        score = logp[j] + logp[3 + 3 * j + k] + logp[12 + k] + move[1][j] + move[2][k]
        weights.append(np.exp(score))
        seconds.append(a)
        thirds.append(b)
    w = np.array(weights) / np.sum(weights)
    posterior = word_posteriors([Lattice(candidates, logp, move)])[0]
    mean = posterior.cuts
    np.testing.assert_allclose(mean, [0.0, w @ seconds, w @ thirds, 20.0])
    assert np.all(np.diff(mean) >= 1)
    spread = [np.sqrt(w @ (np.array(c) - m) ** 2) for c, m in ((seconds, mean[1]), (thirds, mean[2]))]
    np.testing.assert_allclose(posterior.spread, [0.0, *spread, 0.0], atol=1e-12)
    # each character's fit: its log-probability over its (left, right) pair, averaged over the sequences
    kept = [(j, k) for j, k in itertools.product(range(3), range(3)) if candidates[2][k] - candidates[1][j] >= 1]
    middle = sum(wi * logp[3 + 3 * j + k] for wi, (j, k) in zip(w, kept, strict=True))
    np.testing.assert_allclose(posterior.fit[1], middle)
    np.testing.assert_allclose(posterior.fit[0], sum(wi * logp[j] for wi, (j, _) in zip(w, kept, strict=True)))
    # in character widths, each character's larger spread of its two cuts
    evidence = posterior.evidence(length=20)
    assert evidence.shape == (3, 2)
    np.testing.assert_allclose(evidence[:, 0], np.array([spread[0], max(spread), spread[1]]) / (20 / 3))
    # a posterior sure of one sequence gives Viterbi's cuts, spread nowhere
    sure = word_posteriors([Lattice(candidates, 40 * logp, move)])[0]
    np.testing.assert_allclose(sure.cuts, viterbi_cuts(candidates, 40 * logp, move))
    assert sure.spread.max() < 1e-3
    # free ends: each at its likeliest place, the inner cuts averaged between them and never crossing them
    free = [np.array([0.0, 7.0]), candidates[1], candidates[2], np.array([20.0, 13.0])]
    pairs = len(segment_pairs(free)[0])
    for seed in range(20):
        logp = np.random.default_rng(seed).normal(0.0, 3.0, pairs)
        cuts = word_posteriors([Lattice(free, logp, [np.zeros(len(c)) for c in free])])[0].cuts
        assert cuts[0] in free[0] and cuts[-1] in free[-1] and np.all(np.diff(cuts) >= 1)


def test_word_posteriors_of_a_batch_are_each_words_own() -> None:
    rng = np.random.default_rng(5)
    lattices = []
    for n, ends in ((1, 1), (4, 3), (2, 2), (6, 1)):
        inner = [np.sort(rng.uniform(3 * i, 3 * i + 4, 5)) for i in range(1, n)]
        cands = [np.array([0.0, 1.0, 2.0][:ends]), *inner, np.array([3.0 * n + 6, 3.0 * n + 5][: min(ends, 2)])]
        logp = rng.normal(0.0, 2.0, len(segment_pairs(cands)[0]))
        lattices.append(Lattice(cands, logp, [rng.normal(0.0, 0.5, len(c)) for c in cands]))
    together = word_posteriors(lattices)
    for lattice, batched in zip(lattices, together, strict=True):
        alone = word_posteriors([lattice])[0]
        for got, want in ((batched.cuts, alone.cuts), (batched.spread, alone.spread), (batched.fit, alone.fit)):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        assert len(batched.cuts) == len(lattice.candidates) and np.all(np.diff(batched.cuts) >= 1)
    # no sequence left: every pair narrower than a column; the Viterbi cuts, spread and fit unknown
    tight = Lattice(
        [np.array([0.0]), np.array([0.2, 0.4]), np.array([0.5])], np.zeros(4), [np.zeros(1), np.zeros(2), np.zeros(1)]
    )
    lost = word_posteriors([tight, lattices[1]])
    assert np.isnan(lost[0].spread).all() and np.isnan(lost[0].fit).all() and len(lost[0].cuts) == 3
    np.testing.assert_allclose(lost[1].cuts, together[1].cuts)


def test_a_strip_holds_the_line_band_at_a_fixed_height() -> None:
    # a 10 x 40 block of ink whose rows 100..109 straddle the line mean 105 (std 5: band 90..120)
    ys, xs = np.mgrid[100:110, 50:90]
    ink = WordInk.from_pixels(ys.ravel(), xs.ravel(), 0.0, 105.0)
    strip = WordStrip.from_ink(ink, (0.0, 1000.0), 1)
    assert strip is not None and strip.length == 40
    image, scale = strip_image(strip, mean=105.0, std=5.0)
    assert image.shape[0] == STRIP_ROWS and scale == STRIP_ROWS / 30
    rows = np.flatnonzero(image.max(axis=1))
    assert rows.min() == int((100 - 90) * scale) and rows.max() == int((109 - 90) * scale)
    assert image.shape[1] == int(np.ceil(40 * scale)) + 1 and image.max() == 255


def test_a_strip_gives_each_character_the_same_columns_whatever_the_writers_width() -> None:
    ys, xs = np.mgrid[100:110, 50:90]
    strip = WordStrip.from_ink(WordInk.from_pixels(ys.ravel(), xs.ravel(), 0.0, 105.0), (0.0, 1000.0), 1)
    assert strip is not None
    # a writer whose characters are 20 ink columns wide on average: 40 columns hold two of them
    image, scale = strip_image(strip, mean=105.0, std=5.0, char_width=20.0)
    assert scale == CHAR_COLUMNS / 20 and image.shape == (STRIP_ROWS, int(np.ceil(40 * scale)) + 1)
    rows = np.flatnonzero(image.max(axis=1))
    assert rows.min() == int((100 - 90) * STRIP_ROWS / 30)  # rows still follow the line's scale
    assert image[rows, : int(40 * scale)].min() > 0 and not image[:, int(40 * scale) + 1 :].any()


def test_stretching_a_word_moves_its_cuts_and_ink_together() -> None:
    strip = np.zeros((STRIP_ROWS, 31), np.uint8)
    strip[10:20, 0:10] = 255  # first character: columns 0..9
    strip[10:20, 20:30] = 200  # second: columns 20..29, a blank gap between
    word = AlignmentWord("w", "x", "ab", strip, 1.0, np.array([0.0, 15.0, 30.0]), 30)
    same = stretch_word(word, np.ones(2))
    assert np.array_equal(same.strip, strip) and np.allclose(same.cuts, word.cuts) and same.length == 30
    wide = stretch_word(word, np.array([2.0, 1.0]))
    np.testing.assert_allclose(wide.cuts, [0.0, 30.0, 45.0])
    assert wide.length == 45 and wide.strip.shape == (STRIP_ROWS, 46)
    inked = np.flatnonzero(wide.strip[15] > 127)
    assert inked.min() == 0 and 18 <= inked[inked < 30].max() <= 20  # the first character is twice as wide
    assert wide.strip[15, 35:45].min() > 150 and wide.strip[15, 25:34].max() == 0  # the second is moved, not widened


def test_a_neighbours_stroke_lands_outside_the_cuts_and_survives_stretching() -> None:
    strip = np.zeros((STRIP_ROWS, 21), np.uint8)
    strip[10:20, 0:20] = 255
    word = AlignmentWord("w", "x", "ab", strip, 2.0, np.array([0.0, 5.0, 10.0]), 10)
    rng = np.random.default_rng(0)
    marks = [neighbour_stroke(rng, strip) for _ in range(40)]
    assert all(m.shape[0] == STRIP_ROWS and 1 <= m.shape[1] <= 10 and m.max() > 127 for m in marks)
    after = with_neighbour_stroke(word, marks[0], gap=3, after=True)
    np.testing.assert_allclose(after.cuts, word.cuts)
    assert after.length * after.scale >= 20 + 3 + marks[0].shape[1] and after.strip[:, 20:23].max() == 0
    before = with_neighbour_stroke(word, marks[1], gap=3, after=False)
    shift = (3 + marks[1].shape[1]) / 2.0
    np.testing.assert_allclose(before.cuts, word.cuts + shift)
    assert before.strip[15, int(before.cuts[0] * 2) :][:20].min() == 255  # the word's ink starts at its first cut
    wide = stretch_word(before, np.array([2.0, 1.0]))
    np.testing.assert_allclose(wide.cuts, [shift, shift + 10.0, shift + 15.0])
    assert np.array_equal(wide.strip[:, : int(shift * 2)], before.strip[:, : int(shift * 2)])  # the stroke as it was


def test_training_segments_mark_the_shifted_ones() -> None:
    cuts = np.array([0.0, 10.0, 20.0, 30.0])
    starts, ends, owner = training_segments(cuts, 30, negatives=2, rng=np.random.default_rng(0))
    assert len(starts) == 9 and list(owner[:3]) == [0, 1, 2] and (owner[3:] == -1).all()
    np.testing.assert_allclose(starts[:3], cuts[:-1])
    moved = np.maximum(np.abs(starts[3:] - np.tile(cuts[:-1], 2)), np.abs(ends[3:] - np.tile(cuts[1:], 2)))
    assert (moved >= 0.25 * 10 - 1e-9).all() and (ends > starts).all()


@pytest.mark.slow
def test_a_small_corpus_networks_stop_after_so_many_passes_over_their_words() -> None:
    from iamchars.config import AlignConfig
    from iamchars.segment.align.selftrain import steps_for

    plan = AlignConfig(steps=600, epochs=50.0, words_per_batch=32)
    assert steps_for(4000, plan) == 600  # IAM, pen-dev: the step budget binds
    assert steps_for(384, plan) == 600
    assert steps_for(147, plan) == 230  # a few hundred words: 50 passes, ceil(50 * 147 / 32)
    assert steps_for(0, plan) == 1


def _noise_words(count: int) -> list[AlignmentWord]:
    rng = np.random.default_rng(0)
    return [
        AlignmentWord(
            f"w{i}",
            f"writer{i % 4}",
            "abc",
            rng.integers(0, 255, (STRIP_ROWS, 48), np.uint8),
            1.0,
            np.array([0.0, 16.0, 32.0, 48.0]),
            48,
        )
        for i in range(count)
    ]


@pytest.mark.slow
def test_self_training_reports_all_the_work_it_planned_with_its_run_round_and_fold() -> None:
    from iamchars.config import AlignConfig
    from iamchars.segment.align.selftrain import REALIGN_WORDS_PER_STEP, movable_words, plan_of, self_train

    words = _noise_words(12)
    plan = AlignConfig(steps=3, rounds=2, folds=2, runs=2, sample_words=4, later_steps=1.0)
    reports: list[tuple[str, float]] = []
    result = self_train(words, plan, torch.device("cpu"), None, lambda where, done: reports.append((where, done)))
    planned = plan_of(words, plan)
    fitting = [done for where, done in reports if where.endswith("fitting")]
    realigning = [done for where, done in reports if where.endswith("re-aligning")]
    assert sum(fitting) == planned.steps == result.cost.steps == 2 * 2 * 2 * 3
    # per run: the first round re-aligns each fold's sample of 4 words, the last all 6 of each fold
    assert sum(realigning) * REALIGN_WORDS_PER_STEP == planned.realigned == result.cost.realigned == 2 * (8 + 12)
    assert planned.networks == result.cost.networks == 8
    assert planned.work == pytest.approx(sum(fitting) + sum(realigning))
    assert reports[0][0] == "run 1/2, round 1/2, fold 1/2, fitting"
    assert reports[-1][0] == "run 2/2, round 2/2, fold 2/2, re-aligning"
    # every re-aligned word's characters carry the last re-alignment's spread and fit; the others NaN
    movable = movable_words(words)
    for word, evidence, moved in zip(words, result.evidence, movable, strict=True):
        assert evidence.shape == (len(word.text), 2)
        assert np.isfinite(evidence).all() if moved else np.isnan(evidence).all()
        assert not moved or ((evidence[:, 0] >= 0) & (evidence[:, 1] <= 0)).all()  # spreads, log-probabilities


@pytest.mark.slow
def test_warm_rounds_continue_their_folds_network_with_a_share_of_the_steps() -> None:
    from iamchars.config import AlignConfig
    from iamchars.segment.align.selftrain import plan_of, self_train

    words = _noise_words(12)
    plan = AlignConfig(steps=4, rounds=3, folds=2, runs=1, later_steps=0.5)
    steps: dict[str, float] = {}
    result = self_train(
        words, plan, torch.device("cpu"), None, lambda where, done: steps.update({where: steps.get(where, 0) + done})
    )
    assert steps["round 1/3, fold 1/2, fitting"] == 4 and steps["round 2/3, fold 2/2, fitting"] == 2
    assert result.cost.steps == plan_of(words, plan).steps == 2 * 4 + 2 * 2 * 2


def test_a_later_rounds_network_starts_from_its_folds_network_of_the_round_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from iamchars.config import AlignConfig
    from iamchars.segment.align import selftrain

    fitted: list[tuple[dict | None, SegmentNet]] = []
    fit = selftrain.fit_segment_net

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        net = fit(*args, **kwargs)
        fitted.append((args[7], net))
        return net

    monkeypatch.setattr(selftrain, "fit_segment_net", recording)
    init = SegmentNet(len(selftrain.INDEX)).state_dict()
    selftrain.self_train(_noise_words(12), AlignConfig(steps=2, rounds=2, folds=2), torch.device("cpu"), init)
    (first0, net0), (first1, net1), (later0, _), (later1, _) = fitted
    assert first0 is init and first1 is init
    assert all(torch.equal(later0[k], v) for k, v in net0.state_dict().items())
    assert all(torch.equal(later1[k], v) for k, v in net1.state_dict().items())


def test_runs_average_inner_cuts_and_take_the_median_end() -> None:
    from iamchars.segment.align.selftrain import combine_runs

    # word 0: the runs disagree on the last end (ink end 30 twice, a gap's edge 26 once) and on the inner cut
    runs = [
        [np.array([0.0, 9.0, 30.0]), np.array([0.0, 5.0])],
        [np.array([0.0, 12.0, 30.0]), np.array([0.0, 5.0])],
        [np.array([2.0, 12.0, 26.0]), np.array([0.0, 5.0])],
    ]
    combined = combine_runs(runs)
    np.testing.assert_allclose(combined[0], [0.0, 11.0, 30.0])  # 26 lies inside what two runs call ink
    np.testing.assert_allclose(combined[1], [0.0, 5.0])
    assert all(c is not r for c, r in zip(combined, runs[0], strict=True))  # no run's arrays handed back
    agreed = [[np.array([0.0, 0.1, 0.7])] for _ in range(3)]  # (0.1 + 0.1 + 0.1) / 3 is not 0.1 in floats
    assert combine_runs(agreed)[0].tolist() == [0.0, 0.1, 0.7]


def test_runs_evidence_adds_their_disagreement_to_the_spread() -> None:
    from iamchars.segment.align.selftrain import combine_evidence

    word = AlignmentWord("w", "a", "ab", np.zeros((32, 24), np.uint8), 1.0, np.array([0.0, 10.0, 20.0]), 20)
    cuts = [[np.array([0.0, 10.0, 20.0])], [np.array([0.0, 14.0, 20.0])]]  # the inner cut 0.4 widths apart
    evidence = [[np.array([[0.1, -1.0], [0.3, -3.0]])], [np.array([[0.1, -2.0], [0.3, -1.0]])]]
    combined = combine_evidence([word], evidence, cuts)[0]
    np.testing.assert_allclose(combined[:, 1], [-1.5, -2.0])  # the mean fit
    np.testing.assert_allclose(combined[:, 0], np.sqrt(np.array([0.1, 0.3]) ** 2 + 0.2**2))  # std of 12 +- 2


def test_cut_cache_round_trip(tmp_path: Path) -> None:
    cuts = {"a-00-00": np.array([0.0, 3.5, 9.0]), "a-00-01": np.array([0.0, 12.0])}
    evidence = {"a-00-00": np.array([[0.1, -0.5], [0.3, -2.0]]), "a-00-01": np.array([[np.nan, np.nan]])}
    stats = AlignmentStats(words=2, runs=1, networks=6, steps=2000, realigned=7, fit_s=1.5)
    save_cuts(tmp_path / "cuts.npz", CorpusAlignment(cuts, evidence, stats))
    back = load_cuts(tmp_path / "cuts.npz")
    assert back.cuts.keys() == cuts.keys() and all(np.array_equal(back.cuts[k], cuts[k]) for k in cuts)
    assert all(np.array_equal(back.evidence[k], evidence[k], equal_nan=True) for k in cuts)
    assert back.stats == stats


def _build(root: Path, out: Path, method: str) -> pd.DataFrame:
    result = runner.invoke(
        app,
        [
            "build-dataset",
            "--iam-root",
            str(root),
            "--out",
            str(out),
            "--method",
            method,
            "--punctuation",
            "--workers",
            "2",
            "--set",
            "export.write_png=false",
            "--set",
            "segment.align.steps=10",
            "--set",
            "segment.align.rounds=1",
            "--set",
            "segment.align.runs=1",
        ],
    )
    assert result.exit_code == 0, result.output
    return pd.read_parquet(out / "manifest.parquet")


@pytest.mark.slow
def test_the_learned_method_beats_seed_and_is_reproducible(synth_corpus: Path, tmp_path: Path) -> None:
    gt = pd.read_csv(synth_corpus / "chars_gt.csv", keep_default_na=False, dtype={"char": str})
    seed = evaluate(gt, _build(synth_corpus, tmp_path / "seed", "seed"))[0]["words_in_manifest"]
    aligned_manifest = _build(synth_corpus, tmp_path / "aligned", "aligned")
    aligned = evaluate(gt, aligned_manifest)[0]["words_in_manifest"]
    assert aligned["missing"] == 0 and set(aligned_manifest["source"]) == {"estimated:aligned", "pieces"}
    assert aligned["mean_iou"] > seed["mean_iou"] + 0.1
    _build(synth_corpus, tmp_path / "again", "aligned")
    assert (tmp_path / "aligned" / "manifest.csv").read_bytes() == (tmp_path / "again" / "manifest.csv").read_bytes()


def test_true_cuts_fall_between_the_characters_boxes() -> None:
    from iamchars.segment.pretrain import cuts_from_boxes

    # two 10-column letters with a 4-column gap, upright, at rows 0..9
    ys, xs = np.mgrid[0:10, 0:24]
    keep = (xs < 10) | (xs >= 14)
    ink = WordInk.from_pixels(ys[keep], xs[keep], 0.0, 5.0)
    strip = WordStrip.from_ink(ink, (0.0, 100.0), 1)
    assert strip is not None
    cuts = cuts_from_boxes(strip, np.array([[0, 0, 10, 10], [14, 0, 10, 10]], np.float64))
    assert cuts is not None and cuts[0] == 0 and cuts[-1] == 24 and 10 <= cuts[1] <= 14
    assert cuts_from_boxes(strip, np.array([[0, 0, 10, 10], [40, 0, 5, 10]], np.float64)) is None  # no ink


def test_shipped_weights_load_and_bad_ones_are_refused(tmp_path: Path) -> None:
    import pytest

    from iamchars.segment.aligned import AlignerWeightsError, initial_weights

    state = initial_weights("builtin")
    assert state is not None and initial_weights("none") is None
    (tmp_path / "bad.pt").write_bytes(b"not weights")
    with pytest.raises(AlignerWeightsError, match=r"bad\.pt"):
        initial_weights(str(tmp_path / "bad.pt"))


@pytest.mark.slow
def test_pretraining_on_a_synthetic_corpus_gives_loadable_weights_the_same_bytes_anywhere(
    synth_corpus: Path, tmp_path: Path
) -> None:
    import torch

    from iamchars.config import SegmentConfig
    from iamchars.nn import save_state
    from iamchars.segment.aligned import initial_weights
    from iamchars.segment.pretrain import pretrain, words_with_true_cuts

    words = words_with_true_cuts(synth_corpus, SegmentConfig())
    assert len(words) > 200 and all(np.all(np.diff(w.cuts) >= 1) for w in words)
    state = pretrain(words, steps=3, device=torch.device("cpu"))
    save_state(tmp_path / "w.pt", state)
    save_state(tmp_path / "other name.pt", state)
    loaded = initial_weights(str(tmp_path / "w.pt"))
    assert loaded is not None and all(torch.equal(loaded[k], state[k]) for k in state)
    # `make aligner-weights` rebuilds the shipped file byte for byte: nothing in it depends on the file's name
    assert (tmp_path / "w.pt").read_bytes() == (tmp_path / "other name.pt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other name.pt", "w.pt"]  # no temporary file left


def test_missing_aligner_weights_fail_in_one_line_before_any_work(synth_corpus: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pt"
    args = ["build-dataset", "--iam-root", str(synth_corpus), "--out", str(tmp_path / "out"), "--no-progress"]
    result = runner.invoke(app, [*args, "--set", f"segment.align.init='{missing}'"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and str(missing) in result.output
    assert not (tmp_path / "out" / "manifest.parquet").exists()
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not weights\n")  # torch's own message about it runs to several lines
    result = runner.invoke(app, [*args, "--set", f"segment.align.init='{garbage}'"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count("\n") == 1 and "not a PyTorch weights file" in result.output


def test_row_max_pool_matches_max_pool_in_values_and_gradients() -> None:
    import torch

    from iamchars.segment.align.network import RowMaxPool

    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 5)
    x[0, 0, :4] = 0.0  # tied maxima: the gradient must go to the first, as MaxPool2d's does
    for rows in (2, 4):
        grad = torch.randn(2, 3, 8 // rows, 5)
        mine, ref = x.clone().requires_grad_(), x.clone().requires_grad_()
        RowMaxPool(rows)(mine).backward(grad)
        torch.nn.MaxPool2d((rows, 1))(ref).backward(grad)
        assert mine.grad is not None and ref.grad is not None
        assert torch.equal(mine.grad, ref.grad)
        with torch.no_grad():
            assert torch.equal(RowMaxPool(rows)(x), torch.nn.MaxPool2d((rows, 1))(x))


def test_a_segments_logits_read_its_own_words_columns() -> None:
    import torch

    from iamchars.segment.align.network import SAMPLES, SegmentNet

    torch.manual_seed(0)
    net = SegmentNet(5).eval()
    features = torch.randn(3, 48, 20)
    word, a, b = torch.tensor([0, 2, 1, 2]), torch.tensor([0, 3, 7, 12]), torch.tensor([4, 9, 8, 20])
    with torch.no_grad():
        together = net.segments(features, word, a, b)
        for k in range(4):
            f = features[word[k]]  # (C, T): this segment's word alone
            points = a[k] + (b[k] - a[k]) * (torch.arange(SAMPLES) + 0.5) / SAMPLES
            left = points.floor().long()
            right = (left + 1).clamp(max=19)
            w = points - left
            inside = (f[:, left] * (1 - w) + f[:, right] * w).T.flatten()
            edges = [f[:, int(i)] for i in (max(a[k] - 1, 0), a[k], b[k] - 1, min(b[k], 19))]
            size = ((b[k] - a[k]) / 32.0).reshape(1)
            alone = net.head(torch.cat([inside, *edges, size])[None])[0]
            assert torch.allclose(together[k], alone, atol=1e-5)
    learning = net.segments(features, word, a, b)  # with gradients: the training arithmetic, the same logits
    assert learning.requires_grad and torch.allclose(learning, together, atol=1e-5)
