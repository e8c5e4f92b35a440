"""The `aligned` method's corpus-wide pass: every form's word strips (in worker processes), self-training in
this process, the cuts cached in one file so that a killed run does not learn again."""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from iamchars.config import SegmentConfig
from iamchars.errors import UserError
from iamchars.fileio import atomic_path
from iamchars.nn import pick_device
from iamchars.parallel import ordered_map, resolve_workers, usable_cpus
from iamchars.progress import progress_bar
from iamchars.segment.align import WEIGHTS
from iamchars.segment.align.alignment import ALPHABET, EVIDENCE, AlignmentWord
from iamchars.segment.align.network import SegmentNet
from iamchars.segment.align.selftrain import SelfTrainingCost, plan_of, self_train
from iamchars.segment.runner import form_alignment_words


@dataclass(frozen=True)
class StripJob:
    root: Path
    lines: pd.DataFrame
    words: pd.DataFrame
    cfg: SegmentConfig


def strips_of_form(job: StripJob) -> list[AlignmentWord]:
    return form_alignment_words(job.root, job.lines, job.words, job.cfg)


class AlignerWeightsError(UserError, ValueError):
    pass


@dataclass
class AlignmentStats(SelfTrainingCost):
    """What the corpus-wide pass did and what each part of it took (the dataset card reports it)."""

    words: int = 0
    """Words with ink, stripped."""
    strips_s: float = 0.0
    device: str = "cpu"


@dataclass
class CorpusAlignment:
    cuts: dict[str, np.ndarray]
    """Cuts (deslanted ink columns) of every word with ink, by word id."""
    evidence: dict[str, np.ndarray]
    """What the last re-alignment says of each character of those words (`alignment.EVIDENCE`), by word id."""
    stats: AlignmentStats = field(default_factory=AlignmentStats)


def initial_weights(spec: str) -> dict[str, torch.Tensor] | None:
    """ "builtin": the shipped weights pretrained on synthetic fonts; "none": random; else a path."""
    if spec == "none":
        return None
    path = WEIGHTS if spec == "builtin" else Path(spec)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        reason = (exc.strerror or str(exc)) if isinstance(exc, OSError) else "not a PyTorch weights file"
        raise AlignerWeightsError(
            f"{path}: not readable aligner weights ({reason}); make aligner-weights rebuilds them"
        ) from exc
    expected = SegmentNet(len(ALPHABET)).state_dict()
    if not isinstance(state, dict) or {k: tuple(v.shape) for k, v in state.items()} != {
        k: tuple(v.shape) for k, v in expected.items()
    }:
        raise AlignerWeightsError(f"{path}: not weights of this version's aligner (segment.align.init)")
    return state


def align_corpus(
    root: Path,
    lines_by_form: Mapping[str, pd.DataFrame],
    words_by_form: Mapping[str, pd.DataFrame],
    cfg: SegmentConfig,
    workers: int,
    cache: Path | None = None,
    progress: bool = True,
) -> CorpusAlignment:
    """Every word's cuts and what finding them took; read from `cache` (a killed run's) when it is there."""
    if cache is not None and cache.is_file():
        return load_cuts(cache)
    device = pick_device(cfg.align.device, "segment.align.device")  # both checked before any work
    init = initial_weights(cfg.align.init)
    forms = sorted(words_by_form)
    jobs = [StripJob(root, lines_by_form[f], words_by_form[f], cfg) for f in forms]
    words: list[AlignmentWord] = []
    start = time.perf_counter()
    with progress_bar(total=len(jobs), unit="form", desc="aligned: strips", disable=not progress) as bar:
        for found in ordered_map(strips_of_form, jobs, resolve_workers(workers, len(jobs))):
            words += found
            bar.update(1)
    strips_s = time.perf_counter() - start
    plan = cfg.align
    threads = torch.get_num_threads()
    torch.set_num_threads(usable_cpus())
    try:
        planned = plan_of(words, plan)
        desc = f"aligned: {planned.networks} networks (runs x rounds x folds {planned.runs}x{plan.rounds}x{plan.folds})"
        shape = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}{postfix}"
        with progress_bar(total=planned.work, desc=desc, disable=not progress, smoothing=0.05, bar_format=shape) as bar:

            def advance(what: str, done: float) -> None:
                bar.set_postfix_str(what, refresh=False)
                bar.update(done)

            result = self_train(words, plan, device, init, advance)
    finally:
        torch.set_num_threads(threads)
    out = CorpusAlignment(
        {w.word_id: c for w, c in zip(words, result.cuts, strict=True)},
        {w.word_id: e for w, e in zip(words, result.evidence, strict=True)},
        AlignmentStats(**asdict(result.cost), words=len(words), strips_s=strips_s, device=device.type),
    )
    if cache is not None:
        save_cuts(cache, out)
    return out


def save_cuts(path: Path, alignment: CorpusAlignment) -> None:
    cuts = alignment.cuts
    ids = sorted(cuts)
    sizes = np.array([len(cuts[i]) for i in ids], np.int64)
    flat = np.concatenate([cuts[i] for i in ids]) if ids else np.zeros(0)
    evidence = np.concatenate([alignment.evidence[i] for i in ids]) if ids else np.zeros((0, len(EVIDENCE)))
    stats = np.array(json.dumps(asdict(alignment.stats)))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, word_ids=np.array(ids, dtype=str), sizes=sizes, cuts=flat, evidence=evidence, stats=stats)


def load_cuts(path: Path) -> CorpusAlignment:
    with np.load(path) as data:
        ids: Sequence[str] = data["word_ids"].tolist()
        bounds = np.cumsum(data["sizes"])[:-1]
        pieces = np.split(data["cuts"], bounds) if len(ids) else []
        evidence = np.split(data["evidence"], bounds - np.arange(1, len(ids))) if len(ids) else []
        stats = AlignmentStats(**json.loads(str(data["stats"])))
    return CorpusAlignment(dict(zip(ids, pieces, strict=True)), dict(zip(ids, evidence, strict=True)), stats)
