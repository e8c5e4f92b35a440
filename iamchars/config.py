"""Typed pipeline configuration, loaded from `pipelines/*.toml` and overridable on the command line.

Every stage reads its parameters from one of these dataclasses; nothing is configured through globals, so a
run is fully described by the TOML file plus the overrides recorded beside its outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import math
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iamchars.errors import UserError
from iamchars.fileio import FileError, read_bytes

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

WRITER_FONTS = (
    "caveat",
    "kalam",
    "indie-flower",
    "satisfy",
    "yellowtail",
    "zeyada",
    "great-vibes",
    "shadows-into-light",
    "pacifico",
    "oleo-script",
    "delius",
    "permanent-marker",
)
"""Fonts that may stand for synthetic writers. Dancing Script is deliberately absent: it is the font the
segmentation aligns with, and a writer in that font would let alignment grade its own handwriting."""


class ConfigError(UserError, ValueError):
    """A configuration file or override that cannot be used; the message names the file and key."""

    exit_code = 2


def bounded(default: Any, lo: float | None = None, hi: float | None = None, shapes_output: bool = True) -> Any:
    """A numeric field with its allowed range, checked when a config is loaded and shown in `--help`.

    `shapes_output=False` marks a field (a worker count) that cannot change a stage's results, so changing it
    does not invalidate cached work (see `PipelineConfig.digest`)."""
    return field(default=default, metadata={"min": lo, "max": hi, "shapes_output": shapes_output})


def one_of(default: str, *choices: str) -> Any:
    """A text field with its allowed values."""
    return field(default=default, metadata={"choices": (default, *choices)})


def registered(default: str, registry: str, *also: str) -> Any:
    """A text field whose allowed values are the names of a registry kept beside the code they name
    (`module:ATTRIBUTE`, a mapping), plus `also`. The registry is read only to check a value other than the
    default (a test keeps every default registered), so loading a config imports nothing heavy (torch)."""
    return field(default=default, metadata={"registry": registry, "also": also})


def registry_names(registry: str) -> tuple[str, ...]:
    """The names a `module:ATTRIBUTE` registry holds, in its order."""
    module, attribute = registry.split(":")
    return tuple(getattr(importlib.import_module(module), attribute))


DEVICE_PATTERN = r"auto|cpu|cuda(:[0-9]+)?|mps"
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"


def device_field() -> Any:
    """A torch device name: "auto" (a GPU when torch sees one), "cpu", "cuda", "cuda:N" or "mps"."""
    return field(default="auto", metadata={"pattern": DEVICE_PATTERN, "allowed": DEVICE_HELP})


def font_field(default: str) -> Any:
    """A fontpkg name or a path to a TTF/OTF file, checked when the config is loaded."""
    return field(default=default, metadata={"font": True})


@dataclass
class SplitConfig:
    ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    """train/val/test shares of writers when no IAM task files are present."""
    seed: int = bounded(0, 0)
    """Seed of the writer hash that splits writers the task files do not list."""
    unlisted: str = one_of("hash", "exclude")
    """Writers absent from IAM's task files: "hash" (deterministic writer split) or "exclude"."""


@dataclass
class ParseConfig:
    strict: bool = False
    """Raise on the first malformed row instead of skipping it into the rejects report."""
    check_images: bool = True
    """Check every line/word image: it exists, is a complete PNG (up to its end chunk) and matches its box."""
    ignore_word_boxes: bool = False
    """Leave words.txt (and the XML's word boxes) unread and find every line's words in its ink, as for the
    lines that have no word rows at all."""


