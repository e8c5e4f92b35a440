"""Typed pipeline configuration, loaded from `pipelines/*.toml` and overridable on the command line.

Every stage reads its parameters from one of these dataclasses; nothing is configured through globals, so a
run is fully described by the TOML file plus the overrides recorded beside its outputs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


class ConfigError(ValueError):
    """A configuration file or override that cannot be used; the message names the file and key."""


@dataclass
class SplitConfig:
    ratios: list[float] = field(default_factory=lambda: [0.8, 0.1, 0.1])
    """train/val/test shares of writers when no IAM task files are present."""
    seed: int = 0
    unlisted: str = "hash"
    """Writers absent from IAM's task files: "hash" (deterministic writer split) or "exclude"."""


@dataclass
class ParseConfig:
    strict: bool = False
    """Raise on the first malformed row instead of skipping it into the rejects report."""
    check_images: bool = True
    """Open every line/word image header to check it exists and matches its box size."""


@dataclass
class SynthConfig:
    forms: int = 24
    lines_per_form: int = 8
    seed: int = 0
    fonts: list[str] = field(default_factory=lambda: list(WRITER_FONTS))
    forms_per_writer: int = 2
    err_rate: float = 0.05
    """Share of lines flagged `err`; one word of such a line gets a truncated box, as IAM's errors do."""
    workers: int = 0
    """Worker processes (0: one per CPU core)."""


@dataclass
class SegmentConfig:
    method: str = "refined"
    """"seed" (line-statistics band + linear font alignment) or "refined" (the measured default)."""
    k_std: float = 1.5
    """Vertical band half-height in line-ink standard deviations."""
    font: str = "dancing-script"
    """fontpkg name or a path to any TTF/OTF file."""
    font_size: int = 64
    slant_max_deg: float = 40.0
    slant_steps: int = 9
    snap_window: float = 0.35
    """How far (in mean character widths) a cut may move to reach a projection minimum."""
    ink_threshold: int = 0
    """Grey level under which a pixel is ink; 0 takes Otsu's threshold of each line."""
    min_ink_pixels: int = 2
    guide_k: float = 4.0
    """Refined boxes never reach beyond mean +- guide_k * std of the line ink (stray strokes of other lines)."""
    snap: bool = True
    """Anchor cuts in gaps of the ink, then move each cut to a nearby minimum of the column ink profile."""
    gap_reach: float = 0.75
    """How far (in mean character widths) a gap in the ink may pull a predicted cut."""
    deslant: bool = True


@dataclass
class ExportConfig:
    size: int = 32
    classes: str = "byclass"
    """byclass (62), bymerge (47), letters (26, case-folded), digits (10)."""
    punctuation: bool = False
    include_err: bool = False
    min_score: float = 0.0
    boxes: str = "estimated"
    """"estimated" (segmentation) or "gt:PATH/chars_gt.csv" (true boxes of a synthetic corpus)."""
    workers: int = 0
    write_png: bool = True
    qa_lines: int = 6
    qa_per_class: int = 48


@dataclass
class TrainConfig:
    model: str = "resnet"
    epochs: int = 12
    batch_size: int = 256
    optimizer: str = "adamw"
    lr: float = 3e-3
    weight_decay: float = 5e-4
    momentum: float = 0.9
    schedule: str = "onecycle"
    label_smoothing: float = 0.1
    augment: bool = True
    ema: float = 0.0
    """EMA decay of the weights (0 disables)."""
    compile: bool = False
    amp: bool = True
    """bf16 autocast on CUDA (ignored on the CPU)."""
    channels_last: bool = True
    device: str = "auto"
    seed: int = 0
    patience: int = 0
    """Early stopping after this many epochs without a better validation accuracy (0 disables)."""
    threads: int = 0
    """CPU threads for torch (0: torch's default)."""


@dataclass
class PipelineConfig:
    name: str = "default"
    split: SplitConfig = field(default_factory=SplitConfig)
    parse: ParseConfig = field(default_factory=ParseConfig)
    synth: SynthConfig = field(default_factory=SynthConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    export: ExportConfig = field(default_factory=ExportConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def digest(self, *sections: str) -> str:
        """A short stable hash of the named sections, used to tell whether cached work is still valid."""
        payload = {s: dataclasses.asdict(getattr(self, s)) for s in sections}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


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


def _apply(obj: Any, key: str, value: Any, where: str) -> None:
    hints = typing.get_type_hints(type(obj))
    if key not in hints:
        known = ", ".join(sorted(hints))
        raise ConfigError(f"{where}: unknown key {key!r} (known: {known})")
    setattr(obj, key, _coerce(value, hints[key], where))


def _merge(cfg: PipelineConfig, data: dict[str, Any], source: str) -> None:
    for key, value in data.items():
        if isinstance(value, dict):
            section = getattr(cfg, key, None)
            if section is None or not dataclasses.is_dataclass(section):
                raise ConfigError(f"{source}: unknown section [{key}]")
            for sub_key, sub_value in value.items():
                _apply(section, sub_key, sub_value, f"{source}: [{key}] {sub_key}")
        else:
            _apply(cfg, key, value, f"{source}: {key}")


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


def load_config(path: Path | None = None, overrides: typing.Sequence[str] = ()) -> PipelineConfig:
    """Defaults, then the TOML file, then `section.key=value` overrides, in that order."""
    cfg = PipelineConfig()
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: config file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        _merge(cfg, data, str(path))
    for text in overrides:
        keys, value = parse_override(text)
        nested: dict[str, Any] = {keys[-1]: value}
        for key in reversed(keys[:-1]):
            nested = {key: nested}
        _merge(cfg, nested, f"override {text!r}")
    return cfg
