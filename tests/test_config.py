"""The typed config: every value checked when it is loaded, one line naming the key and what is allowed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from iamchars.config import ConfigError, load_config


@pytest.mark.parametrize(
    "override, phrase",
    [
        ("train.lr=nan", "train.lr = nan: must be a finite number"),
        ("segment.k_std=inf", "segment.k_std = inf: must be a finite number"),
        ("export.max_reject_share=-inf", "finite"),
        ("split.ratios=[0.8, nan, 0.1]", "split.ratios"),
        ("train=1", "train is a section, not a value"),
        ("train.device='gpu'", "train.device = 'gpu': must be auto, cpu, cuda, cuda:N or mps"),
        ("segment.align.device='tpu'", "segment.align.device = 'tpu': must be auto"),
        ("segment.align=1", "segment.align is a section, not a value"),
        ("segment.align.nosuch=1", "unknown key 'segment.align.nosuch'"),
        ("segment.font='no-such-font'", "fontpkg-no-such-font is not installed"),
        ("segment.font='/nowhere/x.ttf'", "font file not found"),
        ("synth.fonts=['caveat', '../x']", "synth.fonts"),
        ("nosuch.key=1", "unknown section [nosuch] (known: split, parse, synth, segment, export, train)"),
    ],
)
def test_bad_values_are_refused_with_the_key(override: str, phrase: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        load_config(None, [override])
    assert phrase in str(caught.value) and caught.value.exit_code == 2


def test_config_files_that_cannot_be_used(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)
    section = tmp_path / "section.toml"
    section.write_text("train = 5\n")
    with pytest.raises(ConfigError, match="train is a section"):
        load_config(section)
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)  # reading it would wait for a writer forever
    with pytest.raises(ConfigError, match="is a FIFO"):
        load_config(fifo)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not a TOML file"):
        load_config(binary)


def test_typed_values_win_over_overrides_and_devices_and_fonts_that_exist_pass() -> None:
    cfg = load_config(None, ["train.lr=0.1", "train.device='cuda:1'"], {"train.lr": 0.2, "train.epochs": None})
    assert cfg.train.lr == 0.2 and cfg.train.epochs == 12 and cfg.train.device == "cuda:1"
    assert load_config(None, ["segment.font='kalam'"]).segment.font == "kalam"


@pytest.mark.parametrize("path", sorted(Path(__file__).parents[1].glob("pipelines/*.toml")), ids=lambda p: p.name)
def test_every_pipeline_config_loads_and_names_registered_things(path: Path) -> None:
    from iamchars.layout.formats import FORMATS
    from iamchars.segment.methods import METHODS
    from iamchars.train.models import MODELS

    cfg = load_config(path)
    assert cfg.name == path.stem
    assert cfg.segment.method in METHODS and cfg.train.model in MODELS
    assert cfg.export.layout in ("none", *FORMATS)


def test_registry_fields_check_their_registry_and_defaults_are_registered() -> None:
    from iamchars.config import ExportConfig, SegmentConfig, TrainConfig
    from iamchars.segment.methods import METHODS

    assert SegmentConfig().method in METHODS and ExportConfig().layout == "none" and TrainConfig().model
    with pytest.raises(ConfigError, match=r"^segment.method = 'fancy': must be one of aligned, refined, seed$"):
        load_config(None, ["segment.method='fancy'"])
    with pytest.raises(ConfigError, match=r"export.layout = 'hocr': must be one of page, alto, none$"):
        load_config(None, ["export.layout='hocr'"])
    assert load_config(None, ["export.layout='alto'"]).export.layout == "alto"