@dataclass
class SynthConfig:
    forms: int = bounded(24, 1, 100_000)
    """Forms to write (a form is one page of one writer)."""
    lines_per_form: int = bounded(8, 1, 40)
    """Handwritten lines per form."""
    seed: int = bounded(0, 0)
    """Seed of everything random in the corpus: same seed, same bytes."""
    fonts: list[str] = field(default_factory=lambda: list(WRITER_FONTS), metadata={"font": True})
    """Writer fonts (fontpkg names or TTF paths), dealt to writers in turn."""
    forms_per_writer: int = bounded(2, 1, 1000)
    """Forms each synthetic writer fills."""
    err_rate: float = bounded(0.05, 0.0, 1.0)
    """Share of lines flagged `err`; one word of such a line gets a truncated box, as IAM's errors do."""
    workers: int = bounded(0, 0, 512, shapes_output=False)
    """Worker processes (0: one per CPU this process may use)."""


@dataclass
class AlignConfig:
    """The learned aligner (`segment.method = "aligned"`) and its self-training plan, as `[segment.align]`.

    Each round, for each fold of writers, a network learns from the other folds' current cuts and re-aligns
    this fold's words (`segment.align.selftrain`). Lengths are in the line's character widths."""

    rounds: int = bounded(3, 1, 20)
    """Rounds of self-training (re-align, learn again)."""
    folds: int = bounded(2, 2, 16)
    """Writer folds: a word is re-aligned only by networks that never saw its writer."""
    steps: int = bounded(600, 10, 1_000_000)
    """Optimiser steps of each first-round network (one per fold), at most."""
    later_steps: float = bounded(1 / 3, 0.01, 1.0)
    """Share of a first-round network's steps that each later round takes: a later round's network continues
    its fold's network of the round before, so it needs only to catch up with the new cuts."""
    epochs: float = bounded(50.0, 1.0, 100_000.0)
    """At most this many passes over the words a network learns from (a small corpus's networks stop sooner)."""
    words_per_batch: int = bounded(32, 1, 4096)
    """Words per optimiser step."""
    sample_words: int = bounded(4000, 10, 10_000_000)
    """Words per fold that the intermediate rounds learn from and re-align (the last round re-aligns all)."""
    negatives: int = bounded(2, 0, 64)
    """Wrong cut positions scored against each true one in training."""
    lr: float = bounded(3e-3, 1e-6, 1.0)
    """Peak learning rate of each network (one-cycle schedule, AdamW)."""
    reach: float = bounded(1.4, 0.0, 3.0)
    """How far (character widths) a cut may move from its refined position."""
    candidates: int = bounded(15, 1, 101)
    """Positions each cut may take, evenly spaced over +- reach."""
    end_reach: float = bounded(1.4, 0.0, 5.0)
    """How far (character widths) the first and last cut may move inwards from the ends of the word's ink, to
    the edge of a blank gap only, leaving a stroke that is none of its characters to no character; 0 keeps
    them at the ink's ends."""
    neighbours: float = bounded(0.3, 0.0, 1.0)
    """Chance that a training word is shown with such a stroke (a full stop, a neighbour's tail) just past
    its ink (a third as often before it)."""
    sigma: float = bounded(0.5, 0.01, 10.0)
    """Width (character widths) of the Gaussian prior that keeps cuts near their refined place."""
    prior_weight: float = bounded(1.0, 0.0, 100.0)
    """Weight of that prior against the network's log-probabilities."""
    stretch: float = bounded(0.15, 0.0, 1.0)
    """Spread (log scale) of the random width of each character in a training copy of a word."""
    stretch_word: float = bounded(0.2, 0.0, 1.0)
    """Half-range (log scale) of the random width of a whole training copy; with both at 0 the networks learn
    from the words as they are."""
    runs: int = bounded(1, 1, 16)
    """Independent self-trainings, seeds apart, whose cuts are averaged: a little steadier boxes on a small
    corpus, each run costing the whole self-training again."""
    init: str = "builtin"
    """Starting weights: "builtin" (pretrained on synthetic fonts, shipped), "none" (random) or a path to
    weights written by `make aligner-weights`."""
    seed: int = bounded(0, 0, 2**31 - 1)
    """Seed of the self-training (run k of seed s uses s * runs + k)."""
    device: str = device_field()
    """"auto" (a GPU when torch sees one), "cpu", "cuda", "cuda:N" or "mps"."""


