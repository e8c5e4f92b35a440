"""Self-training of the aligner on the corpus's own word labels (the `aligned` method).

Round 0 takes the refined cuts as labels. Each round, for each fold of writers, a `SegmentNet` learns from
the other folds' current cuts and re-aligns this fold's words (`alignment.word_posteriors`): no word is
ever re-aligned by a network that saw its writer, so the network's own mistakes are not simply confirmed. The
first round's networks start from the pretrained weights (`pretrain.py`); each later one continues its fold's
network of the round before, for a share of the steps. Intermediate rounds work on a sample of words; the
last one re-aligns every word. Several runs, seeds apart, can be averaged. Nothing here reads files."""

from __future__ import annotations

import itertools
import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from iamchars.config import AlignConfig
from iamchars.nn import deterministic
from iamchars.segment.align.alignment import (
    ALPHABET,
    EVIDENCE,
    MIN_SEGMENT,
    AlignmentWord,
    Lattice,
    WordPosterior,
    candidate_cuts,
    end_candidates,
    neighbour_stroke,
    segment_pairs,
    stretch_word,
    to_strip_columns,
    training_segments,
    with_neighbour_stroke,
    word_posteriors,
)
from iamchars.segment.align.network import SegmentNet, batches_by_width, cycle_batches, stack_strips

INDEX = {ch: i for i, ch in enumerate(ALPHABET)}

Progress = Callable[[str, float], None]
"""Told (where: run, round, fold and what; work just done, in optimiser steps) after every step of every
network and every batch of words re-aligned."""

REALIGN_WORDS_PER_STEP = 32
"""Words re-aligned in about the time of one optimiser step (forward only, but many more segments per word):
how progress weighs re-alignment against fitting, so that its estimate of the time left holds."""


@dataclass
class SelfTrainingCost:
    """What a self-training did and what it took, all runs together."""

    runs: int = 1
    networks: int = 0
    """Networks fitted."""
    steps: int = 0
    """Optimiser steps taken, all networks together."""
    realigned: int = 0
    """Word alignments computed, all rounds together."""
    fit_s: float = 0.0
    realign_s: float = 0.0


_SUMMED = ("networks", "steps", "realigned", "fit_s", "realign_s")
"""The cost figures that several runs add up (all but `runs`)."""


@dataclass
class SelfTrainingResult:
    cuts: list[np.ndarray]
    """Every word's final cuts (deslanted ink columns, n + 1 each), in input order."""
    evidence: list[np.ndarray]
    """Every word's (n, len(EVIDENCE)) evidence from its last re-alignment, NaN for a word never re-aligned."""
    cost: SelfTrainingCost = field(default_factory=SelfTrainingCost)


def unknown_evidence(word: AlignmentWord) -> np.ndarray:
    return np.full((len(word.text), len(EVIDENCE)), np.nan)


def writer_folds(words: Sequence[AlignmentWord], folds: int) -> np.ndarray:
    """Fold of each word: writers ordered by a hash of their id and dealt round-robin, so folds are balanced
    in writers and do not depend on the input order (word ids instead when there are too few writers)."""
    keys = [w.writer_id for w in words] if len({w.writer_id for w in words}) >= folds else [w.word_id for w in words]
    dealt = sorted(set(keys), key=lambda k: (zlib.crc32(k.encode()), k))
    fold_of = {k: i % folds for i, k in enumerate(dealt)}
    return np.array([fold_of[k] for k in keys], np.int64)


def movable_words(words: Sequence[AlignmentWord]) -> np.ndarray:
    """Which words self-training re-aligns: every character in the alphabet, and more than one (a word of
    one letter has its exact cuts already)."""
    return np.array([len(w.text) > 1 and all(ch in INDEX for ch in w.text) for w in words], bool)


def combine_runs(runs: Sequence[Sequence[np.ndarray]]) -> list[np.ndarray]:
    """Each word's cuts from several runs: inner cuts at their mean (the posterior mean under an equal mixture
    of the runs), the two ends at their median, so that with three runs an end is one that a run chose (the
    ink's end or a gap's edge, never a place between them inside a stray stroke)."""
    out = []
    for per_run in zip(*runs, strict=True):
        stacked = np.stack(per_run)
        cuts = stacked.mean(axis=0)
        cuts[[0, -1]] = np.median(stacked[:, [0, -1]], axis=0)
        out.append(np.where((stacked == stacked[0]).all(axis=0), stacked[0], cuts))  # agreed: exactly that
    return out


