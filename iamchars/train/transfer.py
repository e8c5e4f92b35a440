"""Starting from another run's weights: fine-tune a model pretrained on synthetic fonts on IAM, or on any
dataset, with its head re-made when the class sets differ and its first stages frozen if asked."""

from __future__ import annotations

from typing import Any

from torch import nn


def load_pretrained(model: nn.Module, checkpoint: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Copy every weight whose name and shape match (the EMA weights when the run kept them); returns the
    names loaded and those left as initialised (a head of another size: a different class set)."""
    source = checkpoint.get("ema") or checkpoint["model"]
    target = model.state_dict()
    loaded = [k for k, v in source.items() if k in target and target[k].shape == v.shape]
    model.load_state_dict({k: source[k] for k in loaded}, strict=False)
    return loaded, [k for k in target if k not in set(loaded)]


def stages(model: nn.Module) -> list[nn.Module]:
    """The feature extractor's blocks that hold weights, in order (the unit of `--freeze`)."""
    features = getattr(model, "features", None)
    if features is None:
        raise ValueError(f"{type(model).__name__} has no `features` to freeze")
    return [m for m in features.children() if any(True for _ in m.parameters())]


def freeze(model: nn.Module, n: int) -> int:
    """Stop training the weights of the first n stages (their BatchNorm statistics still follow the new data,
    which adapts them to it); returns how many stages exist."""
    blocks = stages(model)
    for block in blocks[:n]:
        block.requires_grad_(False)
    return len(blocks)


def is_head(name: str) -> bool:
    """The weights a fine-tuning run trains at the full learning rate: the last layers and the geometry input."""
    return name.startswith(("classifier.", "geometry."))