@dataclass
class SegmentConfig:
    method: str = registered("aligned", "iamchars.segment.methods:METHODS")
    """A segmentation method of `segment/methods.py`: "aligned" (refined cuts re-aligned by a network
    self-trained on the corpus's own word labels), "refined" (font cuts fitted to the ink) or "seed" (the
    line-statistics band with a linear font alignment)."""
    k_std: float = bounded(1.5, 0.1, 10.0)
    """Vertical band half-height in line-ink standard deviations."""
    font: str = font_field("dancing-script")
    """fontpkg name or a path to any TTF/OTF file."""
    font_size: int = bounded(64, 16, 256)
    """Size (pixels) at which the alignment font is rendered."""
    slant_max_deg: float = bounded(40.0, 0.0, 60.0)
    """Largest slant (degrees, either way) searched for each line."""
    slant_steps: int = bounded(9, 1, 181)
    """Slants tried on the coarse grid before the fine search."""
    snap_window: float = bounded(0.35, 0.0, 2.0)
    """How far (in mean character widths) a cut may move to reach a projection minimum."""
    ink_threshold: int = bounded(0, 0, 255)
    """Grey level under which a pixel is ink; 0 takes Otsu's threshold of each line."""
    min_ink_pixels: int = bounded(2, 1, 10_000)
    """A word with fewer ink pixels than this gets the seed method's boxes."""
    guide_k: float = bounded(4.0, 0.5, 20.0)
    """Refined boxes never reach beyond mean +- guide_k * std of the line ink (stray strokes of other lines)."""
    snap: bool = True
    """Anchor cuts in gaps of the ink, then move each cut to a nearby minimum of the column ink profile."""
    gap_reach: float = bounded(0.75, 0.0, 5.0)
    """How far (in mean character widths) a gap in the ink may pull a predicted cut."""
    deslant: bool = True
    """Remove each line's slant before cutting its words."""
    cut_paths: bool = True
    """Cut between characters along the cheapest path through the ink, not a straight (deslanted) line."""
    path_reach: float = bounded(0.3, 0.0, 3.0)
    """How far (in mean character widths) a cut path may bend away from its cut."""
    path_bend: float = bounded(0.02, 0.0, 10.0)
    """What a cut path pays per row for each column it strays from its cut, against 1 per ink pixel crossed:
    low lets it curve round the ink, high keeps it straight."""
    fragment_share: float = bounded(0.25, 0.0, 1.0)
    """A piece of a character's ink cut off from its body, smaller than this share of its pixels and touching
    a neighbour's ink, goes to that neighbour (a sliver of the next letter's stroke); 0 keeps every piece."""
    stray_gap: float = bounded(0.6, 0.0, 100.0)
    """Ink at either end of a word box past a blank this many of the line's character widths wide, holding
    at most `stray_share` of a character's ink, is no character's: a digit, quote or full stop that the
    transcription leaves out (`refine.word_body`); 0 keeps all the ink."""
    stray_share: float = bounded(1.0, 0.0, 100.0)
    """How much ink (in the rest of the word's mean pixels per character) such a group may hold at most."""
    stop_share: float = bounded(0.25, 0.0, 100.0)
    """A mark after a word's last letter, past a blank of at least a tenth of a character width
    (`refine.STOP_GAP`), below the line's ink mean and holding at most this share of the word's ink per
    character, is a full stop or comma that the transcription leaves out (`refine.word_end`); 0 keeps it."""
    dot_reach: float = bounded(1.0, 0.0, 5.0)
    """A small mark above the line's middle, touching no other ink, goes to the nearest i or j whose stem is
    within this many mean character widths (a dot written over the next letter); 0 leaves marks to the cuts."""
    align: AlignConfig = field(default_factory=lambda: AlignConfig())
    """`aligned`: the learned aligner and its self-training plan (`[segment.align]`)."""