def combine_evidence(
    words: Sequence[AlignmentWord], runs: Sequence[Sequence[np.ndarray]], cuts: Sequence[Sequence[np.ndarray]]
) -> list[np.ndarray]:
    """Each word's evidence from several runs: the mean fit, and a spread that adds the runs' disagreement on
    the character's cuts to their mean posterior spread (the spread of the equal mixture of the runs)."""
    out = []
    for word, per_run, run_cuts in zip(words, zip(*runs, strict=True), zip(*cuts, strict=True), strict=True):
        stacked = np.stack(per_run)
        apart = np.stack(run_cuts).std(axis=0) / max(word.length / len(word.text), 1e-9)
        disagree = np.maximum(apart[:-1], apart[1:])
        spread = np.sqrt((stacked[:, :, 0] ** 2).mean(axis=0) + disagree**2)
        out.append(np.stack([spread, stacked[:, :, 1].mean(axis=0)], axis=1))
    return out


def self_train(
    words: Sequence[AlignmentWord],
    plan: AlignConfig,
    device: torch.device,
    init: Mapping[str, torch.Tensor] | None = None,
    progress: Progress | None = None,
) -> SelfTrainingResult:
    """`init`: the weights every network starts from (`pretrain.WEIGHTS`), random when None. Run k of seed s
    is seeded s * runs + k, so one run is seed s itself and different seeds share no run."""
    runs = plan.runs
    results = [
        self_train_once(words, replace(plan, seed=plan.seed * runs + k), device, init, _in_run(progress, k, runs))
        for k in range(runs)
    ]
    if runs == 1:
        return results[0]
    costs = [r.cost for r in results]
    total = SelfTrainingCost(runs, **{k: sum(getattr(c, k) for c in costs) for k in _SUMMED})
    all_cuts = [r.cuts for r in results]
    return SelfTrainingResult(
        combine_runs(all_cuts), combine_evidence(words, [r.evidence for r in results], all_cuts), total
    )


def _in_run(progress: Progress | None, run: int, runs: int) -> Progress | None:
    if progress is None or runs == 1:
        return progress
    report = progress
    return lambda what, done: report(f"run {run + 1}/{runs}, {what}", done)


def self_train_once(
    words: Sequence[AlignmentWord],
    plan: AlignConfig,
    device: torch.device,
    init: Mapping[str, torch.Tensor] | None = None,
    progress: Progress | None = None,
) -> SelfTrainingResult:
    """One self-training: `plan.rounds` rounds of cross-fitted networks, seeded by `plan.seed`."""
    cuts = [w.cuts.astype(np.float64) for w in words]
    evidence = [unknown_evidence(w) for w in words]
    usable = np.array([all(ch in INDEX for ch in w.text) for w in words], bool)
    movable = movable_words(words)
    fold = writer_folds(words, plan.folds)
    if len(set(fold[movable].tolist())) < plan.folds:
        return SelfTrainingResult(cuts, evidence)  # too few words to hold any out
    sample_rng = np.random.default_rng(plan.seed)
    in_fold = [np.flatnonzero(usable & (fold == f)).tolist() for f in range(plan.folds)]
    samples = [sorted(sample_rng.permutation(ids)[: plan.sample_words].tolist()) for ids in in_fold]
    refined = [w.cuts for w in words]
    result = SelfTrainingResult(cuts, evidence)
    cost = result.cost
    nets: list[SegmentNet | None] = [None] * plan.folds
    for r in range(plan.rounds):
        last = r == plan.rounds - 1
        new = list(cuts)
        for f in range(plan.folds):
            learn = [i for g in range(plan.folds) if g != f for i in samples[g]]
            start = time.perf_counter()
            where = f"round {r + 1}/{plan.rounds}, fold {f + 1}/{plan.folds}"
            step = None if progress is None else (lambda report=progress, at=f"{where}, fitting": report(at, 1))
            previous = nets[f]
            start_from = init if previous is None else previous.state_dict()
            steps = steps_for(len(learn), plan, later=previous is not None)
            net = fit_segment_net(
                words, cuts, learn, INDEX, plan, plan.seed + 1000 * r + f, device, start_from, step, steps
            )
            nets[f] = net
            cost.fit_s += time.perf_counter() - start
            cost.networks += 1
            cost.steps += steps
            targets = [i for i in (in_fold[f] if last else samples[f]) if movable[i]]
            start = time.perf_counter()
            done = (
                None
                if progress is None
                else lambda n, report=progress, at=f"{where}, re-aligning": report(at, n / REALIGN_WORDS_PER_STEP)
            )
            found = realign(net, words, refined, targets, INDEX, plan, device, done)
            for i, posterior in zip(targets, found, strict=True):
                new[i] = posterior.cuts
                if last:
                    evidence[i] = posterior.evidence(words[i].length)
            cost.realign_s += time.perf_counter() - start
            cost.realigned += len(targets)
        cuts = new
    result.cuts = cuts
    return result