@dataclass
class ExportConfig:
    size: int = bounded(32, 16, 256)
    """Tile side S in pixels."""
    layout: str = registered("none", "iamchars.layout.formats:FORMATS", "none")
    """With a PAGE or ALTO input (`--corpus`): also write its files back in this format of
    `layout/formats.py` ("page", "alto"), into OUT/<format>/, with a Glyph per exported character (its box
    and confidence) inside its word; "none" writes none."""
    classes: str = one_of("byclass", "bymerge", "letters", "digits")
    """byclass (62), bymerge (47), letters (26, case-folded), digits (10)."""
    punctuation: bool = False
    """Add the 16 punctuation classes to the class set."""
    include_err: bool = False
    """Also export words of lines IAM flags `err` (segmentation errors in its own boxes)."""
    min_confidence: float = bounded(0.0, 0.0, 1.0)
    """Drop characters whose confidence (the calibrated probability that the box is right) is below this."""
    boxes: str = "estimated"
    """"estimated" (segmentation) or "gt:PATH/chars_gt.csv" (true boxes of a synthetic corpus)."""
    workers: int = bounded(0, 0, 512, shapes_output=False)
    """Worker processes (0: one per CPU this process may use)."""
    write_png: bool = True
    """Write one PNG per character under images/ (the packed arrays are always written)."""
    qa_lines: int = bounded(6, 0, 1000)
    """Lines drawn with their boxes in qa/overlays.png."""
    qa_per_class: int = bounded(48, 1, 10_000)
    """Tiles per class in each qa/classes/ sheet."""
    crop: str = one_of("char", "line")
    """"char": the box fills the tile (EMNIST); "line": a window of the line's scale keeps size and height."""
    line_window_stds: float = bounded(3.0, 1.0, 10.0)
    """Half the side of a `line` crop window, in line-ink standard deviations."""
    max_reject_share: float = bounded(0.5, 0.0, 1.0)
    """A run that rejects more than this share of its word rows fails (the rejects report is still written)."""


@dataclass
class TrainConfig:
    model: str = registered("resnet", "iamchars.train.models:MODELS")
    """Architecture: a model of `train/models.py` (lenet5, vgg, resnet)."""
    epochs: int = bounded(12, 1, 10_000)
    """Passes over the training split."""
    batch_size: int = bounded(256, 1, 1 << 20)
    """Images per optimiser step (per process under torchrun)."""
    optimizer: str = one_of("adamw", "sgd")
    """"adamw", or "sgd" (Nesterov momentum)."""
    lr: float = bounded(3e-3, 1e-8, 10.0)
    """Peak learning rate."""
    weight_decay: float = bounded(5e-4, 0.0, 1.0)
    """Decoupled weight decay (not on norms and biases)."""
    momentum: float = bounded(0.9, 0.0, 0.9999)
    """SGD momentum."""
    schedule: str = one_of("onecycle", "cosine")
    """"onecycle", or "cosine" with a linear warm-up."""
    label_smoothing: float = bounded(0.1, 0.0, 0.9)
    """Share of each target spread over the other classes."""
    augment: bool = True
    """Random affine, elastic, brightness/contrast and erasing on the device."""
    ema: float = bounded(0.0, 0.0, 0.99999)
    """EMA decay of the weights (0 disables)."""
    compile: bool = False
    """torch.compile the model (GPU speed; slow to start)."""
    amp: bool = True
    """bf16 autocast on CUDA (ignored on the CPU)."""
    channels_last: bool = True
    """Channels-last memory format (faster convolutions on CUDA)."""
    device: str = device_field()
    """"auto" (a GPU when torch sees one), "cpu", "cuda", "cuda:N" or "mps"."""
    seed: int = bounded(0, 0)
    """Seed of initialisation, batches and augmentation: same seed, same run on a CPU."""
    patience: int = bounded(0, 0, 10_000)
    """Early stopping after this many epochs without a better validation accuracy (0 disables)."""
    init: str = ""
    """A checkpoint to start from (transfer learning); its head is re-made when the class sets differ."""
    freeze: int = bounded(0, 0, 20)
    """Train with the first N stages of the feature extractor frozen."""
    backbone_lr_scale: float = bounded(0.1, 0.0, 1.0)
    """With `init`: the backbone's learning rate as a share of `lr` (the new head gets all of it)."""
    balance: bool = False
    """Class-balanced sampling: rare classes drawn more often (see `train.tensors.balanced_weights`)."""
    geometry: bool = False
    """Feed each box's top, bottom and width in its line's ink stds to the classifier beside the crop
    (`train.models.GeometryNet`): the size and place that an EMNIST-style crop erases."""
    threads: int = bounded(0, 0, 1024)
    """CPU threads for torch (0: OMP_NUM_THREADS when set, a share of the CPUs under torchrun, else the usable
    CPUs that other work leaves free; see `iamchars.parallel.choose_threads`)."""


@dataclass
class PipelineConfig:
    name: str = "default"
    """A name for the run, recorded with its outputs."""
    split: SplitConfig = field(default_factory=SplitConfig)
    parse: ParseConfig = field(default_factory=ParseConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self, *sections: str) -> str:
        """A short stable hash of the named sections, used to tell whether cached work is still valid; fields
        that cannot change the results (worker counts) are left out."""
        payload = {s: _shaping_values(getattr(self, s)) for s in sections}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _shaping_values(section: Any) -> dict[str, Any]:
    """A section's values (nested sections as dicts) without the fields marked `shapes_output=False`."""
    return {
        f.name: _shaping_values(v) if dataclasses.is_dataclass(v := getattr(section, f.name)) else v
        for f in dataclasses.fields(section)
        if f.metadata.get("shapes_output", True)
    }


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check a TOML value against a dataclass field type (ints are accepted where floats are expected)."""
    hint = annotation
    origin = typing.get_origin(hint)
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        (item_type,) = typing.get_args(hint)[:1] or (Any,)
        return [_coerce(v, item_type, where) for v in value]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(value, args[0], where)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool) and type(value) is not hint:
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


RENAMED = {"export.min_score": "export.min_confidence"}
"""Keys of earlier versions, and what they are now: a config that names one fails saying so."""


def section_names() -> list[str]:
    """The config's sections (`split`, `parse`, ...), as TOML tables and `--set section.key=...` name them."""
    defaults = PipelineConfig()
    return [f.name for f in dataclasses.fields(defaults) if dataclasses.is_dataclass(getattr(defaults, f.name))]


def _merge(obj: Any, data: dict[str, Any], source: str, prefix: str = "") -> None:
    """Set `obj`'s keys from a (nested) TOML table; a nested dataclass is a section (`[segment.align]`)."""
    hints = typing.get_type_hints(type(obj))
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if dotted in RENAMED:
            raise ConfigError(f"{source}: {dotted!r} is now {RENAMED[dotted]!r}")
        if key not in hints:
            if not prefix and isinstance(value, dict):
                raise ConfigError(f"{source}: unknown section [{key}] (known: {', '.join(section_names())})")
            raise ConfigError(f"{source}: unknown key {dotted!r} (known: {', '.join(sorted(hints))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{source}: {dotted} = {value!r}: {dotted} is a section, not a value; set its keys "
                    f"([{dotted}] in TOML, or --set {dotted}.KEY=VALUE)"
                )
            _merge(current, value, source, f"{dotted}.")
        elif isinstance(value, dict):
            raise ConfigError(f"{source}: [{dotted}]: {dotted} is a value, not a section")
        else:
            setattr(obj, key, _coerce(value, hints[key], f"{source}: {dotted}"))


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse `section.key=value`; the value uses TOML syntax and falls back to a bare string."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected section.key=value")
    dotted, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return dotted.strip().split("."), value


def field_limits(section: Any, key: str) -> dict[str, Any]:
    """The declared range (`min`, `max`) or `choices` of a config field, for validation and for `--help`."""
    spec = {f.name: f for f in dataclasses.fields(section)}[key]
    return {k: v for k, v in spec.metadata.items() if k in ("min", "max", "choices") and v is not None}