def fit_segment_net(
    words: Sequence[AlignmentWord],
    cuts: Sequence[np.ndarray],
    learn: Sequence[int],
    index: dict[str, int],
    plan: AlignConfig,
    seed: int,
    device: torch.device,
    init: Mapping[str, torch.Tensor] | None,
    on_step: Callable[[], None] | None = None,
    steps: int | None = None,
) -> SegmentNet:
    """A network trained from `init` (random weights when None) on the given words' current cuts (and
    shifted, wrong segments) for `steps` steps (`steps_for` when None); `on_step` is called after each
    optimiser step (progress)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = SegmentNet(len(index))
    if init is not None:
        net.load_state_dict(init)
    net = net.to(device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=plan.lr, weight_decay=5e-4)
    steps = steps_for(len(learn), plan) if steps is None else steps
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, plan.lr, total_steps=steps)
    batches = batches_by_width([words[i].strip.shape[1] for i in learn], plan.words_per_batch)
    stream = cycle_batches(batches, rng)
    net.train()
    with deterministic():
        for _ in range(steps):
            batch = [learn[k] for k in next(stream)]
            word_ix, starts, ends, labels = [], [], [], []
            donors = [words[batch[(j + 1) % len(batch)]].strip for j in range(len(batch))]
            shown = [augmented(words[i], cuts[i], plan, rng, d) for i, d in zip(batch, donors, strict=True)]
            for j, w in enumerate(shown):
                a, b, owner = training_segments(w.cuts, w.length, plan.negatives, rng)
                sa = to_strip_columns(a, w.scale, w.strip.shape[1])
                word_ix.append(np.full(len(a), j))
                starts.append(sa)
                ends.append(np.maximum(to_strip_columns(b, w.scale, w.strip.shape[1]), sa + 1))
                codes = np.array([index[ch] for ch in w.text])
                labels.append(np.where(owner >= 0, codes[np.maximum(owner, 0)], len(index)))
            features = net.features(stack_strips([w.strip for w in shown], device))
            ix, a_t, b_t, y = (torch.from_numpy(np.concatenate(v)).to(device) for v in (word_ix, starts, ends, labels))
            loss = F.cross_entropy(net.segments(features, ix, a_t, b_t), y, label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if on_step is not None:
                on_step()
    return net.eval()


@dataclass(frozen=True)
class Plan:
    """What a whole self-training will do (every run, round and fold), known before its first step."""

    runs: int
    networks: int
    steps: int
    realigned: int
    """Word alignments, about (a sample's movable share is estimated)."""

    @property
    def work(self) -> float:
        """The progress bar's total, in optimiser steps (`REALIGN_WORDS_PER_STEP`)."""
        return self.steps + self.realigned / REALIGN_WORDS_PER_STEP


def plan_of(words: Sequence[AlignmentWord], plan: AlignConfig) -> Plan:
    """The networks, steps and re-alignments that `self_train` will make of these words."""
    movable = movable_words(words)
    usable = np.array([all(ch in INDEX for ch in w.text) for w in words], bool)
    fold = writer_folds(words, plan.folds)
    runs = plan.runs
    if len(set(fold[movable].tolist())) < plan.folds:
        return Plan(runs, 0, 0, 0)
    in_fold = [int((usable & (fold == f)).sum()) for f in range(plan.folds)]
    sampled = [min(plan.sample_words, n) for n in in_fold]
    moving = [int((movable & (fold == f)).sum()) for f in range(plan.folds)]
    first = sum(steps_for(sum(sampled) - sampled[f], plan) for f in range(plan.folds))
    later = sum(steps_for(sum(sampled) - sampled[f], plan, later=True) for f in range(plan.folds))
    sampled_moving = sum(m * s / max(n, 1) for m, s, n in zip(moving, sampled, in_fold, strict=True))
    realigned = round((plan.rounds - 1) * sampled_moving) + sum(moving)
    return Plan(runs, runs * plan.rounds * plan.folds, runs * (first + (plan.rounds - 1) * later), runs * realigned)


def steps_for(words: int, plan: AlignConfig, later: bool = False) -> int:
    """A network's optimiser steps: `plan.steps`, or fewer when that many would pass over its `words` more
    than `plan.epochs` times (a small corpus stops sooner); a `later` round's network, which continues its
    fold's network of the round before, takes `plan.later_steps` of them."""
    steps = max(1, min(plan.steps, math.ceil(plan.epochs * words / plan.words_per_batch)))
    return max(1, round(steps * plan.later_steps)) if later else steps


def augmented(
    word: AlignmentWord, cuts: np.ndarray, plan: AlignConfig, rng: np.random.Generator, donor: np.ndarray
) -> AlignmentWord:
    """The word with its current cuts, its characters' widths randomly stretched and a neighbour's stroke
    added (from `donor`, another word's strip) when the plan asks."""
    word = replace(word, cuts=cuts)
    if plan.stretch > 0 or plan.stretch_word > 0:
        n = len(word.text)
        log = rng.normal(0.0, plan.stretch, n) + rng.uniform(-plan.stretch_word, plan.stretch_word)
        word = stretch_word(word, np.exp(log))
    if plan.neighbours > 0:
        for after, chance in ((True, plan.neighbours), (False, plan.neighbours / 3)):
            if rng.random() < chance:
                word = with_neighbour_stroke(word, neighbour_stroke(rng, donor), int(rng.integers(1, 7)), after)
    return word


@torch.no_grad()
def realign(
    net: SegmentNet,
    words: Sequence[AlignmentWord],
    centres: Sequence[np.ndarray],
    targets: Sequence[int],
    index: dict[str, int],
    plan: AlignConfig,
    device: torch.device,
    on_batch: Callable[[int], None] | None = None,
    words_per_batch: int = 64,
) -> list[WordPosterior]:
    """The target words re-aligned: candidates around each word's `centres` (its refined cuts), every
    candidate segment scored by the network, then each cut's posterior (`word_posteriors`); `on_batch` is told
    the words of each batch done (progress)."""
    out: dict[int, WordPosterior] = {}
    for batch in batches_by_width([words[i].strip.shape[1] for i in targets], words_per_batch):
        ids = [targets[k] for k in batch]
        features = net.features(stack_strips([words[i].strip for i in ids], device))
        plans, word_ix, starts, ends, codes = [], [], [], [], []
        for j, i in enumerate(ids):
            w = words[i]
            outer = end_candidates(w, plan.end_reach) if plan.end_reach > 0 else None
            candidates, offsets = candidate_cuts(centres[i], w.length, plan.reach, plan.candidates, outer)
            a, b = segment_pairs(candidates)
            feasible = b - a >= MIN_SEGMENT  # Viterbi rules the others out: about a fifth, never scored
            sizes = [len(x) * len(y) for x, y in itertools.pairwise(candidates)]
            a, b = a[feasible], b[feasible]
            sa = to_strip_columns(a, w.scale, w.strip.shape[1])
            plans.append((candidates, offsets, feasible, len(a)))
            word_ix.append(np.full(len(a), j))
            starts.append(sa)
            ends.append(np.maximum(to_strip_columns(b, w.scale, w.strip.shape[1]), sa + 1))
            codes.append(np.repeat([index[ch] for ch in w.text], sizes)[feasible])
        ix, a_t, b_t = (torch.from_numpy(np.concatenate(v)).to(device) for v in (word_ix, starts, ends))
        logp = F.log_softmax(net.segments(features, ix, a_t, b_t).float(), dim=1)
        char_logp = logp.gather(1, torch.from_numpy(np.concatenate(codes)).to(device)[:, None])[:, 0].cpu().numpy()
        pos = 0
        lattices = []
        for candidates, offsets, feasible, scored in plans:
            scores = np.full(len(feasible), -1e9)
            scores[feasible] = char_logp[pos : pos + scored]
            pos += scored
            move = [-0.5 * plan.prior_weight * (o / plan.sigma) ** 2 for o in offsets]
            lattices.append(Lattice(candidates, scores, move))
        out.update(zip(ids, word_posteriors(lattices), strict=True))
        if on_batch is not None:
            on_batch(len(ids))
    return [out[i] for i in targets]