def default_of(section: type, key: str) -> Any:
    """A field's default value, as `--help` shows it."""
    return getattr(section(), key)


def validate(cfg: PipelineConfig) -> None:
    """Every value inside its declared range or choices; the message names the key and the allowed values."""
    for section_field in dataclasses.fields(cfg):
        section = getattr(cfg, section_field.name)
        if dataclasses.is_dataclass(section):
            _validate_section(section, f"{section_field.name}.")
    ratios = cfg.split.ratios
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ConfigError(f"split.ratios = {ratios!r}: must be three non-negative train/val/test shares")


def _validate_section(section: Any, prefix: str) -> None:
    for spec in dataclasses.fields(section):
        value = getattr(section, spec.name)
        if dataclasses.is_dataclass(value):
            _validate_section(value, f"{prefix}{spec.name}.")
            continue
        where = f"{prefix}{spec.name} = {value!r}"
        numbers = value if isinstance(value, list) else [value]
        if any(isinstance(v, float) and not math.isfinite(v) for v in numbers):
            raise ConfigError(f"{where}: must be a finite number")
        lo, hi, choices = (spec.metadata.get(k) for k in ("min", "max", "choices"))
        pattern = spec.metadata.get("pattern")
        if pattern is not None and not re.fullmatch(pattern, str(value)):
            raise ConfigError(f"{where}: must be {spec.metadata['allowed']}")
        if spec.metadata.get("font"):
            if isinstance(value, list) and not value:
                raise ConfigError(f"{where}: names no font; give at least one")
            _check_fonts(where, numbers)
        if lo is not None and value < lo:
            raise ConfigError(f"{where}: must be >= {lo}")
        if hi is not None and value > hi:
            raise ConfigError(f"{where}: must be <= {hi}")
        if choices is not None and value not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(choices)}")
        registry = spec.metadata.get("registry")
        if registry is not None and value != spec.default:
            names = (*registry_names(registry), *spec.metadata["also"])
            if value not in names:
                raise ConfigError(f"{where}: must be one of {', '.join(names)}")


def _check_fonts(where: str, names: list[Any]) -> None:
    """Every font named can be opened: an unknown fontpkg name or a missing or broken file fails here, before
    any work, instead of minutes into a run."""
    from iamchars.fonts import FontNotFoundError, check_font

    for name in names:
        try:
            check_font(str(name))
        except FontNotFoundError as exc:
            raise ConfigError(f"{where}: {exc}") from None


def load_config(
    path: Path | None = None, overrides: typing.Sequence[str] = (), values: dict[str, Any] | None = None
) -> PipelineConfig:
    """Defaults, then the TOML file, then `section.key=value` overrides (TOML syntax), then typed `values`
    by dotted key (a command's own flags; None means not given), in that order."""
    cfg = PipelineConfig()
    if path is not None:
        if Path(path).is_dir():
            raise ConfigError(f"--config {path}: is a folder; give a TOML file such as pipelines/demo.toml")
        try:
            data = tomllib.loads(read_bytes(Path(path)).decode("utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"--config {path}: config file not found") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--config {path}: not a TOML file ({exc})") from exc
        except FileError as exc:  # a FIFO, a device, a looping link: its message names the file
            raise ConfigError(f"--config {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"--config {path}: cannot be read ({exc.strerror or exc})") from exc
        _merge(cfg, data, str(path))
    for text in overrides:
        keys, value = parse_override(text)
        _merge(cfg, _nested(keys, value), f"override {text!r}")
    for dotted, value in (values or {}).items():
        if value is not None:
            _merge(cfg, _nested(dotted.split("."), value), f"option {dotted}")
    validate(cfg)
    return cfg


def _nested(keys: list[str], value: Any) -> dict[str, Any]:
    nested: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        nested = {key: nested}
    return nested
